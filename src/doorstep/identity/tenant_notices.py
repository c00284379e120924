"""Telling a tenant's admins what happened to their integrations: identity knows who they are.

Identity consumes `WebhookEndpointDisabled` and asks for one message per active tenant admin (by email,
or by SMS for an admin without one), in the transaction that marks the event handled, so a redelivered
event tells nobody twice.
"""

from __future__ import annotations

from sqlalchemy import select

from doorstep.contracts.integrations import WebhookEndpointDisabled
from doorstep.identity.adapters.tables import users
from doorstep.identity.adapters.unit_of_work import IdentityUnitOfWork
from doorstep.identity.domain.users import UserStatus
from doorstep.identity.sessions import Notifier
from doorstep.infra.service import Subscription
from doorstep.kernel.bus import Handler, MessageBus
from doorstep.kernel.messages import CloudEvent, Command
from doorstep.kernel.permissions import Role

PATTERNS = (WebhookEndpointDisabled.event_type,)
ENDPOINT_DISABLED = "integrations.webhook_endpoint_disabled"


class NotifyTenantAdmins(Command):
    tenant_id: str
    template: str
    params: dict[str, str]


async def notify_tenant_admins(
    cmd: NotifyTenantAdmins, *, uow: IdentityUnitOfWork, notifier: Notifier
) -> int:
    """How many admins were told; none when the causing event was handled before."""
    async with uow:
        if await uow.already_handled():
            return 0
        rows = await uow.connection.execute(
            select(users.c.email, users.c.phone, users.c.roles)
            .where(users.c.tenant_id == cmd.tenant_id, users.c.status == UserStatus.ACTIVE.value)
            .order_by(users.c.id)
        )
        told = 0
        for row in rows:
            if Role.TENANT_ADMIN.value not in (row.roles or ()):
                continue
            channel, to = ("email", row.email) if row.email else ("sms", row.phone)
            if not to:
                continue
            notifier.send(
                uow,
                tenant_id=cmd.tenant_id,
                channel=channel,
                to=to,
                template=cmd.template,
                params=cmd.params,
                sensitive=[],
            )
            told += 1
        await uow.commit()
    return told


def subscriptions(bus: MessageBus) -> list[Subscription]:
    async def on_endpoint_disabled(envelope: CloudEvent) -> None:
        event = envelope.payload()
        assert isinstance(event, WebhookEndpointDisabled)
        await bus.handle(
            NotifyTenantAdmins(
                tenant_id=envelope.tenantid,
                template=ENDPOINT_DISABLED,
                params={"endpoint_id": event.endpoint_id, "url": event.url, "reason": event.reason},
            ),
            causing_message=envelope,
        )

    return [Subscription(PATTERNS, on_endpoint_disabled)]


HANDLERS: dict[type[Command], Handler] = {NotifyTenantAdmins: notify_tenant_admins}
