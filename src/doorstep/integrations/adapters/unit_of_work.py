from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

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

    def _open(self, session: AsyncSession) -> None:
        self.connections = ConnectionRepository(session)
        self.deliveries = DeliveryRepository(session)
        self.order_links = OrderLinkRepository(session)
