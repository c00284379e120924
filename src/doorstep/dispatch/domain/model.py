"""The fleet: drivers and their duty states, vehicles, teams, service zones and shifts. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from doorstep.contracts.dispatch import DriverChanged, DriverRegistered, DriverStateChanged
from doorstep.dispatch.domain.errors import IllegalDriverTransition, InvalidFleetInput
from doorstep.dispatch.domain.geometry import Area
from doorstep.kernel.aggregate import Aggregate

MAX_SHIFT = timedelta(hours=24)


class VehicleType(StrEnum):
    BICYCLE = "bicycle"
    CARGO_BIKE = "cargo_bike"
    SCOOTER = "scooter"
    CAR = "car"
    VAN = "van"
    ROBOT = "robot"


class Skill(StrEnum):
    """What a job may require of whoever delivers it."""

    AGE_CHECK = "age_check"
    CASH = "cash"
    HOT_BAG = "hot_bag"
    COLD_CHAIN = "cold_chain"
    HEAVY_LOAD = "heavy_load"
    PHARMACY = "pharmacy"


class DriverState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    ON_JOB = "on_job"
    ON_BREAK = "on_break"


# A driver can always go off duty (the app closed, the dispatcher ends the day); the rest is the cycle
# available <-> on_break and available -> on_job -> available.
TRANSITIONS: dict[DriverState, frozenset[DriverState]] = {
    DriverState.OFFLINE: frozenset({DriverState.AVAILABLE}),
    DriverState.AVAILABLE: frozenset({DriverState.ON_BREAK, DriverState.ON_JOB, DriverState.OFFLINE}),
    DriverState.ON_BREAK: frozenset({DriverState.AVAILABLE, DriverState.OFFLINE}),
    DriverState.ON_JOB: frozenset({DriverState.AVAILABLE, DriverState.OFFLINE}),
}


@dataclass(kw_only=True)
class Driver(Aggregate):
    id: str
    user_id: str  # the identity user (the access token's subject) who drives
    name: str
    phone: str | None
    vehicle_type: VehicleType
    capacity: int
    skills: frozenset[Skill]
    home_zone_id: str | None
    team_id: str | None
    state: DriverState
    state_changed_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def register(cls, *, id: str, tenant_id: str, user_id: str, now: datetime, **profile: Any) -> Driver:
        driver = cls(
            id=id,
            tenant_id=tenant_id,
            user_id=user_id,
            state=DriverState.OFFLINE,
            state_changed_at=now,
            created_at=now,
            updated_at=now,
            **profile,
        )
        driver.record(DriverRegistered(driver_id=id, user_id=user_id, occurred_at=now, **driver._profile()))
        return driver

    @property
    def allowed_states(self) -> frozenset[DriverState]:
        return TRANSITIONS[self.state]

    def move_to(self, target: DriverState, *, actor: str, now: datetime) -> bool:
        """Change the duty state; False when it is that already (nothing changes, nothing is published)."""
        if target == self.state:
            return False
        if target not in self.allowed_states:
            raise IllegalDriverTransition(
                self.state.value, target.value, (s.value for s in self.allowed_states)
            )
        previous, self.state = self.state, target
        self.state_changed_at = self.updated_at = now
        self.record(
            DriverStateChanged(
                driver_id=self.id,
                user_id=self.user_id,
                previous=previous.value,
                state=target.value,
                actor=actor,
                occurred_at=now,
            )
        )
        return True

    def change(self, changes: dict[str, Any], *, now: datetime) -> list[str]:
        """Apply the profile fields given; the names of those that changed."""
        changed = [name for name, value in changes.items() if getattr(self, name) != value]
        for name in changed:
            setattr(self, name, changes[name])
        if changed:
            self.updated_at = now
            self.record(DriverChanged(driver_id=self.id, changed=changed, occurred_at=now, **self._profile()))
        return changed

    def profile(self) -> dict[str, Any]:
        """What the audit trail records of a driver."""
        return {**self._profile(), "phone": self.phone, "user_id": self.user_id}

    def _profile(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vehicle_type": self.vehicle_type.value,
            "capacity": self.capacity,
            "skills": sorted(skill.value for skill in self.skills),
            "home_zone_id": self.home_zone_id,
            "team_id": self.team_id,
        }


@dataclass(kw_only=True)
class Vehicle:
    id: str
    tenant_id: str
    name: str
    plate: str | None
    vehicle_type: VehicleType
    capacity: int
    created_at: datetime
    updated_at: datetime


@dataclass(kw_only=True)
class Team:
    id: str
    tenant_id: str
    name: str
    created_at: datetime
    updated_at: datetime


@dataclass(kw_only=True)
class Zone:
    id: str
    tenant_id: str
    name: str
    area: Area
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Break:
    starts_at: datetime
    ends_at: datetime


@dataclass(kw_only=True)
class Shift:
    id: str
    tenant_id: str
    driver_id: str
    starts_at: datetime
    ends_at: datetime
    breaks: tuple[Break, ...] = field(default=())
    created_at: datetime

    def __post_init__(self) -> None:
        check_shift(self.starts_at, self.ends_at, self.breaks)

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def on_break(self, at: datetime) -> bool:
        return any(b.starts_at <= at < b.ends_at for b in self.breaks)


def check_shift(starts_at: datetime, ends_at: datetime, breaks: tuple[Break, ...]) -> None:
    """A shift ends after it starts and lasts at most a day; its breaks lie within it, apart and in order."""
    if ends_at <= starts_at:
        raise InvalidFleetInput("a shift ends after it starts", field="ends_at")
    if ends_at - starts_at > MAX_SHIFT:
        raise InvalidFleetInput("a shift lasts at most 24 hours", field="ends_at")
    previous_end = starts_at
    for index, pause in enumerate(breaks):
        if pause.ends_at <= pause.starts_at:
            raise InvalidFleetInput("a break ends after it starts", field=f"breaks.{index}.ends_at")
        if pause.starts_at < previous_end or pause.ends_at > ends_at:
            raise InvalidFleetInput(
                "breaks lie within the shift, in order, without overlapping",
                field=f"breaks.{index}.starts_at",
            )
        previous_end = pause.ends_at
