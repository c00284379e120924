"""Connections, inbound deliveries and order links in the integrations database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.integrations.adapters.tables import connections, inbound_deliveries, order_links
from doorstep.integrations.domain.model import Connection, DeliveryStatus, InboundDelivery


class ConnectionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, connection: Connection) -> None:
        await self.connection.execute(
            insert(connections).values(
                id=connection.id,
                tenant_id=connection.tenant_id,
                platform=connection.platform,
                token=connection.token,
                secret=connection.secret,
                settings=connection.settings,
                created_at=connection.created_at,
            )
        )

    async def by_token(self, token: str) -> Connection | None:
        row = (await self.connection.execute(select(connections).where(connections.c.token == token))).first()
        return connection_from_row(row) if row else None

    async def save_settings(self, connection: Connection) -> None:
        await self.connection.execute(
            update(connections)
            .where(connections.c.tenant_id == connection.tenant_id, connections.c.id == connection.id)
            .values(settings=connection.settings)
        )

    async def get(self, *, tenant_id: str, connection_id: str) -> Connection | None:
        row = (
            await self.connection.execute(
                select(connections).where(
                    connections.c.tenant_id == tenant_id, connections.c.id == connection_id
                )
            )
        ).first()
        return connection_from_row(row) if row else None


class DeliveryRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, delivery: InboundDelivery) -> None:
        await self.connection.execute(insert(inbound_deliveries).values(_row(delivery)))

    async def by_platform_delivery_id(
        self, *, connection_id: str, platform_delivery_id: str
    ) -> InboundDelivery | None:
        row = (
            await self.connection.execute(
                select(inbound_deliveries).where(
                    inbound_deliveries.c.connection_id == connection_id,
                    inbound_deliveries.c.platform_delivery_id == platform_delivery_id,
                )
            )
        ).first()
        return delivery_from_row(row) if row else None

    async def get(self, *, tenant_id: str, delivery_id: str) -> InboundDelivery | None:
        row = (
            await self.connection.execute(
                select(inbound_deliveries).where(
                    inbound_deliveries.c.tenant_id == tenant_id, inbound_deliveries.c.id == delivery_id
                )
            )
        ).first()
        return delivery_from_row(row) if row else None

    async def save(self, delivery: InboundDelivery) -> None:
        await self.connection.execute(
            update(inbound_deliveries)
            .where(
                inbound_deliveries.c.id == delivery.id, inbound_deliveries.c.tenant_id == delivery.tenant_id
            )
            .values(_row(delivery))
        )


class OrderLinkRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(
        self, *, tenant_id: str, order_id: str, source: str, external_id: str | None, at: Any
    ) -> None:
        await self.connection.execute(
            insert(order_links).values(
                order_id=order_id, tenant_id=tenant_id, source=source, external_id=external_id, linked_at=at
            )
        )

    async def exists(self, order_id: str) -> bool:
        found = await self.connection.scalar(
            select(order_links.c.order_id).where(order_links.c.order_id == order_id)
        )
        return found is not None


def _row(delivery: InboundDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "tenant_id": delivery.tenant_id,
        "connection_id": delivery.connection_id,
        "platform": delivery.platform,
        "platform_delivery_id": delivery.platform_delivery_id,
        "headers": delivery.headers,
        "body": delivery.body,
        "received_at": delivery.received_at,
        "status": delivery.status.value,
        "external_id": delivery.external_id,
        "failure_field": delivery.failure_field,
        "failure_reason": delivery.failure_reason,
        "attempts": delivery.attempts,
    }


def connection_from_row(row: Row[Any]) -> Connection:
    return Connection(
        id=row.id,
        tenant_id=row.tenant_id,
        platform=row.platform,
        token=row.token,
        secret=row.secret,
        settings=dict(row.settings),
        created_at=row.created_at,
    )


def delivery_from_row(row: Row[Any]) -> InboundDelivery:
    return InboundDelivery(
        id=row.id,
        tenant_id=row.tenant_id,
        connection_id=row.connection_id,
        platform=row.platform,
        platform_delivery_id=row.platform_delivery_id,
        headers=dict(row.headers),
        body=bytes(row.body),
        received_at=row.received_at,
        status=DeliveryStatus(row.status),
        external_id=row.external_id,
        failure_field=row.failure_field,
        failure_reason=row.failure_reason,
        attempts=row.attempts,
    )
