"""Read-side queries of the integrations service."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from doorstep.infra.database import Database
from doorstep.integrations.adapters.repositories import connection_from_row, delivery_from_row
from doorstep.integrations.adapters.tables import connections, inbound_deliveries
from doorstep.integrations.domain.model import Connection, DeliveryStatus, InboundDelivery
from doorstep.kernel.pagination import newest_first, page_of


async def list_connections(database: Database, *, tenant_id: str) -> list[Connection]:
    async with database.reader() as session:
        rows = await session.execute(
            select(connections).where(connections.c.tenant_id == tenant_id).order_by(connections.c.id)
        )
        return [connection_from_row(row) for row in rows]


async def get_delivery(database: Database, *, tenant_id: str, delivery_id: str) -> InboundDelivery | None:
    async with database.reader() as session:
        row = (
            await session.execute(
                select(inbound_deliveries).where(
                    inbound_deliveries.c.tenant_id == tenant_id, inbound_deliveries.c.id == delivery_id
                )
            )
        ).first()
    return delivery_from_row(row) if row else None


async def list_deliveries(
    database: Database,
    *,
    tenant_id: str,
    status: DeliveryStatus | None = None,
    connection_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[InboundDelivery], str | None]:
    """Newest first, with the cursor of the next page."""
    query: Select[Any] = select(inbound_deliveries).where(inbound_deliveries.c.tenant_id == tenant_id)
    if status is not None:
        query = query.where(inbound_deliveries.c.status == status.value)
    if connection_id is not None:
        query = query.where(inbound_deliveries.c.connection_id == connection_id)
    query = newest_first(query, inbound_deliveries.c.id, limit=limit, cursor=cursor)
    async with database.reader() as session:
        rows = (await session.execute(query)).all()
    page, next_cursor = page_of(rows, limit)
    return [delivery_from_row(row) for row in page], next_cursor
