"""Integrations use cases: open a connection, take a webhook in, map it again, link the order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from doorstep.contracts.integrations import InboundDeliveryFailed, OrderReceived
from doorstep.contracts.orders import Stop
from doorstep.integrations.adapters.platforms import PLATFORMS, UnknownPlatform, platform_adapter
from doorstep.integrations.adapters.platforms.doordash_drive import (
    DoorDashDriveAdapter,
    new_signing_secret,
    signing_key,
)
from doorstep.integrations.adapters.platforms.http_client import HttpxPlatformClient
from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.deliveries.domain.model import SOURCE as DELIVERY_API
from doorstep.integrations.domain.commands import (
    ChangeMapping,
    LinkOrder,
    LinkOrders,
    OpenConnection,
    ReceiveWebhook,
    ReplayDelivery,
    TryMapping,
)
from doorstep.integrations.domain.errors import (
    ConnectionNotFound,
    DeliveryNotFound,
    InvalidConnectionSettings,
    PayloadNotMappable,
    UnsupportedPlatform,
    WebhookSignatureInvalid,
)
from doorstep.integrations.domain.model import Connection, DeliveryStatus, InboundDelivery, public_settings
from doorstep.integrations.ports import (
    Configurable,
    Decoding,
    FetchFailed,
    Fetching,
    MappedOrder,
    Pinged,
    PlatformAdapter,
    PlatformClient,
    SignatureInvalid,
    UnmappablePayload,
)
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import CloudEvent, Command

# Kept out of the inbound log: they authenticate callers, they say nothing about the delivery.
_UNLOGGED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class Receipt:
    delivery_id: str
    status: DeliveryStatus
    duplicate: bool
    # An unsigned "does this URL answer?" check (WooCommerce's ping): acknowledged, nothing stored.
    ping: bool = False


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
    secret = cmd.secret
    if cmd.platform == DoorDashDriveAdapter.name:
        secret = secret if secret is not None else new_signing_secret()
        try:
            signing_key(secret)
        except ValueError as error:
            raise InvalidConnectionSettings(str(error), field="secret", location="body") from None
    connection = Connection.open(
        tenant_id=cmd.tenant_id, platform=cmd.platform, settings=cmd.settings, secret=secret, now=utcnow()
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
            after={"platform": connection.platform, "settings": public_settings(connection.settings)},
        )
        await uow.commit()
    return connection


def _check_settings(platform: str, settings: Mapping[str, object], *, prefix: str = "settings.") -> None:
    """`prefix` is how the request body names the settings (`settings.` on open, nothing on a mapping change)."""
    adapter = PLATFORMS[platform]
    if isinstance(adapter, Configurable):
        try:
            adapter.check_settings(settings)
        except UnmappablePayload as error:
            field = error.field
            if field is not None and field.startswith("settings."):
                field = prefix + field.removeprefix("settings.")
            raise InvalidConnectionSettings(error.reason, field=field, location="body") from None
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


MAPPING_PLATFORM = "json_mapping"


async def _mapping_connection(
    uow: IntegrationsUnitOfWork, *, tenant_id: str, connection_id: str
) -> Connection:
    connection = await uow.connections.get(tenant_id=tenant_id, connection_id=connection_id)
    if connection is None:
        raise ConnectionNotFound(f"there is no connection {connection_id}")
    if connection.platform != MAPPING_PLATFORM:
        raise UnsupportedPlatform(
            f"only {MAPPING_PLATFORM} connections have a mapping; this one is {connection.platform}",
            field="connection_id",
            location="path",
        )
    return connection


async def change_mapping(cmd: ChangeMapping, *, uow: IntegrationsUnitOfWork) -> Connection:
    """Check and store a new mapping; deliveries from now on (and replays) map with it."""
    async with uow:
        connection = await _mapping_connection(uow, tenant_id=cmd.tenant_id, connection_id=cmd.connection_id)
        settings = connection.settings | {"mapping": cmd.mapping}
        _check_settings(connection.platform, settings, prefix="")
        before = connection.settings.get("mapping")
        connection.settings = settings
        await uow.connections.save_settings(connection)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="connection.mapping_changed",
            object_type="connection",
            object_id=connection.id,
            before={"mapping": before},
            after={"mapping": cmd.mapping},
        )
        await uow.commit()
    return connection


async def try_mapping(cmd: TryMapping, *, uow: IntegrationsUnitOfWork) -> MappedOrder:
    """The order a sample payload becomes, stored nowhere; `PayloadNotMappable` names what does not fit."""
    async with uow:
        connection = await _mapping_connection(uow, tenant_id=cmd.tenant_id, connection_id=cmd.connection_id)
    settings = connection.settings if cmd.mapping is None else connection.settings | {"mapping": cmd.mapping}
    if cmd.mapping is not None:
        _check_settings(connection.platform, settings, prefix="")
    try:
        return _adapter(connection.platform).map_order(cmd.payload, settings=settings)
    except UnmappablePayload as error:
        field = f"payload: {error.field}" if error.field else "payload"
        raise PayloadNotMappable(error.reason, field=field, location="body") from None


async def receive_webhook(
    cmd: ReceiveWebhook, *, uow: IntegrationsUnitOfWork, platform_client: PlatformClient | None = None
) -> Receipt:
    """Verify, log and map one delivery; a redelivery is answered with the first receipt.

    A delivery that only points at its order is stored before the order is fetched, then mapped in a
    second transaction: a platform that is down leaves it failed in the log, replayable, never lost.
    """
    try:
        receipt, fetch = await _receive_webhook(cmd, uow)
    except IntegrityError:
        # The same delivery arrived twice at once; the other request logged it.
        receipt, fetch = await _receive_webhook(cmd, uow)
    if fetch is not None:
        delivery, connection, adapter, payload = fetch
        fetched = await _fetch(adapter, payload, connection, platform_client)
        async with uow:
            stored = await uow.deliveries.get(tenant_id=delivery.tenant_id, delivery_id=delivery.id)
            if stored is None:
                raise DeliveryNotFound(f"there is no inbound delivery {delivery.id}")
            _map_fetched(stored, connection, adapter, fetched, uow)
            await uow.deliveries.save(stored)
            await uow.commit()
        receipt = Receipt(stored.id, stored.status, duplicate=False)
    return receipt


_Fetch = tuple[InboundDelivery, Connection, PlatformAdapter, Any]


async def _receive_webhook(cmd: ReceiveWebhook, uow: IntegrationsUnitOfWork) -> tuple[Receipt, _Fetch | None]:
    async with uow:
        connection = await uow.connections.by_token(cmd.token)
        if connection is None or connection.platform != cmd.platform:
            raise ConnectionNotFound("no connection listens at this URL")
        adapter = _adapter(connection.platform)
        if isinstance(adapter, Pinged) and adapter.is_ping(headers=cmd.headers, body=cmd.body):
            return Receipt("", DeliveryStatus.MAPPED, duplicate=False, ping=True), None
        try:
            adapter.verify(
                headers=cmd.headers, body=cmd.body, secret=connection.secret, settings=connection.settings
            )
        except SignatureInvalid as error:
            raise WebhookSignatureInvalid(str(error)) from None
        platform_delivery_id = _bounded(adapter.delivery_id(headers=cmd.headers, body=cmd.body))
        if platform_delivery_id is not None:
            earlier = await uow.deliveries.by_platform_delivery_id(
                connection_id=connection.id, platform_delivery_id=platform_delivery_id
            )
            if earlier is not None:
                return Receipt(earlier.id, earlier.status, duplicate=True), None
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
        fetch: _Fetch | None = None
        payload = _decode(delivery, connection, adapter, uow)
        if payload is not _UNDECODABLE:
            if isinstance(adapter, Fetching):
                # Failed until the fetch succeeds: if this process dies meanwhile, the log says so.
                delivery.failed(reason=f"waiting for the order from {connection.platform}", field=None)
                fetch = (delivery, connection, adapter, payload)
            else:
                _map_payload(delivery, connection, adapter, payload, uow)
        await uow.deliveries.add(delivery)
        await uow.commit()
    return Receipt(delivery.id, delivery.status, duplicate=False), fetch


async def replay_delivery(
    cmd: ReplayDelivery, *, uow: IntegrationsUnitOfWork, platform_client: PlatformClient | None = None
) -> InboundDelivery:
    async with uow:
        delivery = await uow.deliveries.get(tenant_id=cmd.tenant_id, delivery_id=cmd.delivery_id)
        if delivery is None:
            raise DeliveryNotFound(f"there is no inbound delivery {cmd.delivery_id}")
        connection = await uow.connections.get(tenant_id=cmd.tenant_id, connection_id=delivery.connection_id)
        if connection is None:
            raise ConnectionNotFound(f"the connection {delivery.connection_id} of this delivery is gone")
    adapter = _adapter(connection.platform)
    fetched: _Fetched | None = None
    if isinstance(adapter, Fetching):
        # Outside any transaction: the platform's API may be slow, and holds no lock of ours.
        payload = _decode_quietly(delivery.body, connection, adapter)
        if not isinstance(payload, UnmappablePayload):
            fetched = await _fetch(adapter, payload, connection, platform_client)
    async with uow:
        stored = await uow.deliveries.get(tenant_id=cmd.tenant_id, delivery_id=cmd.delivery_id)
        if stored is None:
            raise DeliveryNotFound(f"there is no inbound delivery {cmd.delivery_id}")
        delivery = stored
        before = _replay_state(delivery)
        delivery.attempts += 1
        if fetched is not None:
            _map_fetched(delivery, connection, adapter, fetched, uow)
        else:
            payload = _decode(delivery, connection, adapter, uow)
            if payload is not _UNDECODABLE:
                _map_payload(delivery, connection, adapter, payload, uow)
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


_UNDECODABLE = object()
# What fetching gave: the payload to map, or why there is none.
_Fetched = Any


def _decode_quietly(body: bytes, connection: Connection, adapter: PlatformAdapter) -> Any:
    """The payload in the body, or the `UnmappablePayload` saying why there is none."""
    if isinstance(adapter, Decoding):
        try:
            return adapter.decode(body, settings=connection.settings)
        except UnmappablePayload as error:
            return error
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return UnmappablePayload(f"the body is not JSON: {error}")
    except RecursionError:
        return UnmappablePayload("the body nests too deeply to be an order")


def _decode(
    delivery: InboundDelivery, connection: Connection, adapter: PlatformAdapter, uow: IntegrationsUnitOfWork
) -> Any:
    payload = _decode_quietly(delivery.body, connection, adapter)
    if isinstance(payload, UnmappablePayload):
        _fail(delivery, connection, payload.reason, payload.field, uow)
        return _UNDECODABLE
    return payload


async def _fetch(
    adapter: PlatformAdapter, payload: Any, connection: Connection, client: PlatformClient | None
) -> _Fetched:
    """What the platform's API gives for this notification, or the reason it gave nothing."""
    assert isinstance(adapter, Fetching)
    own = None
    if client is None:
        client = own = HttpxPlatformClient()
    try:
        return await adapter.fetch(
            payload, settings=connection.settings, secret=connection.secret, client=client
        )
    except FetchFailed as error:
        return FetchFailed(f"fetching the order from {connection.platform} failed: {error}")
    except UnmappablePayload as error:
        return error
    finally:
        if own is not None:
            await own.close()


