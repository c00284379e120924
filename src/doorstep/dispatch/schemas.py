"""The request and response bodies of the dispatch API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

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
from doorstep.dispatch.ports import LivePosition
from doorstep.kernel.errors import InvalidInput


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not accepted")
    return value


def in_utc(value: datetime) -> datetime:
    """Stored times are UTC, so that they compare as stored (SQLite keeps no offset)."""
    return value.astimezone(UTC)


def _unique(skills: list[Skill]) -> list[Skill]:
    if len(set(skills)) != len(skills):
        raise ValueError("each skill once")
    return skills


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Reference = Annotated[str, Field(min_length=1, max_length=36), AfterValidator(_no_nul)]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 ()./-]{2,30}$", examples=["+49 30 1234567"])]
Plate = Annotated[str, Field(min_length=1, max_length=20), AfterValidator(_no_nul)]
Capacity = Annotated[int, Field(ge=1, le=100_000, description="In the tenant's units (e.g. bags, totes).")]
Skills = Annotated[list[Skill], Field(max_length=len(Skill)), AfterValidator(_unique)]
Utc = Annotated[AwareDatetime, AfterValidator(in_utc)]


class PositionOut(BaseModel):
    lat: float
    lon: float
    recorded_at: datetime

    @classmethod
    def of(cls, position: LivePosition) -> PositionOut:
        return cls(lat=position.point.lat, lon=position.point.lon, recorded_at=position.at)


class DriverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Reference = Field(description="The identity user who drives (their access token's subject).")
    name: Name
    phone: Phone | None = None
    vehicle_type: VehicleType
    capacity: Capacity
    skills: Skills = Field(default_factory=list)
    home_zone_id: Reference | None = None
    team_id: Reference | None = None


class DriverPatch(BaseModel):
    """Only the fields sent change; `null` clears `phone`, `home_zone_id` and `team_id`."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    phone: Phone | None = None
    vehicle_type: VehicleType | None = None
    capacity: Capacity | None = None
    skills: Skills | None = None
    home_zone_id: Reference | None = None
    team_id: Reference | None = None


_CLEARABLE = frozenset({"phone", "home_zone_id", "team_id"})


def driver_changes(patch: DriverPatch) -> dict[str, Any]:
    changes = plain_changes(patch, clearable=_CLEARABLE)
    if "skills" in changes:
        changes["skills"] = frozenset(changes["skills"])
    return changes


class DriverOut(BaseModel):
    id: str
    user_id: str
    name: str
    phone: str | None
    vehicle_type: VehicleType
    capacity: int
    skills: list[Skill]
    home_zone_id: str | None
    team_id: str | None
    state: DriverState
    state_changed_at: datetime
    position: PositionOut | None
    stale: bool = Field(description="No position heard within DOORSTEP_DISPATCH_STALE_SECONDS.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, driver: Driver, position: LivePosition | None, *, stale: bool) -> DriverOut:
        return cls(
            id=driver.id,
            user_id=driver.user_id,
            name=driver.name,
            phone=driver.phone,
            vehicle_type=driver.vehicle_type,
            capacity=driver.capacity,
            skills=sorted(driver.skills),
            home_zone_id=driver.home_zone_id,
            team_id=driver.team_id,
            state=driver.state,
            state_changed_at=driver.state_changed_at,
            position=PositionOut.of(position) if position else None,
            stale=stale,
            created_at=driver.created_at,
            updated_at=driver.updated_at,
        )


class VehicleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    plate: Plate | None = None
    vehicle_type: VehicleType
    capacity: Capacity


class VehiclePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    plate: Plate | None = None
    vehicle_type: VehicleType | None = None
    capacity: Capacity | None = None


class VehicleOut(BaseModel):
    id: str
    name: str
    plate: str | None
    vehicle_type: VehicleType
    capacity: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, vehicle: Vehicle) -> VehicleOut:
        return cls(
            id=vehicle.id,
            name=vehicle.name,
            plate=vehicle.plate,
            vehicle_type=vehicle.vehicle_type,
            capacity=vehicle.capacity,
            created_at=vehicle.created_at,
            updated_at=vehicle.updated_at,
        )


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class TeamOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, team: Team) -> TeamOut:
        return cls(id=team.id, name=team.name, created_at=team.created_at, updated_at=team.updated_at)


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    geometry: dict[str, Any] = Field(
        description="A GeoJSON Polygon or MultiPolygon (RFC 7946: [longitude, latitude], closed rings).",
        examples=[
            {
                "type": "Polygon",
                "coordinates": [
                    [[13.37, 52.51], [13.42, 52.51], [13.42, 52.54], [13.37, 52.54], [13.37, 52.51]]
                ],
            }
        ],
    )


class ZonePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    geometry: dict[str, Any] | None = None


class ZoneOut(BaseModel):
    id: str
    name: str
    geometry: dict[str, Any]
    bbox: list[float] = Field(description="[min_lon, min_lat, max_lon, max_lat]")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, zone: Zone) -> ZoneOut:
        return cls(
            id=zone.id,
            name=zone.name,
            geometry=zone.area.geojson(),
            bbox=list(zone.area.bbox),
            created_at=zone.created_at,
            updated_at=zone.updated_at,
        )


class BreakIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    starts_at: Utc
    ends_at: Utc


class ShiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    driver_id: Reference
    starts_at: Utc
    ends_at: Utc
    breaks: list[BreakIn] = Field(default_factory=list, max_length=10)


class ShiftPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    starts_at: Utc | None = None
    ends_at: Utc | None = None
    breaks: list[BreakIn] | None = Field(default=None, max_length=10)


class BreakOut(BaseModel):
    starts_at: datetime
    ends_at: datetime

    @classmethod
    def of(cls, pause: Break) -> BreakOut:
        return cls(starts_at=pause.starts_at, ends_at=pause.ends_at)


class ShiftOut(BaseModel):
    id: str
    driver_id: str
    starts_at: datetime
    ends_at: datetime
    breaks: list[BreakOut]
    created_at: datetime

    @classmethod
    def of(cls, shift: Shift) -> ShiftOut:
        return cls(
            id=shift.id,
            driver_id=shift.driver_id,
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            breaks=[BreakOut.of(b) for b in shift.breaks],
            created_at=shift.created_at,
        )


def plain_changes(patch: BaseModel, *, clearable: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The fields sent; `null` only for those that may be cleared (otherwise a 422 naming the field)."""
    changes: dict[str, Any] = {}
    for name in sorted(patch.model_fields_set):
        value = getattr(patch, name)
        if value is None and name not in clearable:
            raise InvalidInput(f"{name} cannot be cleared", field=name, location="body")
        changes[name] = value
    return changes
