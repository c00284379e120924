"""Integrations use cases: open a connection, take a webhook in, map it again, link the order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from doorstep.contracts.integrations import OrderReceived
from doorstep.contracts.orders import Stop
from doorstep.integrations.adapters.platforms import PLATFORMS, UnknownPlatform, platform_adapter
from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.domain.commands import LinkOrder, OpenConnection, ReceiveWebhook, ReplayDelivery
from doorstep.integrations.domain.errors import (
    ConnectionNotFound,
    DeliveryNotFound,
    InvalidConnectionSettings,
    UnsupportedPlatform,
    WebhookSignatureInvalid,
)
from doorstep.integrations.domain.model import Connection, DeliveryStatus, InboundDelivery
from doorstep.integrations.ports import PlatformAdapter, SignatureInvalid, UnmappablePayload
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command

# Kept out of the inbound log: they authenticate callers, they say nothing about the delivery.
_UNLOGGED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class Receipt:
    delivery_id: str
    status: DeliveryStatus
    duplicate: bool


async def open_connection(cmd: OpenConnection, *, uow: IntegrationsUnitOfWork) -> Connection:
    if cmd.platform not in PLATFORMS:
        raise UnsupportedPlatform(
            f"unknown platform {cmd.platform!r}; supported: {', '.join(sorted(PLATFORMS))}",
            field="platform",
            location="body",
        )
    _check_settings(cmd.platform, cmd.settings)
    if cmd.secret is not None and not 16 <= len(cmd.secret) <= 200:
        raise InvalidConnectionSettings(
            "a signing secret has 16 to 200 characters", field="secret", location="body"
        )
    connection = Connection.open(
        tenant_id=cmd.tenant_id, platform=cmd.platform, settings=cmd.settings, secret=cmd.secret, now=utcnow()
    )
    async with uow:
        await uow.connections.add(connection)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="connection.opened",
            object_type="connection",
            object_id=connection.id,
            before=None,
            # Never the signing secret nor the webhook URL's token: both let a caller deliver orders.
            after={"platform": connection.platform, "settings": connection.settings},
        )
        await uow.commit()
    return connection


def _check_settings(platform: str, settings: Mapping[str, object]) -> None:
    if platform == "shopify" and "pickup" not in settings:
        raise InvalidConnectionSettings(
            "a Shopify connection needs the shop's location as settings.pickup",
            field="settings.pickup",
            location="body",
        )
    if "pickup" in settings:
        try:
            Stop.model_validate(settings["pickup"])
        except ValidationError as error:
            first = error.errors()[0]
            path = ".".join(str(part) for part in first["loc"])
            raise InvalidConnectionSettings(
                first["msg"], field=f"settings.pickup.{path}".rstrip("."), location="body"
            ) from None


async def receive_webhook(cmd: ReceiveWebhook, *, uow: IntegrationsUnitOfWork) -> Receipt:
    """Verify, log and map one delivery; a redelivery is answered with the first receipt."""
    try:
        return await _receive_webhook(cmd, uow)
    except IntegrityError:
        # The same delivery arrived twice at once; the other request logged it.
        return await _receive_webhook(cmd, uow)


async def _receive_webhook(cmd: ReceiveWebhook, uow: IntegrationsUnitOfWork) -> Receipt:
    async with uow:
        connection = await uow.connections.by_token(cmd.token)
        if connection is None or connection.platform != cmd.platform:
            raise ConnectionNotFound("no connection listens at this URL")
        adapter = _adapter(connection.platform)
        try:
            adapter.verify(headers=cmd.headers, body=cmd.body, secret=connection.secret)
        except SignatureInvalid as error:
            raise WebhookSignatureInvalid(str(error)) from None
        platform_delivery_id = _bounded(adapter.delivery_id(headers=cmd.headers, body=cmd.body))
        if platform_delivery_id is not None:
            earlier = await uow.deliveries.by_platform_delivery_id(
                connection_id=connection.id, platform_delivery_id=platform_delivery_id
            )
            if earlier is not None:
                return Receipt(earlier.id, earlier.status, duplicate=True)
        delivery = InboundDelivery(
            id=new_id(),
            tenant_id=connection.tenant_id,
            connection_id=connection.id,
            platform=connection.platform,
            platform_delivery_id=platform_delivery_id,
            headers={k: v for k, v in cmd.headers.items() if k not in _UNLOGGED_HEADERS},
            body=cmd.body,
            received_at=utcnow(),
            status=DeliveryStatus.FAILED,
        )
        _map(delivery, connection, adapter, uow)
        await uow.deliveries.add(delivery)
        await uow.commit()
    return Receipt(delivery.id, delivery.status, duplicate=False)


async def replay_delivery(cmd: ReplayDelivery, *, uow: IntegrationsUnitOfWork) -> InboundDelivery:
    async with uow:
        delivery = await uow.deliveries.get(tenant_id=cmd.tenant_id, delivery_id=cmd.delivery_id)
        if delivery is None:
            raise DeliveryNotFound(f"there is no inbound delivery {cmd.delivery_id}")
        connection = await uow.connections.get(tenant_id=cmd.tenant_id, connection_id=delivery.connection_id)
        if connection is None:
            raise ConnectionNotFound(f"the connection {delivery.connection_id} of this delivery is gone")
        before = _replay_state(delivery)
        delivery.attempts += 1
        _map(delivery, connection, _adapter(connection.platform), uow)
        await uow.deliveries.save(delivery)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="inbound_delivery.replayed",
            object_type="inbound_delivery",
            object_id=delivery.id,
            before=before,
            after=_replay_state(delivery),
        )
        await uow.commit()
    return delivery


def _replay_state(delivery: InboundDelivery) -> dict[str, object]:
    """What a replay may change, for the audit trail (the body and headers never change)."""
    return {
        "status": delivery.status,
        "external_id": delivery.external_id,
        "failure_field": delivery.failure_field,
        "failure_reason": delivery.failure_reason,
        "attempts": delivery.attempts,
    }


def _map(
    delivery: InboundDelivery, connection: Connection, adapter: PlatformAdapter, uow: IntegrationsUnitOfWork
) -> None:
    """Map the delivery's body; on success queue `OrderReceived`, otherwise record why not."""
    try:
        payload = json.loads(delivery.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        delivery.failed(reason=f"the body is not JSON: {error}", field=None)
        return
    except RecursionError:
        delivery.failed(reason="the body nests too deeply to be an order", field=None)
        return
    try:
        mapped = adapter.map_order(payload, settings=connection.settings)
    except UnmappablePayload as error:
        delivery.failed(reason=error.reason, field=error.field)
        return
    delivery.mapped(mapped.external_id)
    uow.emit(
        OrderReceived(
            connection_id=connection.id,
            platform=connection.platform,
            delivery_id=delivery.id,
            external_id=mapped.external_id,
            draft=mapped.draft,
        ),
        tenant_id=connection.tenant_id,
    )


def _bounded(delivery_id: str | None) -> str | None:
    """Delivery ids longer than the column (or with characters PostgreSQL refuses) are kept as their hash."""
    if delivery_id is None or (len(delivery_id) <= 200 and "\x00" not in delivery_id):
        return delivery_id
    return "sha256:" + hashlib.sha256(delivery_id.encode("utf-8", "surrogatepass")).hexdigest()


def _adapter(platform: str) -> PlatformAdapter:
    try:
        return platform_adapter(platform)
    except UnknownPlatform:
        raise ConnectionNotFound(f"no adapter for platform {platform!r}") from None


async def link_order(cmd: LinkOrder, *, uow: IntegrationsUnitOfWork) -> None:
    """Remember a platform order's Doorstep id; other orders only mark the event handled."""
    try:
        async with uow:
            if cmd.source in PLATFORMS and not await uow.order_links.exists(cmd.order_id):
                await uow.order_links.add(
                    tenant_id=cmd.tenant_id,
                    order_id=cmd.order_id,
                    source=cmd.source,
                    external_id=cmd.external_id,
                    at=utcnow(),
                )
            await uow.commit()
    except IntegrityError:
        # The inbox already holds this event (a redelivery): its effect is stored, nothing is left to do.
        return


HANDLERS: dict[type[Command], Handler] = {
    OpenConnection: open_connection,
    ReceiveWebhook: receive_webhook,
    ReplayDelivery: replay_delivery,
    LinkOrder: link_order,
}
