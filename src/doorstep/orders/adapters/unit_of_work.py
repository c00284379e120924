from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.kernel.aggregate import Aggregate
from doorstep.kernel.unit_of_work import SqlUnitOfWork
from doorstep.orders.adapters.repositories import IdempotencyStore, OrderRepository


class OrdersUnitOfWork(SqlUnitOfWork):
    orders: OrderRepository
    idempotency: IdempotencyStore

    def _open(self, connection: AsyncConnection) -> None:
        # SQLite already serialises writers (BEGIN IMMEDIATE); PostgreSQL locks the rows it changes.
        self.orders = OrderRepository(connection, lock_rows=self._notify_channel is not None)
        self.idempotency = IdempotencyStore(connection)

    def _tracked(self) -> Iterable[Aggregate]:
        return self.orders.seen
