"""The networks' status webhooks: each one verified, stored once, and applied when it is news.

A status that moves the delivery on is published (`CourierDeliveryStatusChanged`). A courier's position
without a new status is only kept on the delivery: positions come every few seconds per courier, a
stream that does not go through the outbox (see the architecture, on driver positions).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from doorstep.contracts.integrations import CourierDeliveryStatusChanged, CourierLocation
from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.couriers import repository
from doorstep.integrations.couriers.domain import advances, position_is_news, tracks_position
from doorstep.integrations.couriers.errors import (
    CourierAccountNotFound,
    CourierWebhookNotAuthentic,
    CourierWebhookUnreadable,
)
from doorstep.integrations.couriers.networks import CourierNetworks
from doorstep.integrations.couriers.ports import (
    CourierInfo,
    CourierUpdate,
    WebhookNotAuthentic,
    WebhookUnreadable,
)
from doorstep.integrations.couriers.repository import CourierAccount, StoredDelivery
from doorstep.integrations.couriers.tables import courier_deliveries, courier_webhook_events
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command

APPLIED = "applied"
LOCATION_UPDATED = "location_updated"
IGNORED = "ignored"


class ReceiveCourierWebhook(Command):
    provider: str
    token: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class WebhookReceipt:
    outcome: str  # applied, location_updated, ignored, unknown_delivery, duplicate
    duplicate: bool


async def receive_courier_webhook(
    cmd: ReceiveCourierWebhook, *, uow: IntegrationsUnitOfWork, couriers: CourierNetworks
) -> WebhookReceipt:
    async with uow:
        account = await repository.account_by_token(uow.connection, provider=cmd.provider, token=cmd.token)
    if account is None:
        raise CourierAccountNotFound("there is no courier account behind this webhook URL")
    port = couriers.adapter(account.provider, account.credentials, account.settings)
    try:
        courier_update = port.parse_webhook(cmd.headers, cmd.body)
    except WebhookNotAuthentic as error:
        raise CourierWebhookNotAuthentic(str(error)) from None
    except WebhookUnreadable as error:
        raise CourierWebhookUnreadable(str(error), field=None, location="body") from None
    try:
        return await _record_update(uow, account, courier_update, cmd.body)
    except IntegrityError:
        # The same webhook arrived twice at once; the other request stored it.
        return WebhookReceipt(outcome="duplicate", duplicate=True)


async def _record_update(
    uow: IntegrationsUnitOfWork, account: CourierAccount, courier_update: CourierUpdate, body: bytes
) -> WebhookReceipt:
    async with uow:
        seen = await uow.connection.scalar(
            courier_webhook_events.select()
            .with_only_columns(courier_webhook_events.c.outcome)
            .where(
                courier_webhook_events.c.account_id == account.id,
                courier_webhook_events.c.event_key == courier_update.event_key,
            )
        )
        if seen is not None:
            return WebhookReceipt(outcome=str(seen), duplicate=True)
        delivery = await repository.delivery_by_provider_id(
            uow.connection, account_id=account.id, provider_delivery_id=courier_update.provider_delivery_id
        )
        if delivery is None:
            outcome = "unknown_delivery"
        else:
            outcome = apply_update(uow, delivery, courier_update)
            if outcome != IGNORED:
                await save_delivery(uow, delivery)
        await uow.connection.execute(
            insert(courier_webhook_events).values(
                id=new_id(),
                tenant_id=account.tenant_id,
                account_id=account.id,
                event_key=courier_update.event_key[:300],
                provider_delivery_id=courier_update.provider_delivery_id[:200],
                provider_status=courier_update.provider_status[:60],
                outcome=outcome,
                body=body,
                received_at=utcnow(),
            )
        )
        await uow.commit()
    return WebhookReceipt(outcome=outcome, duplicate=False)


def apply_update(uow: IntegrationsUnitOfWork, delivery: StoredDelivery, courier_update: CourierUpdate) -> str:
    """What the update changes on the delivery: `applied` (a newer status, published), `location_updated`
    (only a later courier position, not published) or `ignored` (nothing newer than what is stored)."""
    if _moves_on(delivery, courier_update):
        _move_on(uow, delivery, courier_update)
        return APPLIED
    incoming = courier_update.courier
    if (
        incoming is None
        or incoming.location is None
        or not tracks_position(delivery.status)
        or not position_is_news(delivery.courier_location_at, courier_update.occurred_at)
    ):
        return IGNORED
    delivery.courier = _merged(delivery.courier, incoming, located=True)
    delivery.courier_location_at = courier_update.occurred_at
    delivery.updated_at = utcnow()
    return LOCATION_UPDATED


def _moves_on(delivery: StoredDelivery, courier_update: CourierUpdate) -> bool:
    incoming = courier_update.status
    if incoming is None or not advances(delivery.status, incoming):
        return False
    return delivery.status_at is None or courier_update.occurred_at >= delivery.status_at


def _move_on(uow: IntegrationsUnitOfWork, delivery: StoredDelivery, courier_update: CourierUpdate) -> None:
    assert courier_update.status is not None
    before = delivery.status
    delivery.status = courier_update.status
    delivery.provider_status = courier_update.provider_status
    delivery.status_at = courier_update.occurred_at
    delivery.updated_at = utcnow()
    delivery.tracking_url = courier_update.tracking_url or delivery.tracking_url
    if courier_update.courier is not None:
        # An update that arrives late moves the status on, but does not take the courier back in space.
        located = courier_update.courier.location is not None and position_is_news(
            delivery.courier_location_at, courier_update.occurred_at
        )
        delivery.courier = _merged(delivery.courier, courier_update.courier, located=located)
        if located:
            delivery.courier_location_at = courier_update.occurred_at
    delivery.proof_of_delivery = list(
        dict.fromkeys([*delivery.proof_of_delivery, *courier_update.proof_of_delivery])
    )
    courier = delivery.courier
    location = courier.location if courier else None
    uow.emit(
        CourierDeliveryStatusChanged(
            courier_delivery_id=delivery.id,
            order_id=delivery.order_id,
            provider=delivery.provider.value,
            provider_delivery_id=delivery.provider_delivery_id,
            from_status=before.value,
            status=delivery.status.value,
            provider_status=courier_update.provider_status,
            courier_name=courier.name if courier else None,
            courier_phone=courier.phone if courier else None,
            courier_location=CourierLocation(lat=location.lat, lon=location.lon) if location else None,
            tracking_url=delivery.tracking_url,
            proof_of_delivery_urls=list(delivery.proof_of_delivery),
            reason=courier_update.reason,
            occurred_at=courier_update.occurred_at,
        ),
        tenant_id=delivery.tenant_id,
    )


def _merged(stored: CourierInfo | None, incoming: CourierInfo, *, located: bool) -> CourierInfo:
    """The courier as last reported: what the update names, the rest as stored; its position if `located`."""
    return CourierInfo(
        name=incoming.name or (stored.name if stored else None),
        phone=incoming.phone or (stored.phone if stored else None),
        location=incoming.location if located else (stored.location if stored else None),
    )


async def save_delivery(uow: IntegrationsUnitOfWork, delivery: StoredDelivery) -> None:
    await uow.connection.execute(
        update(courier_deliveries).where(courier_deliveries.c.id == delivery.id).values(delivery.row())
    )
