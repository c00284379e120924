"""The fleet in the dispatch database: rows in, domain objects out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Table, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.dispatch.adapters.tables import drivers, shifts
from doorstep.dispatch.domain.geometry import parse_area
from doorstep.dispatch.domain.model import (
    Break,
    Driver,
    DriverState,
    Shift,
    Skill,
    Team,
    Vehicle,
    VehicleType,
    Zone,
)


class DriverRepository:
    def __init__(self, connection: AsyncConnection, *, lock_rows: bool) -> None:
        self.connection = connection
        self.seen: list[Driver] = []
        self._lock_rows = lock_rows

    async def add(self, driver: Driver) -> None:
        await self.connection.execute(insert(drivers).values(_driver_row(driver)))
        self.seen.append(driver)

    async def save(self, driver: Driver) -> None:
        await self.connection.execute(
            update(drivers).where(drivers.c.id == driver.id).values(_driver_row(driver))
        )

    async def get(self, *, tenant_id: str, driver_id: str) -> Driver | None:
        return await self._one(drivers.c.tenant_id == tenant_id, drivers.c.id == driver_id)

    async def by_user(self, *, tenant_id: str, user_id: str) -> Driver | None:
        return await self._one(drivers.c.tenant_id == tenant_id, drivers.c.user_id == user_id)

    async def remove(self, driver: Driver) -> None:
        await self.connection.execute(delete(shifts).where(shifts.c.driver_id == driver.id))
        await self.connection.execute(delete(drivers).where(drivers.c.id == driver.id))

    async def _one(self, *conditions: Any) -> Driver | None:
        query = select(drivers).where(*conditions)
        if self._lock_rows:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        if row is None:
            return None
        driver = driver_from_row(row)
        self.seen.append(driver)
        return driver


class FleetRepository:
    """Vehicles, teams, zones and shifts: plain records without events of their own."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def exists(self, table: Table, *, tenant_id: str, object_id: str) -> bool:
        found = await self.connection.scalar(
            select(table.c.id).where(table.c.tenant_id == tenant_id, table.c.id == object_id)
        )
        return found is not None

    async def referenced_by_drivers(self, column_name: str, object_id: str) -> bool:
        column = drivers.c[column_name]
        return bool(await self.connection.scalar(select(exists().where(column == object_id))))

    async def add(self, table: Table, row: dict[str, Any]) -> None:
        await self.connection.execute(insert(table).values(row))

    async def save(self, table: Table, row: dict[str, Any]) -> None:
        await self.connection.execute(update(table).where(table.c.id == row["id"]).values(row))

    async def remove(self, table: Table, object_id: str) -> None:
        await self.connection.execute(delete(table).where(table.c.id == object_id))

    async def overlapping_shift(
        self, *, driver_id: str, starts_at: datetime, ends_at: datetime, other_than: str | None = None
    ) -> str | None:
        """The id of one of the driver's shifts that overlaps the given time, if any."""
        query = select(shifts.c.id).where(
            shifts.c.driver_id == driver_id, shifts.c.starts_at < ends_at, shifts.c.ends_at > starts_at
        )
        if other_than is not None:
            query = query.where(shifts.c.id != other_than)
        found: str | None = await self.connection.scalar(query.limit(1))
        return found

    async def row(self, table: Table, *, tenant_id: str, object_id: str) -> Row[Any] | None:
        return (
            await self.connection.execute(
                select(table).where(table.c.tenant_id == tenant_id, table.c.id == object_id)
            )
        ).first()


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _driver_row(driver: Driver) -> dict[str, Any]:
    return {
        "id": driver.id,
        "tenant_id": driver.tenant_id,
        "user_id": driver.user_id,
        "name": driver.name,
        "phone": driver.phone,
        "vehicle_type": driver.vehicle_type.value,
        "capacity": driver.capacity,
        "skills": sorted(skill.value for skill in driver.skills),
        "home_zone_id": driver.home_zone_id,
        "team_id": driver.team_id,
        "state": driver.state.value,
        "state_changed_at": driver.state_changed_at,
        "created_at": driver.created_at,
        "updated_at": driver.updated_at,
    }


def driver_from_row(row: Row[Any]) -> Driver:
    return Driver(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        name=row.name,
        phone=row.phone,
        vehicle_type=VehicleType(row.vehicle_type),
        capacity=row.capacity,
        skills=frozenset(Skill(skill) for skill in row.skills),
        home_zone_id=row.home_zone_id,
        team_id=row.team_id,
        state=DriverState(row.state),
        state_changed_at=aware(row.state_changed_at),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def vehicle_row(vehicle: Vehicle) -> dict[str, Any]:
    return {
        "id": vehicle.id,
        "tenant_id": vehicle.tenant_id,
        "name": vehicle.name,
        "plate": vehicle.plate,
        "vehicle_type": vehicle.vehicle_type.value,
        "capacity": vehicle.capacity,
        "created_at": vehicle.created_at,
        "updated_at": vehicle.updated_at,
    }


def vehicle_from_row(row: Row[Any]) -> Vehicle:
    return Vehicle(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        plate=row.plate,
        vehicle_type=VehicleType(row.vehicle_type),
        capacity=row.capacity,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def team_row(team: Team) -> dict[str, Any]:
    return {
        "id": team.id,
        "tenant_id": team.tenant_id,
        "name": team.name,
        "created_at": team.created_at,
        "updated_at": team.updated_at,
    }


def team_from_row(row: Row[Any]) -> Team:
    return Team(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def zone_row(zone: Zone) -> dict[str, Any]:
    min_lon, min_lat, max_lon, max_lat = zone.area.bbox
    return {
        "id": zone.id,
        "tenant_id": zone.tenant_id,
        "name": zone.name,
        "geometry": zone.area.geojson(),
        "min_lon": min_lon,
        "min_lat": min_lat,
        "max_lon": max_lon,
        "max_lat": max_lat,
        "created_at": zone.created_at,
        "updated_at": zone.updated_at,
    }


def zone_from_row(row: Row[Any]) -> Zone:
    return Zone(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        area=parse_area(row.geometry),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def shift_row(shift: Shift) -> dict[str, Any]:
    return {
        "id": shift.id,
        "tenant_id": shift.tenant_id,
        "driver_id": shift.driver_id,
        "starts_at": shift.starts_at,
        "ends_at": shift.ends_at,
        "breaks": [
            {"starts_at": b.starts_at.isoformat(), "ends_at": b.ends_at.isoformat()} for b in shift.breaks
        ],
        "created_at": shift.created_at,
    }


def shift_from_row(row: Row[Any]) -> Shift:
    return Shift(
        id=row.id,
        tenant_id=row.tenant_id,
        driver_id=row.driver_id,
        starts_at=aware(row.starts_at),
        ends_at=aware(row.ends_at),
        breaks=tuple(
            Break(datetime.fromisoformat(b["starts_at"]), datetime.fromisoformat(b["ends_at"]))
            for b in row.breaks
        ),
        created_at=aware(row.created_at),
    )
