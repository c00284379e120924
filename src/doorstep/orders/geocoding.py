"""Coordinates for stops that arrive with an address only, asked for outside any transaction."""

from __future__ import annotations

import structlog

from doorstep.contracts.orders import OrderDraft, Stop
from doorstep.kernel.clock import utcnow
from doorstep.kernel.geocoding import AddressNotGeocoded, Geocoder, GeocodingFailed
from doorstep.orders.adapters.unit_of_work import OrdersUnitOfWork
from doorstep.orders.domain.commands import GeocodeOrder
from doorstep.orders.domain.errors import OrderNotFound
from doorstep.orders.domain.model import STOPS
from doorstep.orders.views import OrderDetail, order_detail

log = structlog.get_logger()


async def locate_stop(stop: Stop, geocoder: Geocoder | None) -> Stop:
    """The stop with coordinates where the geocoder finds its address; unchanged otherwise."""
    if stop.location is not None or geocoder is None:
        return stop
    try:
        point = await geocoder.geocode(stop.address)
    except GeocodingFailed as exc:
        log.warning("geocoding_failed", error=str(exc))
        return stop
    return stop if point is None else stop.model_copy(update={"location": point})


async def locate_draft(draft: OrderDraft, geocoder: Geocoder | None) -> OrderDraft:
    """The draft with coordinates filled in where they were missing and the geocoder knows the address."""
    if geocoder is None or all(getattr(draft, stop).location is not None for stop in STOPS):
        return draft
    located = {stop: await locate_stop(getattr(draft, stop), geocoder) for stop in STOPS}
    return draft.model_copy(update=located)


async def geocode_order(
    cmd: GeocodeOrder, *, uow: OrdersUnitOfWork, geocoder: Geocoder | None = None
) -> OrderDetail:
    """Try the geocoder again for an order's stops without coordinates; `placed` once both have them."""
    async with uow:
        order = await uow.orders.get(tenant_id=cmd.tenant_id, order_id=cmd.order_id)
        if order is None:
            raise OrderNotFound(f"there is no order {cmd.order_id}")
        wanted = {stop: getattr(order, stop) for stop in order.unlocated_stops}
    if not wanted:
        return order_detail(order)
    found = {stop: await locate_stop(value, geocoder) for stop, value in wanted.items()}
    located = {stop: value for stop, value in found.items() if value.location is not None}
    if located:
        async with uow:
            order = await uow.orders.get(tenant_id=cmd.tenant_id, order_id=cmd.order_id)
            if order is None:
                raise OrderNotFound(f"there is no order {cmd.order_id}")
            # Only stops still without coordinates and at the address that was geocoded: a PATCH may
            # have come in between.
            changes = {
                stop: value
                for stop, value in located.items()
                if getattr(order, stop).location is None and getattr(order, stop).address == value.address
            }
            before = {"status": order.status.value, **dict.fromkeys(changes)}
            history_length = len(order.history)
            changed = order.amend(dict(changes), now=utcnow(), actor=cmd.actor)
            if changed:
                await uow.orders.save(order, new_history=order.history[history_length:])
                uow.audit(
                    tenant_id=cmd.tenant_id,
                    actor=cmd.actor,
                    action="order.geocoded",
                    object_type="order",
                    object_id=order.id,
                    before=before,
                    after={
                        "status": order.status.value,
                        **{stop: getattr(order, stop).location.model_dump() for stop in changed},
                    },
                )
                await uow.commit()
    missing = order.unlocated_stops
    if missing:
        raise AddressNotGeocoded(missing, fix="set {locations} with PATCH")
    return order_detail(order)
