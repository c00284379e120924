"""The downsampled tracks in the dispatch database: the newest kept point, new points, a time range."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.dispatch.adapters.repositories import aware
from doorstep.dispatch.adapters.tables import driver_track
from doorstep.dispatch.domain.geometry import Point
from doorstep.dispatch.domain.tracks import Ping


class TrackRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def last_kept(self, *, tenant_id: str, driver_id: str) -> Ping | None:
        row = (
            await self.connection.execute(
                select(driver_track)
                .where(driver_track.c.tenant_id == tenant_id, driver_track.c.driver_id == driver_id)
                .order_by(driver_track.c.recorded_at.desc())
                .limit(1)
            )
        ).first()
        return ping_from_row(row) if row else None

    async def add(self, *, tenant_id: str, driver_id: str, pings: Sequence[Ping]) -> None:
        if pings:
            await self.connection.execute(
                insert(driver_track),
                [
                    {
                        "tenant_id": tenant_id,
                        "driver_id": driver_id,
                        "recorded_at": ping.recorded_at,
                        "lat": ping.point.lat,
                        "lon": ping.point.lon,
                        "accuracy_m": ping.accuracy_m,
                        "speed_mps": ping.speed_mps,
                        "heading": ping.heading,
                    }
                    for ping in pings
                ],
            )

    async def forget(self, *, tenant_id: str, driver_id: str) -> None:
        await self.connection.execute(
            delete(driver_track).where(
                driver_track.c.tenant_id == tenant_id, driver_track.c.driver_id == driver_id
            )
        )


async def track_between(
    connection: AsyncConnection,
    *,
    tenant_id: str,
    driver_id: str,
    since: datetime,
    until: datetime,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> list[tuple[int, Ping]]:
    """Kept points with `since <= recorded_at < until`, oldest first, after the (time, id) `after`."""
    query = select(driver_track).where(
        driver_track.c.tenant_id == tenant_id,
        driver_track.c.driver_id == driver_id,
        driver_track.c.recorded_at >= since,
        driver_track.c.recorded_at < until,
    )
    if after is not None:
        query = query.where(tuple_(driver_track.c.recorded_at, driver_track.c.id) > tuple_(*after))
    query = query.order_by(driver_track.c.recorded_at, driver_track.c.id).limit(limit)
    rows = (await connection.execute(query)).all()
    return [(row.id, ping_from_row(row)) for row in rows]


def ping_from_row(row: Row[Any]) -> Ping:
    return Ping(
        point=Point(lat=row.lat, lon=row.lon),
        recorded_at=aware(row.recorded_at),
        accuracy_m=row.accuracy_m,
        speed_mps=row.speed_mps,
        heading=row.heading,
    )
