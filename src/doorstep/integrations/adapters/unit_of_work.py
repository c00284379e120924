from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.integrations.adapters.repositories import (
    ConnectionRepository,
    DeliveryRepository,
    OrderLinkRepository,
)
from doorstep.kernel.unit_of_work import SqlUnitOfWork


class IntegrationsUnitOfWork(SqlUnitOfWork):
    connections: ConnectionRepository
    deliveries: DeliveryRepository
    order_links: OrderLinkRepository

    def _open(self, connection: AsyncConnection) -> None:
        self.connections = ConnectionRepository(connection)
        self.deliveries = DeliveryRepository(connection)
        self.order_links = OrderLinkRepository(connection)
