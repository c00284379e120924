"""The last platform change applied to each platform order, so older and repeated changes are ignored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.orders.adapters.tables import metadata

order_platform_versions = Table(
    "order_platform_versions",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("order_id", String(36), primary_key=True),
    # A platform's own ordering of its changes (a version number, or a modification time in µs).
    Column("version", BigInteger, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


class PlatformVersions:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def get(self, *, tenant_id: str, order_id: str) -> int | None:
        table = order_platform_versions
        found: int | None = await self.connection.scalar(
            select(table.c.version).where(table.c.tenant_id == tenant_id, table.c.order_id == order_id)
        )
        return found

    async def set(
        self, *, tenant_id: str, order_id: str, version: int, had: int | None, at: datetime
    ) -> None:
        table = order_platform_versions
        if had is None:
            await self.connection.execute(
                insert(table).values(tenant_id=tenant_id, order_id=order_id, version=version, applied_at=at)
            )
        else:
            await self.connection.execute(
                update(table)
                .where(table.c.tenant_id == tenant_id, table.c.order_id == order_id)
                .values(version=version, applied_at=at)
            )
