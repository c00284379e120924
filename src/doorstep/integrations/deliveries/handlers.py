"""Delivery API use cases: keep the rate card, quote, accept (the order is placed by event), cancel, follow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from pydantic import AwareDatetime
from sqlalchemy.exc import IntegrityError

from doorstep.contracts.integrations import OrderReceived
from doorstep.contracts.orders import Customer, Item, Stop
from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.deliveries.domain.errors import (
    DeliveryAlreadyExists,
    DeliveryNotFound,
    GeocoderUnavailable,
    NoRateCard,
    QuoteExpired,
    QuoteNotFound,
)
from doorstep.integrations.deliveries.domain.model import (
    CANCELLED_VERSION,
    PLACED_VERSION,
    SOURCE,
    Delivery,
    Quote,
    Travel,
)
from doorstep.integrations.deliveries.domain.rate_card import RateCard, Size
from doorstep.integrations.deliveries.repository import DeliveryApiRepository
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.geocoding import AddressNotGeocoded, Geocoder, GeocodingFailed
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command
from doorstep.kernel.settings import Settings

log = structlog.get_logger()


@dataclass
class DeliveryRuntime:
    """What quoting needs besides the database: travel estimates from settings, coordinates for stops
    given by address only, and the time."""

    travel: Travel
    geocoder: Geocoder | None = None
    clock: Callable[[], datetime] = field(default=utcnow)


def delivery_runtime(settings: Settings, *, geocoder: Geocoder | None = None) -> DeliveryRuntime:
    return DeliveryRuntime(
        travel=Travel(
            speed_kmh=settings.delivery_speed_kmh,
            road_factor=settings.delivery_road_factor,
            handling_minutes=settings.delivery_handling_minutes,
        ),
        geocoder=geocoder,
    )


class PutRateCard(Command):
    tenant_id: str
    card: RateCard
    actor: str


class QuoteDelivery(Command):
    tenant_id: str
    external_delivery_id: str
    pickup: Stop
    dropoff: Stop
    size: Size
    customer: Customer | None = None
    items: list[Item] | None = None
    notes: str | None = None
    pickup_time: AwareDatetime | None = None
    dropoff_time: AwareDatetime | None = None
    actor: str


class AcceptQuote(Command):
    """`own_only`: the caller reaches only what it created itself (not the whole tenant)."""

    tenant_id: str
    quote_id: str
    actor: str
    own_only: bool = False


class CancelDelivery(Command):
    tenant_id: str
    delivery_id: str
    actor: str
    own_only: bool = False


class ObserveOrders(Command):
    """What the orders events say of delivery-API orders: `{tenant_id, external_id, order_id, status, at}`."""

    observations: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Accepted:
    delivery: Delivery
    quote: Quote
    created: bool


async def put_rate_card(cmd: PutRateCard, *, uow: IntegrationsUnitOfWork) -> RateCard:
    async with uow:
        repository = DeliveryApiRepository(uow.connection)
        before = await repository.rate_card(cmd.tenant_id)
        if before != cmd.card:
            await repository.put_rate_card(
                tenant_id=cmd.tenant_id, card=cmd.card, actor=cmd.actor, now=utcnow()
            )
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=cmd.actor,
                action="delivery_rate_card.changed",
                object_type="delivery_rate_card",
                object_id=cmd.tenant_id,
                before=None if before is None else before.model_dump(mode="json"),
                after=cmd.card.model_dump(mode="json"),
            )
            await uow.commit()
    return cmd.card


async def quote_delivery(
    cmd: QuoteDelivery, *, uow: IntegrationsUnitOfWork, deliveries: DeliveryRuntime
) -> Quote:
    runtime = deliveries
    pickup, dropoff = await _located(cmd, runtime.geocoder)
    async with uow:
        repository = DeliveryApiRepository(uow.connection)
        card = await repository.rate_card(cmd.tenant_id)
        if card is None:
            raise NoRateCard("an admin sets the tenant's rate card first: PUT /v1/deliveries/rate-card")
        quote = Quote.make(
            id=new_id(),
            tenant_id=cmd.tenant_id,
            external_delivery_id=cmd.external_delivery_id,
            created_by=cmd.actor,
            card=card,
            travel=runtime.travel,
            pickup=pickup,
            dropoff=dropoff,
            size=cmd.size,
            customer=cmd.customer,
            items=cmd.items,
            notes=cmd.notes,
            pickup_time=cmd.pickup_time,
            dropoff_time=cmd.dropoff_time,
            now=runtime.clock(),
        )
        await repository.add_quote(quote)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="delivery_quote.created",
            object_type="delivery_quote",
            object_id=quote.id,
            before=None,
            after={
                "external_delivery_id": quote.external_delivery_id,
                "fee": quote.fee,
                "currency": quote.currency,
                "distance_m": quote.distance_m,
                "expires_at": quote.expires_at,
            },
        )
        await uow.commit()
    return quote


async def _located(cmd: QuoteDelivery, geocoder: Geocoder | None) -> tuple[Stop, Stop]:
    """The pickup and drop-off with coordinates, those given by address only geocoded (outside any
    transaction: the geocoder may take seconds). Without a geocoder the stops stay as they are."""
    stops = {"pickup": cmd.pickup, "dropoff": cmd.dropoff}
    if geocoder is not None:
        for name, stop in stops.items():
            if stop.location is not None:
                continue
            try:
                point = await geocoder.geocode(stop.address)
            except GeocodingFailed as exc:
                log.warning("geocoding_failed", stop=name, error=str(exc))
                raise GeocoderUnavailable(
                    f"the geocoder did not answer for the {name} address; try again shortly"
                ) from exc
            if point is not None:
                stops[name] = stop.model_copy(update={"location": point})
        missing = [name for name, stop in stops.items() if stop.location is None]
        if missing:
            raise AddressNotGeocoded(missing)
    return stops["pickup"], stops["dropoff"]


async def accept_quote(
    cmd: AcceptQuote, *, uow: IntegrationsUnitOfWork, deliveries: DeliveryRuntime
) -> Accepted:
    """The delivery for the quote's external_delivery_id: created once (the order follows by event),
    answered as it is on every later accept of the same quote."""
    runtime = deliveries
    try:
        return await _accept_quote(cmd, uow, runtime)
    except IntegrityError:
        # Accepted at the same moment by another request: now the delivery is there to answer.
        return await _accept_quote(cmd, uow, runtime)


async def _accept_quote(cmd: AcceptQuote, uow: IntegrationsUnitOfWork, runtime: DeliveryRuntime) -> Accepted:
    async with uow:
        repository = DeliveryApiRepository(uow.connection)
        quote = await repository.quote(
            tenant_id=cmd.tenant_id, quote_id=cmd.quote_id, created_by=cmd.actor if cmd.own_only else None
        )
        if quote is None:
            raise QuoteNotFound(f"there is no delivery quote {cmd.quote_id}")
        existing = await repository.delivery_by_external_id(
            tenant_id=cmd.tenant_id, external_delivery_id=quote.external_delivery_id
        )
        if existing is not None:
            if existing.quote_id != quote.id:
                raise DeliveryAlreadyExists(
                    f"the external_delivery_id {quote.external_delivery_id!r} is the delivery {existing.id} "
                    f"of the quote {existing.quote_id}",
                    delivery_id=existing.id,
                )
            return Accepted(existing, quote, created=False)
        now = runtime.clock()
        if quote.expired(now):
            raise QuoteExpired(
                f"the quote expired at {quote.expires_at.isoformat()}; ask for a new one",
                expired_at=quote.expires_at.isoformat(),
            )
        delivery = Delivery.request(id=new_id(), quote=quote, created_by=cmd.actor, now=now)
        await repository.add_delivery(delivery)
        _emit_order(uow, delivery, quote, change="placed", version=PLACED_VERSION)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="delivery.requested",
            object_type="delivery",
            object_id=delivery.id,
            before=None,
            after={
                "quote_id": quote.id,
                "external_delivery_id": quote.external_delivery_id,
                "fee": quote.fee,
                "currency": quote.currency,
            },
        )
        await uow.commit()
    return Accepted(delivery, quote, created=True)


async def cancel_delivery(
    cmd: CancelDelivery, *, uow: IntegrationsUnitOfWork, deliveries: DeliveryRuntime
) -> tuple[Delivery, Quote]:
    """Ask the orders service to cancel the order; asking again (or once it is cancelled) changes nothing."""
    runtime = deliveries
    async with uow:
        repository = DeliveryApiRepository(uow.connection)
        delivery = await repository.delivery(
            tenant_id=cmd.tenant_id,
            delivery_id=cmd.delivery_id,
            created_by=cmd.actor if cmd.own_only else None,
            lock=True,
        )
        if delivery is None:
            raise DeliveryNotFound(f"there is no delivery {cmd.delivery_id}")
        quote = await repository.quote(tenant_id=cmd.tenant_id, quote_id=delivery.quote_id)
        if quote is None:
            raise DeliveryNotFound(f"the quote of the delivery {cmd.delivery_id} is gone")
        before = {"status": delivery.status, "cancel_requested_at": delivery.cancel_requested_at}
        if delivery.request_cancellation(runtime.clock()):
            await repository.save_delivery(delivery)
            _emit_order(uow, delivery, quote, change="cancelled", version=CANCELLED_VERSION)
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=cmd.actor,
                action="delivery.cancellation_requested",
                object_type="delivery",
                object_id=delivery.id,
                before=before,
                after={"status": delivery.status, "cancel_requested_at": delivery.cancel_requested_at},
            )
            await uow.commit()
    return delivery, quote


def _emit_order(
    uow: IntegrationsUnitOfWork, delivery: Delivery, quote: Quote, *, change: str, version: int
) -> None:
    """The orders service places and cancels the delivery's order like any platform's, each change once."""
    uow.emit(
        OrderReceived(
            connection_id=SOURCE,
            platform=SOURCE,
            delivery_id=delivery.id,
            external_id=delivery.external_delivery_id,
            draft=quote.order_draft(),
            change="placed" if change == "placed" else "cancelled",
            version=version,
        ),
        tenant_id=delivery.tenant_id,
    )


async def observe_orders(cmd: ObserveOrders, *, uow: IntegrationsUnitOfWork) -> None:
    """Idempotent by the event's time (a late or repeated event changes nothing), so it needs no inbox."""
    if not cmd.observations:
        return
    async with uow:
        repository = DeliveryApiRepository(uow.connection)
        for seen in cmd.observations:
            delivery = await repository.delivery_by_external_id(
                tenant_id=seen["tenant_id"], external_delivery_id=seen["external_id"], lock=True
            )
            if delivery is not None and delivery.observe(
                order_id=seen["order_id"], status=seen["status"], at=seen["at"]
            ):
                await repository.save_delivery(delivery)
        await uow.commit()


HANDLERS: dict[type[Command], Handler] = {
    PutRateCard: put_rate_card,
    QuoteDelivery: quote_delivery,
    AcceptQuote: accept_quote,
    CancelDelivery: cancel_delivery,
    ObserveOrders: observe_orders,
}