def _map_fetched(
    delivery: InboundDelivery,
    connection: Connection,
    adapter: PlatformAdapter,
    fetched: _Fetched,
    uow: IntegrationsUnitOfWork,
) -> None:
    if isinstance(fetched, FetchFailed):
        _fail(delivery, connection, str(fetched), None, uow)
    elif isinstance(fetched, UnmappablePayload):
        _fail(delivery, connection, fetched.reason, fetched.field, uow)
    else:
        _map_payload(delivery, connection, adapter, fetched, uow)


def _map_payload(
    delivery: InboundDelivery,
    connection: Connection,
    adapter: PlatformAdapter,
    payload: Any,
    uow: IntegrationsUnitOfWork,
) -> None:
    """Map a decoded payload; on success queue `OrderReceived`, otherwise record why not."""
    try:
        mapped = adapter.map_order(payload, settings=connection.settings)
    except UnmappablePayload as error:
        _fail(delivery, connection, error.reason, error.field, uow)
        return
    delivery.mapped(mapped.external_id)
    uow.emit(
        OrderReceived(
            connection_id=connection.id,
            platform=connection.platform,
            delivery_id=delivery.id,
            external_id=mapped.external_id,
            draft=mapped.draft,
            change=mapped.change.value,
            version=mapped.version,
        ),
        tenant_id=connection.tenant_id,
    )


