"""The demo tenant's fleet: a Mitte service zone, a team, three drivers on today's shift, on duty."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from doorstep.dispatch import views as dispatch_views
from doorstep.dispatch.adapters.repositories import driver_from_row
from doorstep.dispatch.adapters.tables import drivers
from doorstep.dispatch.domain.commands import (
    AddTeam,
    AddZone,
    ChangeDriverState,
    RecordPositions,
    RegisterDriver,
    ScheduleShift,
)
from doorstep.dispatch.domain.geometry import Point
from doorstep.dispatch.domain.model import Driver, DriverState, Skill, VehicleType
from doorstep.dispatch.domain.tracks import Ping
from doorstep.dispatch.fleet_handlers import KINDS
from doorstep.identity.adapters.accounts import UserRepository
from doorstep.identity.domain.commands import CreateUser
from doorstep.infra.service import Service
from doorstep.kernel.clock import utcnow

BERLIN = ZoneInfo("Europe/Berlin")
ZONE_NAME = "Mitte"
# Berlin Mitte, roughly: from the Tiergarten's east end to Alexanderplatz, Kreuzberg's edge to Invalidenstraße.
MITTE = {
    "type": "Polygon",
    "coordinates": [[[13.36, 52.50], [13.43, 52.50], [13.43, 52.54], [13.36, 52.54], [13.36, 52.50]]],
}
TEAM_NAME = "Mitte couriers"
SHIFT_HOURS = (time(7), time(23))


@dataclass(frozen=True, slots=True)
class DemoDriver:
    email: str
    name: str
    vehicle_type: VehicleType
    capacity: int
    skills: frozenset[Skill]
    where: Point  # where the driver waits when the demo starts


DEMO_DRIVERS = [
    DemoDriver(
        "driver1@demo.doorstep.test",
        "Mia Bauer",
        VehicleType.BICYCLE,
        2,
        frozenset({Skill.HOT_BAG}),
        Point(lat=52.5251, lon=13.3889),  # Oranienburger Tor
    ),
    DemoDriver(
        "driver2@demo.doorstep.test",
        "Can Öztürk",
        VehicleType.CARGO_BIKE,
        6,
        frozenset({Skill.AGE_CHECK}),
        Point(lat=52.5297, lon=13.4016),  # Rosenthaler Platz
    ),
    DemoDriver(
        "driver3@demo.doorstep.test",
        "Jan Wójcik",
        VehicleType.CAR,
        10,
        frozenset({Skill.CASH}),
        Point(lat=52.5128, lon=13.4175),  # Jannowitzbrücke
    ),
]


async def ensure_fleet(services: dict[str, Service], tenant_id: str, *, password: str) -> None:
    """Create what is missing of the fleet, then put every driver on duty where they wait.

    Positions are not kept across restarts (in the all-in-one shape they live in the process), so each
    start sends them again; everything else is created once.
    """
    dispatch = services["dispatch"]
    zone_id = await _zone(dispatch, tenant_id)
    team_id = await _team(dispatch, tenant_id)
    start, end = _todays_shift()
    for spec in DEMO_DRIVERS:
        user_id = await _user(services["identity"], tenant_id, spec, password)
        driver = await _driver(dispatch, tenant_id, user_id, spec, zone_id=zone_id, team_id=team_id)
        await _shift(dispatch, tenant_id, driver.id, start, end)
        if driver.state is not DriverState.AVAILABLE:
            await dispatch.bus.handle(
                ChangeDriverState(
                    tenant_id=tenant_id, driver_id=driver.id, state=DriverState.AVAILABLE, actor="demo"
                )
            )
        await dispatch.bus.handle(
            RecordPositions(
                tenant_id=tenant_id,
                user_id=user_id,
                pings=(Ping(point=spec.where, recorded_at=utcnow(), accuracy_m=8.0),),
            )
        )


async def _zone(dispatch: Service, tenant_id: str) -> str:
    found = await _named(dispatch, "zone", tenant_id, ZONE_NAME)
    if found is not None:
        return found
    zone = await dispatch.bus.handle(
        AddZone(tenant_id=tenant_id, name=ZONE_NAME, geometry=MITTE, actor="demo")
    )
    return str(zone.id)


async def _team(dispatch: Service, tenant_id: str) -> str:
    found = await _named(dispatch, "team", tenant_id, TEAM_NAME)
    if found is not None:
        return found
    team = await dispatch.bus.handle(AddTeam(tenant_id=tenant_id, name=TEAM_NAME, actor="demo"))
    return str(team.id)


async def _named(dispatch: Service, kind: str, tenant_id: str, name: str) -> str | None:
    table = KINDS[kind].table
    query = table.select().where(table.c.tenant_id == tenant_id, table.c.name == name)
    found, _ = await dispatch_views.listed(
        dispatch.database, table, query, KINDS[kind].from_row, limit=1, cursor=None
    )
    return str(found[0].id) if found else None


async def _user(identity: Service, tenant_id: str, spec: DemoDriver, password: str) -> str:
    async with identity.database.reader() as session:
        user = await UserRepository(await session.connection()).find(tenant_id=tenant_id, email=spec.email)
    if user is None:
        user = await identity.bus.handle(
            CreateUser(
                tenant_id=tenant_id, email=spec.email, password=password, name=spec.name, roles=["driver"]
            )
        )
    return str(user.id)


async def _driver(
    dispatch: Service, tenant_id: str, user_id: str, spec: DemoDriver, *, zone_id: str, team_id: str
) -> Driver:
    query = drivers.select().where(drivers.c.tenant_id == tenant_id, drivers.c.user_id == user_id)
    found, _ = await dispatch_views.listed(
        dispatch.database, drivers, query, driver_from_row, limit=1, cursor=None
    )
    if found:
        driver: Driver = found[0]
        return driver
    registered: Driver = await dispatch.bus.handle(
        RegisterDriver(
            tenant_id=tenant_id,
            user_id=user_id,
            name=spec.name,
            vehicle_type=spec.vehicle_type,
            capacity=spec.capacity,
            skills=spec.skills,
            home_zone_id=zone_id,
            team_id=team_id,
            actor="demo",
        )
    )
    return registered


async def _shift(dispatch: Service, tenant_id: str, driver_id: str, start: datetime, end: datetime) -> None:
    shifts, _ = await dispatch_views.list_shifts(
        dispatch.database, tenant_id=tenant_id, driver_id=driver_id, limit=50
    )
    if any(shift.starts_at < end and start < shift.ends_at for shift in shifts):
        return
    await dispatch.bus.handle(
        ScheduleShift(tenant_id=tenant_id, driver_id=driver_id, starts_at=start, ends_at=end, actor="demo")
    )


def _todays_shift() -> tuple[datetime, datetime]:
    today = utcnow().astimezone(BERLIN).date()
    start, end = (datetime.combine(today, hour, BERLIN) for hour in SHIFT_HOURS)
    return start.astimezone(UTC), end.astimezone(UTC)
