from datetime import datetime
from typing import Any

from doorstep.dispatch.domain.model import DriverState, Skill, VehicleType
from doorstep.dispatch.domain.tracks import Ping
from doorstep.kernel.messages import Command


class RegisterDriver(Command):
    tenant_id: str
    user_id: str
    name: str
    phone: str | None = None
    vehicle_type: VehicleType
    capacity: int
    skills: frozenset[Skill] = frozenset()
    home_zone_id: str | None = None
    team_id: str | None = None
    actor: str = "system"


class ChangeDriver(Command):
    """Only the profile fields in `changes` change; `None` clears an optional one."""

    tenant_id: str
    driver_id: str
    changes: dict[str, Any]
    actor: str = "system"


class RemoveDriver(Command):
    tenant_id: str
    driver_id: str
    actor: str = "system"


class ChangeDriverState(Command):
    """Move a driver given by id (a dispatcher) or by their user id (the driver, for `me`)."""

    tenant_id: str
    driver_id: str | None = None
    user_id: str | None = None
    state: DriverState
    actor: str = "system"


class RecordPositions(Command):
    """A driver's batch of pings: the latest to the geo store, a downsampled few to the track."""

    tenant_id: str
    user_id: str
    pings: tuple[Ping, ...]


class AddVehicle(Command):
    tenant_id: str
    name: str
    plate: str | None = None
    vehicle_type: VehicleType
    capacity: int
    actor: str = "system"


class AddTeam(Command):
    tenant_id: str
    name: str
    actor: str = "system"


class AddZone(Command):
    tenant_id: str
    name: str
    geometry: dict[str, Any]
    actor: str = "system"


class ChangeFleetObject(Command):
    """Change a vehicle, team or zone (`kind`); only the fields in `changes` change."""

    tenant_id: str
    kind: str
    object_id: str
    changes: dict[str, Any]
    actor: str = "system"


class RemoveFleetObject(Command):
    tenant_id: str
    kind: str
    object_id: str
    actor: str = "system"


class ScheduleShift(Command):
    tenant_id: str
    driver_id: str
    starts_at: datetime
    ends_at: datetime
    breaks: tuple[tuple[datetime, datetime], ...] = ()
    actor: str = "system"


class ChangeShift(Command):
    tenant_id: str
    shift_id: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    breaks: tuple[tuple[datetime, datetime], ...] | None = None
    actor: str = "system"


class CancelShift(Command):
    tenant_id: str
    shift_id: str
    actor: str = "system"
