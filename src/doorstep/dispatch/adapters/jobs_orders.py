"""The orders dispatch has heard of: their status and stops, kept until the order becomes a job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.dispatch.adapters.tables import dispatch_orders


@dataclass(frozen=True, slots=True)
class KnownOrder:
    tenant_id: str
    order_id: str
    status: str
    pickup: dict[str, Any]  # the orders contract's Stop, as JSON
    dropoff: dict[str, Any]


class KnownOrders:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def get(self, *, tenant_id: str, order_id: str) -> KnownOrder | None:
        row = (
            await self.connection.execute(
                select(dispatch_orders).where(
                    dispatch_orders.c.tenant_id == tenant_id, dispatch_orders.c.order_id == order_id
                )
            )
        ).first()
        if row is None:
            return None
        return KnownOrder(row.tenant_id, row.order_id, row.status, row.pickup, row.dropoff)

    async def put(self, order: KnownOrder, *, now: datetime) -> None:
        values = {"status": order.status, "pickup": order.pickup, "dropoff": order.dropoff, "updated_at": now}
        where = (dispatch_orders.c.tenant_id == order.tenant_id, dispatch_orders.c.order_id == order.order_id)
        result = await self.connection.execute(update(dispatch_orders).where(*where).values(values))
        if getattr(result, "rowcount", 1) == 0:
            await self.connection.execute(
                insert(dispatch_orders).values(tenant_id=order.tenant_id, order_id=order.order_id, **values)
            )
