"""Read-side queries of the dispatch service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, Table, select

from doorstep.dispatch.adapters.repositories import driver_from_row, shift_from_row
from doorstep.dispatch.adapters.tables import drivers, shifts
from doorstep.dispatch.adapters.track_repository import track_between
from doorstep.dispatch.domain.model import Driver, DriverState, Shift
from doorstep.dispatch.domain.tracks import Ping
from doorstep.infra.database import Database
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.pagination import decode_cursor, encode_cursor, newest_first, page_of


async def get_driver(database: Database, *, tenant_id: str, driver_id: str) -> Driver | None:
    async with database.reader() as session:
        row = (
            await session.execute(
                select(drivers).where(drivers.c.tenant_id == tenant_id, drivers.c.id == driver_id)
            )
        ).first()
    return driver_from_row(row) if row else None


async def drivers_by_id(
    database: Database, *, tenant_id: str, driver_ids: Sequence[str]
) -> dict[str, Driver]:
    if not driver_ids:
        return {}
    async with database.reader() as session:
        rows = await session.execute(
            select(drivers).where(drivers.c.tenant_id == tenant_id, drivers.c.id.in_(list(driver_ids)))
        )
        return {row.id: driver_from_row(row) for row in rows}


async def list_drivers(
    database: Database,
    *,
    tenant_id: str,
    state: DriverState | None = None,
    team_id: str | None = None,
    home_zone_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Driver], str | None]:
    """Newest first, with the cursor of the next page."""
    query = select(drivers).where(drivers.c.tenant_id == tenant_id)
    if state is not None:
        query = query.where(drivers.c.state == state.value)
    if team_id is not None:
        query = query.where(drivers.c.team_id == team_id)
    if home_zone_id is not None:
        query = query.where(drivers.c.home_zone_id == home_zone_id)
    return await listed(database, drivers, query, driver_from_row, limit=limit, cursor=cursor)


async def get_shift(database: Database, *, tenant_id: str, shift_id: str) -> Shift | None:
    async with database.reader() as session:
        row = (
            await session.execute(
                select(shifts).where(shifts.c.tenant_id == tenant_id, shifts.c.id == shift_id)
            )
        ).first()
    return shift_from_row(row) if row else None


async def list_shifts(
    database: Database,
    *,
    tenant_id: str,
    driver_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Shift], str | None]:
    query = select(shifts).where(shifts.c.tenant_id == tenant_id)
    if driver_id is not None:
        query = query.where(shifts.c.driver_id == driver_id)
    return await listed(database, shifts, query, shift_from_row, limit=limit, cursor=cursor)


async def listed(
    database: Database,
    table: Table,
    query: Select[Any],
    from_row: Callable[[Row[Any]], Any],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One page of `query` over `table`, newest first, and the cursor of the next."""
    query = newest_first(query, table.c.id, limit=limit, cursor=cursor)
    async with database.reader() as session:
        rows = (await session.execute(query)).all()
    page, next_cursor = page_of(rows, limit)
    return [from_row(row) for row in page], next_cursor


async def track(
    database: Database,
    *,
    tenant_id: str,
    driver_id: str,
    since: datetime,
    until: datetime,
    limit: int,
    cursor: str | None,
) -> tuple[list[Ping], str | None]:
    """The kept points between `since` and `until`, oldest first, with the cursor of the next page."""
    after = _track_position(cursor) if cursor else None
    async with database.reader_engine.connect() as connection:
        found = await track_between(
            connection,
            tenant_id=tenant_id,
            driver_id=driver_id,
            since=since,
            until=until,
            limit=limit + 1,
            after=after,
        )
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last_id, last = page[-1]
        next_cursor = encode_cursor({"at": last.recorded_at.isoformat(), "id": last_id})
    return [ping for _, ping in page], next_cursor


def _track_position(cursor: str) -> tuple[datetime, int]:
    position = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(position["at"]), int(position["id"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(
            "the cursor is not one this API returned", field="cursor", location="query"
        ) from None
