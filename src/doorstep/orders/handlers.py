"""Orders use cases, one function per command."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from doorstep.contracts.orders import OrderDraft, Stop
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command
from doorstep.orders.adapters.platform_versions import PlatformVersions
from doorstep.orders.adapters.unit_of_work import OrdersUnitOfWork
from doorstep.orders.delivery_progress import follow_delivery
from doorstep.orders.domain.commands import (
    AmendOrder,
    ChangeOrderStatus,
    FollowDelivery,
    GeocodeOrder,
    ImportOrderBatch,
    PlaceOrder,
)
from doorstep.orders.domain.errors import IdempotencyKeyReused, OrderChangedConcurrently, OrderNotFound
from doorstep.orders.domain.model import STOPS, Order
from doorstep.orders.geocoding import geocode_order, locate_draft, locate_stop
from doorstep.orders.ports import Geocoder
from doorstep.orders.views import OrderDetail, order_detail


@dataclass(frozen=True, slots=True)
class Placement:
    """What placing answered: a new order (201), the existing one (200), or a stored first answer."""

    status_code: int
    body: str


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    created: int
    duplicates: int


async def place_order(
    cmd: PlaceOrder, *, uow: OrdersUnitOfWork, geocoder: Geocoder | None = None
) -> Placement | None:
    """None when the causing message was already handled.

    Stops without coordinates are geocoded first, outside the transaction; an order that still lacks
    some is stored `needs_attention`. Most orders are new, so the first attempt inserts without looking
    for the external id; when the unique constraint says it exists (a duplicate, or a concurrent
    request), the second attempt looks.
    """
    located = await locate_draft(cmd.draft, geocoder)
    if located is not cmd.draft:
        cmd = cmd.model_copy(update={"draft": located})
    try:
        return await _place_order(cmd, uow, look_for_existing=False)
    except IntegrityError:
        return await _place_order(cmd, uow, look_for_existing=True)


async def _place_order(
    cmd: PlaceOrder, uow: OrdersUnitOfWork, *, look_for_existing: bool
) -> Placement | None:
    async with uow:
        if await uow.already_handled():
            return None
        if cmd.idempotency_key is not None:
            stored = await uow.idempotency.find(tenant_id=cmd.tenant_id, key=cmd.idempotency_key)
            if stored is not None:
                if stored.request_hash != cmd.request_hash:
                    raise IdempotencyKeyReused()
                return Placement(stored.status_code, stored.response)
        existing = None
        if look_for_existing and cmd.draft.external_id is not None:
            existing = await uow.orders.find_by_external_id(
                tenant_id=cmd.tenant_id, source=cmd.source, external_id=cmd.draft.external_id
            )
        if existing is not None:
            placement = Placement(200, order_detail(existing).model_dump_json())
        else:
            order = Order.place(
                id=new_id(),
                tenant_id=cmd.tenant_id,
                source=cmd.source,
                draft=cmd.draft,
                actor=cmd.actor,
                now=utcnow(),
            )
            await uow.orders.add(order)
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=cmd.actor,
                action="order.created",
                object_type="order",
                object_id=order.id,
                before=None,
                after=order.snapshot().model_dump(mode="json"),
            )
            placement = Placement(201, order_detail(order).model_dump_json())
        if cmd.idempotency_key is not None and cmd.request_hash is not None:
            await uow.idempotency.remember(
                tenant_id=cmd.tenant_id,
                key=cmd.idempotency_key,
                request_hash=cmd.request_hash,
                status_code=placement.status_code,
                response=placement.body,
                at=utcnow(),
            )
        await uow.commit()
    return placement


async def change_order_status(cmd: ChangeOrderStatus, *, uow: OrdersUnitOfWork) -> OrderDetail:
    async with uow:
        order = await uow.orders.get(tenant_id=cmd.tenant_id, order_id=cmd.order_id)
        if order is None:
            raise OrderNotFound(f"there is no order {cmd.order_id}")
        before = order.status
        order.move_to(cmd.status, actor=cmd.actor, reason=cmd.reason, now=utcnow())
        await uow.orders.save(order, new_history=order.history[-1:])
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="order.status_changed",
            object_type="order",
            object_id=order.id,
            before={"status": before},
            after={"status": order.status, "reason": cmd.reason},
        )
        await uow.commit()
    return order_detail(order)


async def amend_order(
    cmd: AmendOrder, *, uow: OrdersUnitOfWork, geocoder: Geocoder | None = None
) -> OrderDetail:
    changes = await _locate_changed_stops(cmd, uow, geocoder)
    async with uow:
        order = await uow.orders.get(tenant_id=cmd.tenant_id, order_id=cmd.order_id)
        if order is None:
            raise OrderNotFound(f"there is no order {cmd.order_id}")
        before = {name: getattr(order, name) for name in changes}
        history_length = len(order.history)
        changed = order.amend(changes, now=utcnow(), actor=cmd.actor)
        if changed:
            await uow.orders.save(order, new_history=order.history[history_length:])
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=cmd.actor,
                action="order.updated",
                object_type="order",
                object_id=order.id,
                before={name: before[name] for name in changed},
                after={name: getattr(order, name) for name in changed},
            )
            await uow.commit()
    return order_detail(order)


async def _locate_changed_stops(
    cmd: AmendOrder, uow: OrdersUnitOfWork, geocoder: Geocoder | None
) -> dict[str, object]:
    """The changes with coordinates for each stop sent without them whose address is new or unlocated."""
    changes = dict(cmd.changes)
    sent = {
        stop: value for stop in STOPS if isinstance(value := changes.get(stop), Stop) and not value.location
    }
    if not sent or geocoder is None:
        return changes
    async with uow:  # read only, and closed before the geocoder is asked
        order = await uow.orders.get(tenant_id=cmd.tenant_id, order_id=cmd.order_id)
        if order is None:
            raise OrderNotFound(f"there is no order {cmd.order_id}")
    for stop, value in sent.items():
        current: Stop = getattr(order, stop)
        if current.location is None or current.address != value.address:
            changes[stop] = await locate_stop(value, geocoder)
    return changes


async def import_order_batch(
    cmd: ImportOrderBatch, *, uow: OrdersUnitOfWork, geocoder: Geocoder | None = None
) -> BatchOutcome:
    if geocoder is not None:
        cmd = cmd.model_copy(update={"drafts": [await locate_draft(draft, geocoder) for draft in cmd.drafts]})
    try:
        return await _import_order_batch(cmd, uow)
    except IntegrityError:
        # Another writer placed one of these external ids meanwhile; recount against what is stored now.
        return await _import_order_batch(cmd, uow)


async def _import_order_batch(cmd: ImportOrderBatch, uow: OrdersUnitOfWork) -> BatchOutcome:
    source = "csv"
    async with uow:
        seen = await uow.orders.existing_external_ids(
            tenant_id=cmd.tenant_id,
            source=source,
            external_ids=[draft.external_id for draft in cmd.drafts if draft.external_id],
        )
        now = utcnow()
        new_orders: list[Order] = []
        duplicates = 0
        for draft in cmd.drafts:
            external_id = draft.external_id
            if external_id in seen:
                duplicates += 1
                continue
            if external_id is not None:
                seen.add(external_id)
            new_orders.append(
                Order.place(
                    id=new_id(),
                    tenant_id=cmd.tenant_id,
                    source=source,
                    draft=draft,
                    actor=cmd.actor,
                    now=now,
                )
            )
        await uow.orders.add_many(new_orders)
        if new_orders:
            # One entry per batch, not per order: an import of 100 000 rows stays 200 entries.
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=cmd.actor,
                action="order.imported",
                object_type="order_import",
                object_id=new_id(),
                before=None,
                after={
                    "source": source,
                    "order_ids": [order.id for order in new_orders],
                    "duplicates": duplicates,
                },
            )
        await uow.commit()
    return BatchOutcome(created=len(new_orders), duplicates=duplicates)


class ApplyPlatformChange(Command):
    """A platform created, updated or cancelled one of its orders; `draft` is the order after the change."""

    tenant_id: str
    source: str
    external_id: str
    draft: OrderDraft
    cancel: bool
    version: int | None
    actor: str


async def apply_platform_change(
    cmd: ApplyPlatformChange, *, uow: OrdersUnitOfWork, geocoder: Geocoder | None = None
) -> None:
    """Apply each platform change once and in the platform's order, whatever order they arrive in.

    A change at or below the version already applied is ignored (a redelivery, or an older change that
    arrived late); a change for an order not yet stored creates it from its snapshot (cancelled, for a
    cancellation), so shuffled deliveries end where ordered ones do. Stops without coordinates are
    geocoded first, outside the transaction, as for any other placement.
    """
    cmd = cmd.model_copy(update={"draft": await locate_draft(cmd.draft, geocoder)})
    try:
        await _apply_platform_change(cmd, uow)
    except (IntegrityError, OrderChangedConcurrently):
        # The order (or its version row) was created concurrently, or changed between reading and
        # writing it (on PostgreSQL `get` locks the row, so only where rows are not locked): apply
        # against what is stored now; the version check makes the second attempt safe.
        await _apply_platform_change(cmd, uow)


async def _apply_platform_change(cmd: ApplyPlatformChange, uow: OrdersUnitOfWork) -> None:
    async with uow:
        if await uow.already_handled():
            return
        versions = PlatformVersions(uow.connection)
        now = utcnow()
        reason = f"cancelled on {cmd.source}"
        found = await uow.orders.find_by_external_id(
            tenant_id=cmd.tenant_id, source=cmd.source, external_id=cmd.external_id
        )
        order = None if found is None else await uow.orders.get(tenant_id=cmd.tenant_id, order_id=found.id)
        if order is None:
            order = Order.place(
                id=new_id(),
                tenant_id=cmd.tenant_id,
                source=cmd.source,
                draft=cmd.draft.model_copy(update={"external_id": cmd.external_id}),
                actor=cmd.actor,
                now=now,
            )
            if cmd.cancel:
                order.apply_platform_change(cmd.draft, cancel=True, actor=cmd.actor, reason=reason, now=now)
            await uow.orders.add(order)
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=cmd.actor,
                action="order.created",
                object_type="order",
                object_id=order.id,
                before=None,
                after=order.snapshot().model_dump(mode="json"),
            )
            if cmd.version is not None:
                await versions.set(
                    tenant_id=cmd.tenant_id, order_id=order.id, version=cmd.version, had=None, at=now
                )
            await uow.commit()
            return
        applied = await versions.get(tenant_id=cmd.tenant_id, order_id=order.id)
        if cmd.version is not None and applied is not None and cmd.version <= applied:
            await uow.commit()  # marks the event handled; the change itself is already in the order
            return
        before = order.snapshot().model_dump(mode="json")
        history_length = len(order.history)
        outcome = order.apply_platform_change(
            cmd.draft, cancel=cmd.cancel, actor=cmd.actor, reason=reason, now=now
        )
        if outcome.changed or outcome.cancelled:
            await uow.orders.save(order, new_history=order.history[history_length:])
        if outcome.changed or outcome.cancelled or outcome.skipped or outcome.cancel_refused:
            after = order.snapshot().model_dump(mode="json")
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=cmd.actor,
                action="order.platform_changed",
                object_type="order",
                object_id=order.id,
                before={name: before[name] for name in [*outcome.changed, "status"]},
                after={
                    **{name: after[name] for name in [*outcome.changed, "status"]},
                    "skipped_fields": outcome.skipped,
                    "cancel_refused": outcome.cancel_refused,
                    "platform_version": cmd.version,
                },
            )
        if cmd.version is not None:
            await versions.set(
                tenant_id=cmd.tenant_id, order_id=order.id, version=cmd.version, had=applied, at=now
            )
        await uow.commit()


HANDLERS: dict[type[Command], Handler] = {
    ApplyPlatformChange: apply_platform_change,
    PlaceOrder: place_order,
    ChangeOrderStatus: change_order_status,
    AmendOrder: amend_order,
    ImportOrderBatch: import_order_batch,
    GeocodeOrder: geocode_order,
    FollowDelivery: follow_delivery,
}
