"""Orders use cases, one function per command."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command
from doorstep.orders.adapters.unit_of_work import OrdersUnitOfWork
from doorstep.orders.domain.commands import AmendOrder, ChangeOrderStatus, ImportOrderBatch, PlaceOrder
from doorstep.orders.domain.errors import IdempotencyKeyReused, OrderNotFound
from doorstep.orders.domain.model import Order
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


async def place_order(cmd: PlaceOrder, *, uow: OrdersUnitOfWork) -> Placement | None:
    """None when the causing message was already handled.

    Most orders are new, so the first attempt inserts without looking for the external id; when the
    unique constraint says it exists (a duplicate, or a concurrent request), the second attempt looks.
    """
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


async def amend_order(cmd: AmendOrder, *, uow: OrdersUnitOfWork) -> OrderDetail:
    async with uow:
        order = await uow.orders.get(tenant_id=cmd.tenant_id, order_id=cmd.order_id)
        if order is None:
            raise OrderNotFound(f"there is no order {cmd.order_id}")
        before = {name: getattr(order, name) for name in cmd.changes}
        changed = order.amend(dict(cmd.changes), now=utcnow())
        if changed:
            await uow.orders.save(order)
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


async def import_order_batch(cmd: ImportOrderBatch, *, uow: OrdersUnitOfWork) -> BatchOutcome:
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


HANDLERS: dict[type[Command], Handler] = {
    PlaceOrder: place_order,
    ChangeOrderStatus: change_order_status,
    AmendOrder: amend_order,
    ImportOrderBatch: import_order_batch,
}
