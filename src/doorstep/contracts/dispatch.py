"""What the dispatch service publishes. Live positions are not events: they go to the geo store."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from doorstep.kernel.messages import Event

DriverStateName = Literal["offline", "available", "on_job", "on_break"]


class DriverRegistered(Event):
    """A user of the tenant got a driver profile."""

    event_type = "doorstep.dispatch.driver.registered.v1"
    driver_id: str
    user_id: str
    name: str
    vehicle_type: str
    capacity: int
    skills: list[str]
    home_zone_id: str | None
    team_id: str | None
    occurred_at: datetime

    def subject(self) -> str:
        return self.driver_id


class DriverChanged(Event):
    """A driver's profile changed: `changed` names the fields, the rest is the profile after the change."""

    event_type = "doorstep.dispatch.driver.changed.v1"
    driver_id: str
    changed: list[str]
    name: str
    vehicle_type: str
    capacity: int
    skills: list[str]
    home_zone_id: str | None
    team_id: str | None
    occurred_at: datetime

    def subject(self) -> str:
        return self.driver_id


class DriverRemoved(Event):
    event_type = "doorstep.dispatch.driver.removed.v1"
    driver_id: str
    user_id: str
    occurred_at: datetime

    def subject(self) -> str:
        return self.driver_id


class DriverStateChanged(Event):
    """A driver went on or off duty, on a break, or took or finished a job."""

    event_type = "doorstep.dispatch.driver.state_changed.v1"
    driver_id: str
    user_id: str
    previous: DriverStateName
    state: DriverStateName
    actor: str
    occurred_at: datetime

    def subject(self) -> str:
        return self.driver_id


class ShiftScheduled(Event):
    event_type = "doorstep.dispatch.shift.scheduled.v1"
    shift_id: str
    driver_id: str
    starts_at: datetime
    ends_at: datetime
    occurred_at: datetime

    def subject(self) -> str:
        return self.shift_id


class ShiftCancelled(Event):
    event_type = "doorstep.dispatch.shift.cancelled.v1"
    shift_id: str
    driver_id: str
    occurred_at: datetime

    def subject(self) -> str:
        return self.shift_id