def _fail(
    delivery: InboundDelivery,
    connection: Connection,
    reason: str,
    field: str | None,
    uow: IntegrationsUnitOfWork,
) -> None:
    """Record why the delivery is no order, and tell the support desk in the same transaction."""
    delivery.failed(reason=reason, field=field)
    uow.emit(
        InboundDeliveryFailed(
            connection_id=connection.id,
            platform=connection.platform,
            delivery_id=delivery.id,
            reason=reason,
            field=field,
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
            if cmd.source in (*PLATFORMS, DELIVERY_API) and not await uow.order_links.exists(cmd.order_id):
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


async def link_orders(cmd: LinkOrders, *, uow: IntegrationsUnitOfWork) -> None:
    """Most deliveries are new, so the first attempt writes without reading the inbox; when a mark is
    there already (a redelivery, or one delivered twice at once), the second one reads it and leaves
    those events out. Anything else fails again and is real."""
    try:
        await _link_orders(cmd, uow, look_for_handled=False)
    except IntegrityError:
        await _link_orders(cmd, uow, look_for_handled=True)


async def _link_orders(cmd: LinkOrders, uow: IntegrationsUnitOfWork, *, look_for_handled: bool) -> None:
    fresh: Sequence[CloudEvent] = list({message.id: message for message in cmd.messages}.values())
    async with uow:
        if look_for_handled:
            handled = await uow.handled_ids([message.id for message in fresh])
            fresh = [message for message in fresh if message.id not in handled]
            if not fresh:
                return
        for message in fresh:
            link = cmd.links.get(message.id)
            if link is not None and not await uow.order_links.exists(link.order_id):
                await uow.order_links.add(
                    tenant_id=link.tenant_id,
                    order_id=link.order_id,
                    source=link.source,
                    external_id=link.external_id,
                    at=utcnow(),
                )
        uow.mark_handled(fresh)
        await uow.commit()


HANDLERS: dict[type[Command], Handler] = {
    OpenConnection: open_connection,
    ChangeMapping: change_mapping,
    TryMapping: try_mapping,
    ReceiveWebhook: receive_webhook,
    ReplayDelivery: replay_delivery,
    LinkOrder: link_order,
    LinkOrders: link_orders,
}
