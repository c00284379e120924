"""Courier use cases: quotes, deliveries and cancellation (accounts: `accounts`, webhooks: `webhooks`).

Calls to a network happen outside any transaction; what they answer is stored, audited and published
in one. Dispatch will send the same commands through the bus as the API does now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from doorstep.contracts.integrations import CourierDeliveryCreated
from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.couriers import repository
from doorstep.integrations.couriers.accounts import (
    CloseCourierAccount,
    OpenCourierAccount,
    close_courier_account,
    open_courier_account,
)
from doorstep.integrations.couriers.domain import cancellable
from doorstep.integrations.couriers.errors import (
    CourierAccountNotFound,
    CourierDeliveryNotCancellable,
    CourierDeliveryNotFound,
    CourierNetworkFailed,
    CourierQuoteNotFound,
    CourierRequestRejected,
)
from doorstep.integrations.couriers.networks import CourierNetworks
from doorstep.integrations.couriers.ports import (
    CourierDelivery,
    CourierProblem,
    CourierRejected,
    CourierRequest,
    CourierStatus,
    CourierUpdate,
)
from doorstep.integrations.couriers.repository import CourierAccount, StoredDelivery, StoredQuote
from doorstep.integrations.couriers.tables import courier_deliveries, courier_quotes
from doorstep.integrations.couriers.webhooks import (
    APPLIED,
    ReceiveCourierWebhook,
    apply_update,
    receive_courier_webhook,
    save_delivery,
)
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command

log = structlog.get_logger()


class QuoteCourier(Command):
    tenant_id: str
    account_id: str
    order_id: str
    request: CourierRequest
    actor: str


class CreateCourierDelivery(Command):
    """From a stored quote (`quote_id`), or directly (`account_id`, `order_id`, `request`)."""

    tenant_id: str
    quote_id: str | None = None
    account_id: str | None = None
    order_id: str | None = None
    request: CourierRequest | None = None
    actor: str


class CancelCourierDelivery(Command):
    tenant_id: str
    delivery_id: str
    actor: str


@dataclass(frozen=True)
class Created:
    delivery: StoredDelivery
    created: bool  # False: the order already had a delivery with this account


def _network_error(error: CourierProblem, field: str) -> Exception:
    if isinstance(error, CourierRejected):
        return CourierRequestRejected(error.detail, field=field, location="body")
    return CourierNetworkFailed(error.detail)


async def quote_courier(
    cmd: QuoteCourier, *, uow: IntegrationsUnitOfWork, couriers: CourierNetworks
) -> StoredQuote:
    account = await _account(uow, cmd.tenant_id, cmd.account_id)
    quote_id = new_id()
    request = cmd.request.model_copy(update={"external_id": quote_id})
    port = couriers.adapter(account.provider, account.credentials, account.settings)
    try:
        quoted = await port.quote(request)
    except CourierProblem as error:
        raise _network_error(error, "request") from None
    stored = StoredQuote(
        id=quote_id,
        tenant_id=cmd.tenant_id,
        account_id=account.id,
        order_id=cmd.order_id,
        provider_quote_id=quoted.provider_quote_id,
        request=request,
        fee=quoted.fee,
        currency=quoted.currency,
        pickup_eta=quoted.pickup_eta,
        dropoff_eta=quoted.dropoff_eta,
        expires_at=quoted.expires_at,
        created_at=utcnow(),
    )
    async with uow:
        await uow.connection.execute(
            insert(courier_quotes).values(
                id=stored.id,
                tenant_id=stored.tenant_id,
                account_id=stored.account_id,
                order_id=stored.order_id,
                provider_quote_id=stored.provider_quote_id,
                request=request.model_dump(mode="json"),
                fee=stored.fee,
                currency=stored.currency,
                pickup_eta=stored.pickup_eta,
                dropoff_eta=stored.dropoff_eta,
                expires_at=stored.expires_at,
                created_at=stored.created_at,
            )
        )
        _audit(
            uow,
            cmd.actor,
            "courier_quote.created",
            "courier_quote",
            stored.id,
            stored.tenant_id,
            None,
            {
                "account_id": account.id,
                "order_id": stored.order_id,
                "fee": stored.fee,
                "currency": stored.currency,
                "provider_quote_id": stored.provider_quote_id,
            },
        )
        await uow.commit()
    return stored


async def create_courier_delivery(
    cmd: CreateCourierDelivery, *, uow: IntegrationsUnitOfWork, couriers: CourierNetworks
) -> Created:
    quote: StoredQuote | None = None
    if cmd.quote_id is not None:
        async with uow:
            quote = await repository.get_quote(uow.connection, tenant_id=cmd.tenant_id, quote_id=cmd.quote_id)
        if quote is None:
            raise CourierQuoteNotFound(f"there is no courier quote {cmd.quote_id}")
        account_id, order_id, request = quote.account_id, quote.order_id, quote.request
    elif cmd.account_id is None or cmd.order_id is None or cmd.request is None:
        missing = (
            "account_id" if cmd.account_id is None else "order_id" if cmd.order_id is None else "request"
        )
        raise InvalidInput(f"`{missing}` is required without a `quote_id`", field=missing, location="body")
    else:
        account_id, order_id, request = cmd.account_id, cmd.order_id, cmd.request
    account = await _account(
        uow, cmd.tenant_id, account_id, field="account_id" if quote is None else "quote_id"
    )
    async with uow:
        existing = await repository.delivery_for_order(
            uow.connection, tenant_id=cmd.tenant_id, account_id=account.id, order_id=order_id
        )
    if existing is not None:
        return Created(existing, created=False)
    if quote is not None and quote.expires_at is not None and quote.expires_at <= utcnow():
        raise CourierRequestRejected(
            f"the quote expired at {quote.expires_at.isoformat()}: ask for a new one",
            field="quote_id",
            location="body",
        )
    delivery_id = new_id()
    if quote is None:
        request = request.model_copy(update={"external_id": delivery_id})
    port = couriers.adapter(account.provider, account.credentials, account.settings)
    try:
        made = await port.create(request, quote.provider_quote_id if quote else None)
    except CourierProblem as error:
        raise _network_error(error, "quote_id" if quote else "request") from None
    now = utcnow()
    delivery = StoredDelivery(
        id=delivery_id,
        tenant_id=cmd.tenant_id,
        account_id=account.id,
        provider=account.provider,
        order_id=order_id,
        quote_id=quote.id if quote else None,
        provider_delivery_id=made.provider_delivery_id,
        status=made.status,
        provider_status=None,
        tracking_url=made.tracking_url,
        fee=made.fee if made.fee is not None else (quote.fee if quote else None),
        currency=made.currency or (quote.currency if quote else request.currency),
        courier=made.courier,
        proof_of_delivery=list(made.proof_of_delivery),
        status_at=None,
        created_at=now,
        updated_at=now,
    )
    try:
        async with uow:
            await uow.connection.execute(insert(courier_deliveries).values(delivery.row()))
            uow.emit(
                CourierDeliveryCreated(
                    courier_delivery_id=delivery.id,
                    order_id=delivery.order_id,
                    account_id=delivery.account_id,
                    provider=delivery.provider.value,
                    provider_delivery_id=delivery.provider_delivery_id,
                    status=delivery.status.value,
                    tracking_url=delivery.tracking_url,
                    fee=delivery.fee,
                    currency=delivery.currency,
                    occurred_at=now,
                ),
                tenant_id=delivery.tenant_id,
            )
            _audit(
                uow,
                cmd.actor,
                "courier_delivery.created",
                "courier_delivery",
                delivery.id,
                delivery.tenant_id,
                None,
                _delivery_state(delivery),
            )
            await uow.commit()
    except IntegrityError:
        # The same order went to this account at once from another request, which stored its delivery
        # first: that one stands, and the network is told to drop this one.
        await _drop_extra(port, made)
        async with uow:
            existing = await repository.delivery_for_order(
                uow.connection, tenant_id=cmd.tenant_id, account_id=account.id, order_id=order_id
            )
        if existing is None:
            raise
        return Created(existing, created=False)
    return Created(delivery, created=True)


async def _drop_extra(port: Any, made: CourierDelivery) -> None:
    try:
        await port.cancel(made.provider_delivery_id)
    except CourierProblem as error:
        log.warning(
            "courier_extra_delivery_not_cancelled",
            provider_delivery_id=made.provider_delivery_id,
            error=error.detail,
        )


async def cancel_courier_delivery(
    cmd: CancelCourierDelivery, *, uow: IntegrationsUnitOfWork, couriers: CourierNetworks
) -> StoredDelivery:
    """Cancelling a cancelled delivery answers it as it is."""
    async with uow:
        delivery = await repository.get_delivery(
            uow.connection, tenant_id=cmd.tenant_id, delivery_id=cmd.delivery_id
        )
    if delivery is None:
        raise CourierDeliveryNotFound(f"there is no courier delivery {cmd.delivery_id}")
    if delivery.status is CourierStatus.CANCELLED:
        return delivery
    if not cancellable(delivery.status):
        raise CourierDeliveryNotCancellable(
            f"the delivery is {delivery.status.value}", status=delivery.status.value
        )
    async with uow:
        account = await repository.get_account(
            uow.connection, tenant_id=cmd.tenant_id, account_id=delivery.account_id
        )
    if account is None:
        raise CourierDeliveryNotCancellable("its courier account was closed: cancel it with the network")
    port = couriers.adapter(account.provider, account.credentials, account.settings)
    try:
        answered = await port.cancel(delivery.provider_delivery_id)
    except CourierProblem as error:
        if isinstance(error, CourierRejected):
            raise CourierDeliveryNotCancellable(error.detail) from None
        raise CourierNetworkFailed(error.detail) from None
    update_ = CourierUpdate(
        event_key=f"cancel:{delivery.id}",
        provider_delivery_id=delivery.provider_delivery_id,
        provider_status="cancelled_by_doorstep",
        status=CourierStatus.CANCELLED,
        occurred_at=utcnow(),
        tracking_url=answered.tracking_url,
        reason=f"cancelled by {cmd.actor}",
    )
    async with uow:
        current = await repository.get_delivery(
            uow.connection, tenant_id=cmd.tenant_id, delivery_id=cmd.delivery_id, lock=True
        )
        assert current is not None
        before = _delivery_state(current)
        if apply_update(uow, current, update_) == APPLIED:
            await save_delivery(uow, current)
            _audit(
                uow,
                cmd.actor,
                "courier_delivery.cancelled",
                "courier_delivery",
                current.id,
                current.tenant_id,
                before,
                _delivery_state(current),
            )
            await uow.commit()
    return current


async def _account(
    uow: IntegrationsUnitOfWork, tenant_id: str, account_id: str, *, field: str = "account_id"
) -> CourierAccount:
    async with uow:
        account = await repository.get_account(uow.connection, tenant_id=tenant_id, account_id=account_id)
    if account is None:
        raise CourierAccountNotFound(f"there is no courier account {account_id}", field=field)
    return account


def _delivery_state(delivery: StoredDelivery) -> dict[str, Any]:
    return {
        "account_id": delivery.account_id,
        "order_id": delivery.order_id,
        "provider_delivery_id": delivery.provider_delivery_id,
        "status": delivery.status.value,
        "fee": delivery.fee,
    }


def _audit(
    uow: IntegrationsUnitOfWork,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    tenant_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    uow.audit(
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
    )


HANDLERS: dict[type[Command], Handler] = {
    OpenCourierAccount: open_courier_account,
    CloseCourierAccount: close_courier_account,
    QuoteCourier: quote_courier,
    CreateCourierDelivery: create_courier_delivery,
    CancelCourierDelivery: cancel_courier_delivery,
    ReceiveCourierWebhook: receive_courier_webhook,
}
