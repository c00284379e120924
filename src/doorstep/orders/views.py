"""Read-side queries of the orders service and the shapes the API answers with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, or_, select

from doorstep.contracts.orders import OrderSnapshot, OrderStatus
from doorstep.infra.database import Database
from doorstep.kernel.auth import Principal
from doorstep.kernel.pagination import Page, newest_first, page_of
from doorstep.kernel.permissions import Reach
from doorstep.orders.adapters.repositories import history_from_row, order_from_row
from doorstep.orders.adapters.tables import order_status_history, orders
from doorstep.orders.domain.model import Order, StatusChange


class StatusChangeView(BaseModel):
    from_status: OrderStatus | None
    status: OrderStatus
    actor: str
    reason: str | None
    at: datetime


class OrderView(OrderSnapshot):
    allowed_statuses: list[OrderStatus]


class OrderDetail(OrderView):
    status_history: list[StatusChangeView]


def order_view(order: Order) -> OrderView:
    # Field by field from the snapshot: its nested models are reused, not dumped and validated again.
    return OrderView(**dict(order.snapshot()), allowed_statuses=_allowed(order))


def order_detail(order: Order) -> OrderDetail:
    return OrderDetail(
        **dict(order.snapshot()),
        allowed_statuses=_allowed(order),
        status_history=[_change_view(change) for change in order.history],
    )


def _allowed(order: Order) -> list[OrderStatus]:
    return sorted(order.allowed_statuses, key=_status_order)


def _change_view(change: StatusChange) -> StatusChangeView:
    return StatusChangeView(
        from_status=change.from_status,
        status=change.to_status,
        actor=change.actor,
        reason=change.reason,
        at=change.at,
    )


def _status_order(status: OrderStatus) -> int:
    return list(OrderStatus).index(status)


def within_reach(query: Select[Any], viewer: Principal | None) -> Select[Any]:
    """A customer sees the orders they placed; merchant staff the orders of their merchants."""
    if viewer is None or viewer.reach is Reach.TENANT:
        return query
    if viewer.reach is Reach.MERCHANTS:
        return query.where(orders.c.merchant_id.in_(sorted(viewer.merchant_ids)))
    return query.where(orders.c.placed_by == viewer.actor)


async def get_order(
    database: Database, *, tenant_id: str, order_id: str, viewer: Principal | None = None
) -> OrderDetail | None:
    async with database.reader() as session:
        row = (
            await session.execute(
                within_reach(
                    select(orders).where(orders.c.tenant_id == tenant_id, orders.c.id == order_id), viewer
                )
            )
        ).first()
        if row is None:
            return None
        history = await session.execute(
            select(order_status_history)
            .where(order_status_history.c.tenant_id == tenant_id, order_status_history.c.order_id == order_id)
            .order_by(order_status_history.c.seq)
        )
        return order_detail(order_from_row(row, [history_from_row(change) for change in history]))


async def list_orders(
    database: Database,
    *,
    tenant_id: str,
    statuses: Sequence[OrderStatus] = (),
    source: str | None = None,
    merchant_id: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    text: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    viewer: Principal | None = None,
) -> Page[OrderView]:
    """Newest first. The cursor holds the last id seen; ids sort by creation time (UUIDv7)."""
    query: Select[Any] = within_reach(select(orders).where(orders.c.tenant_id == tenant_id), viewer)
    if statuses:
        query = query.where(orders.c.status.in_([status.value for status in statuses]))
    if source:
        query = query.where(orders.c.source == source)
    if merchant_id:
        query = query.where(orders.c.merchant_id == merchant_id)
    if created_from:
        query = query.where(orders.c.created_at >= created_from)
    if created_to:
        query = query.where(orders.c.created_at < created_to)
    if text:
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = (
            orders.c.customer_name,
            orders.c.customer_phone,
            orders.c.customer_email,
            orders.c.pickup_address,
            orders.c.dropoff_address,
        )
        query = query.where(or_(*(column.ilike(pattern, escape="\\") for column in columns)))
    query = newest_first(query, orders.c.id, limit=limit, cursor=cursor)
    async with database.reader() as session:
        rows = (await session.execute(query)).all()
    page, next_cursor = page_of(rows, limit)
    items = [order_view(order_from_row(row, [])) for row in page]
    return Page[OrderView](items=items, next_cursor=next_cursor)
