"""Courier accounts: a tenant connects its DoorDash Drive or Uber Direct account, or disconnects it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert

from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.couriers import repository
from doorstep.integrations.couriers.domain import Provider
from doorstep.integrations.couriers.errors import CourierAccountNotFound
from doorstep.integrations.couriers.networks import credential_problem, settings_problem
from doorstep.integrations.couriers.repository import CourierAccount
from doorstep.integrations.couriers.tables import courier_accounts
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command


class OpenCourierAccount(Command):
    tenant_id: str
    provider: Provider
    name: str
    credentials: dict[str, str]
    settings: dict[str, str]
    actor: str


class CloseCourierAccount(Command):
    tenant_id: str
    account_id: str
    actor: str


@dataclass(frozen=True)
class NewAccount:
    account: CourierAccount
    webhook_secret: str | None  # DoorDash's: made here, shown once


async def open_courier_account(cmd: OpenCourierAccount, *, uow: IntegrationsUnitOfWork) -> NewAccount:
    problem = credential_problem(cmd.provider, cmd.credentials)
    if problem is not None:
        raise InvalidInput(problem[1], field=f"credentials.{problem[0]}", location="body")
    problem = settings_problem(cmd.provider, cmd.settings)
    if problem is not None:
        raise InvalidInput(problem[1], field=f"settings.{problem[0]}", location="body")
    credentials = dict(cmd.credentials)
    webhook_secret = None
    if cmd.provider is Provider.DOORDASH_DRIVE:
        webhook_secret = credentials["webhook_secret"] = f"Bearer dd_{secrets.token_urlsafe(24)}"
    account = CourierAccount(
        id=new_id(),
        tenant_id=cmd.tenant_id,
        provider=cmd.provider,
        name=cmd.name,
        token=secrets.token_urlsafe(32),
        credentials=credentials,
        settings=dict(cmd.settings),
        created_at=utcnow(),
    )
    async with uow:
        await uow.connection.execute(
            insert(courier_accounts).values(
                id=account.id,
                tenant_id=account.tenant_id,
                provider=account.provider.value,
                name=account.name,
                token=account.token,
                credentials=account.credentials,
                settings=account.settings,
                created_at=account.created_at,
            )
        )
        uow.audit(
            tenant_id=account.tenant_id,
            actor=cmd.actor,
            action="courier_account.opened",
            object_type="courier_account",
            object_id=account.id,
            before=None,
            after=_account_state(account),
        )
        await uow.commit()
    return NewAccount(account, webhook_secret)


async def close_courier_account(cmd: CloseCourierAccount, *, uow: IntegrationsUnitOfWork) -> None:
    """Its deliveries stay readable; the networks' webhooks for it are refused from now on."""
    async with uow:
        account = await repository.get_account(
            uow.connection, tenant_id=cmd.tenant_id, account_id=cmd.account_id
        )
        if account is None:
            raise CourierAccountNotFound(f"there is no courier account {cmd.account_id}")
        await uow.connection.execute(delete(courier_accounts).where(courier_accounts.c.id == account.id))
        uow.audit(
            tenant_id=account.tenant_id,
            actor=cmd.actor,
            action="courier_account.closed",
            object_type="courier_account",
            object_id=account.id,
            before=_account_state(account),
            after=None,
        )
        await uow.commit()


def _account_state(account: CourierAccount) -> dict[str, Any]:
    # Never the credentials: the audit log is read by more people than integrations.manage.
    return {
        "provider": account.provider.value,
        "name": account.name,
        "settings": account.settings,
        "credential_names": sorted(account.credentials),
    }
