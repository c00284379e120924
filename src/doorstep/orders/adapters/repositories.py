"""Orders in the orders database: one row per order (its document as JSON) plus its status history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.contracts.orders import Customer, Item, OrderStatus, Payment, Stop
from doorstep.infra.database import Database
from doorstep.kernel.clock import utcnow
from doorstep.orders.adapters.tables import idempotency_keys, order_status_history, orders
from doorstep.orders.domain.errors import OrderChangedConcurrently
from doorstep.orders.domain.model import Order, StatusChange


class OrderRepository:
    def __init__(self, connection: AsyncConnection, *, lock_rows: bool) -> None:
        self.connection = connection
        self.seen: list[Order] = []
        self._lock_rows = lock_rows

    async def add(self, order: Order) -> None:
        await self.add_many([order])

    async def add_many(self, new_orders: Sequence[Order]) -> None:
        if not new_orders:
            return
        await self.connection.execute(insert(orders), [_row(order) for order in new_orders])
        await self.connection.execute(
            insert(order_status_history),
            [_history_row(order, change) for order in new_orders for change in order.history],
        )
        self.seen.extend(new_orders)

    async def get(self, *, tenant_id: str, order_id: str) -> Order | None:
        query = select(orders).where(orders.c.tenant_id == tenant_id, orders.c.id == order_id)
        if self._lock_rows:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        if row is None:
            return None
        order = order_from_row(row, await self._history(tenant_id, order_id))
        self.seen.append(order)
        return order

    async def find_by_external_id(self, *, tenant_id: str, source: str, external_id: str) -> Order | None:
        row = (
            await self.connection.execute(
                select(orders).where(
                    orders.c.tenant_id == tenant_id,
                    orders.c.source == source,
                    orders.c.external_id == external_id,
                )
            )
        ).first()
        if row is None:
            return None
        return order_from_row(row, await self._history(tenant_id, row.id))

    async def existing_external_ids(
        self, *, tenant_id: str, source: str, external_ids: Iterable[str]
    ) -> set[str]:
        wanted = list(set(external_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            result = await self.connection.execute(
                select(orders.c.external_id).where(
                    orders.c.tenant_id == tenant_id,
                    orders.c.source == source,
                    orders.c.external_id.in_(chunk),
                )
            )
            found.update(value for value in result.scalars() if value is not None)
        return found

    async def save(self, order: Order, *, new_history: Sequence[StatusChange] = ()) -> None:
        """Write the order back; fails with `OrderChangedConcurrently` if its version moved meanwhile."""
        values = _row(order)
        values["version"] = order.version + 1
        result = await self.connection.execute(
            update(orders)
            .where(
                orders.c.tenant_id == order.tenant_id,
                orders.c.id == order.id,
                orders.c.version == order.version,
            )
            .values(values)
        )
        if getattr(result, "rowcount", 1) != 1:
            raise OrderChangedConcurrently(order.id)
        order.version += 1
        if new_history:
            await self.connection.execute(
                insert(order_status_history), [_history_row(order, change) for change in new_history]
            )

    async def _history(self, tenant_id: str, order_id: str) -> list[StatusChange]:
        rows = await self.connection.execute(
            select(order_status_history)
            .where(order_status_history.c.tenant_id == tenant_id, order_status_history.c.order_id == order_id)
            .order_by(order_status_history.c.seq)
        )
        return [history_from_row(row) for row in rows]


class IdempotencyStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def find(self, *, tenant_id: str, key: str) -> Row[Any] | None:
        return (
            await self.connection.execute(
                select(idempotency_keys).where(
                    tuple_(idempotency_keys.c.tenant_id, idempotency_keys.c.key) == (tenant_id, key)
                )
            )
        ).first()

    async def remember(
        self, *, tenant_id: str, key: str, request_hash: str, status_code: int, response: str, at: Any
    ) -> None:
        await self.connection.execute(
            insert(idempotency_keys).values(
                tenant_id=tenant_id,
                key=key,
                request_hash=request_hash,
                status_code=status_code,
                response=response,
                created_at=at,
            )
        )


def _row(order: Order) -> dict[str, Any]:
    totals = order.totals
    return {
        "id": order.id,
        "tenant_id": order.tenant_id,
        "source": order.source,
        "external_id": order.external_id,
        "merchant_id": order.merchant_id,
        "placed_by": order.history[0].actor if order.history else None,
        "status": order.status.value,
        "currency": order.currency,
        "subtotal": totals.subtotal,
        "delivery_fee": order.delivery_fee,
        "tip": order.tip,
        "total": totals.total,
        "customer_name": order.customer.name,
        "customer_phone": order.customer.phone,
        "customer_email": order.customer.email,
        "pickup_address": order.pickup.address,
        "dropoff_address": order.dropoff.address,
        "document": {
            "pickup": order.pickup.model_dump(mode="json"),
            "dropoff": order.dropoff.model_dump(mode="json"),
            "customer": order.customer.model_dump(mode="json"),
            "items": [item.model_dump(mode="json") for item in order.items],
            "payment": order.payment.model_dump(mode="json"),
            "notes": order.notes,
        },
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "version": order.version,
    }


def _history_row(order: Order, change: StatusChange) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "tenant_id": order.tenant_id,
        "from_status": change.from_status.value if change.from_status else None,
        "to_status": change.to_status.value,
        "actor": change.actor,
        "reason": change.reason,
        "at": change.at,
    }


def order_from_row(row: Row[Any], history: list[StatusChange]) -> Order:
    document = row.document
    return Order(
        id=row.id,
        tenant_id=row.tenant_id,
        source=row.source,
        external_id=row.external_id,
        merchant_id=row.merchant_id,
        pickup=Stop.model_validate(document["pickup"]),
        dropoff=Stop.model_validate(document["dropoff"]),
        customer=Customer.model_validate(document["customer"]),
        items=[Item.model_validate(item) for item in document["items"]],
        currency=row.currency,
        tip=row.tip,
        delivery_fee=row.delivery_fee,
        notes=document.get("notes"),
        payment=Payment.model_validate(document["payment"]),
        status=OrderStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        history=history,
    )


def history_from_row(row: Row[Any]) -> StatusChange:
    return StatusChange(
        from_status=OrderStatus(row.from_status) if row.from_status else None,
        to_status=OrderStatus(row.to_status),
        actor=row.actor,
        reason=row.reason,
        at=row.at,
    )


async def prune_idempotency_keys(database: Database, *, older_than: timedelta) -> int:
    """Forget idempotency keys past their retention; a retry that late is a new request."""
    async with database.writer_engine.begin() as connection:
        result = await connection.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at < utcnow() - older_than)
        )
    return int(getattr(result, "rowcount", 0) or 0)
