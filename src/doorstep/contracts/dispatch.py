"""What the dispatch service publishes. Live positions are not events: they go to the geo store."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

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


# Jobs: an order carried from a pickup to a drop-off. `order_status` on each job event is the status the
# step moves the order to (the orders lifecycle), or None when the order's status stays as it is.

JobActor = Literal["dispatcher", "automatic", "driver"]
JobTask = Literal["pickup", "dropoff", "return"]


class JobStopSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    lat: float
    lon: float
    window_start: datetime | None
    window_end: datetime | None


class _JobEvent(Event):
    job_id: str
    order_id: str
    order_status: str | None = None
    occurred_at: datetime

    def subject(self) -> str:
        return self.job_id


class JobCreated(_JobEvent):
    """An order ready to dispatch became a job, waiting for a driver."""

    event_type = "doorstep.dispatch.job.created.v1"
    pickup: JobStopSummary
    dropoff: JobStopSummary
    size: int
    skills: list[str]
    priority: int


class JobAssigned(_JobEvent):
    """A driver took the job: a dispatcher's assignment, an accepted offer, or a reassignment."""

    event_type = "doorstep.dispatch.job.assigned.v1"
    driver_id: str
    from_driver_id: str | None = None
    actor: JobActor
    pinned: bool


class JobUnassigned(_JobEvent):
    event_type = "doorstep.dispatch.job.unassigned.v1"
    driver_id: str
    actor: JobActor


class JobOffered(_JobEvent):
    event_type = "doorstep.dispatch.job.offered.v1"
    driver_ids: list[str]
    expires_at: datetime


class JobArrived(_JobEvent):
    """The driver reached a stop of the job."""

    event_type = "doorstep.dispatch.job.arrived.v1"
    driver_id: str
    task: JobTask


class JobPickedUp(_JobEvent):
    event_type = "doorstep.dispatch.job.picked_up.v1"
    driver_id: str


class JobDelivered(_JobEvent):
    """Delivered with its proof: the files' keys and what was checked, never the PIN itself."""

    event_type = "doorstep.dispatch.job.delivered.v1"
    driver_id: str
    photo_keys: list[str]
    signature_key: str | None
    pin_checked: bool
    age_checked: bool
    cash_collected: int | None


class JobFailed(_JobEvent):
    event_type = "doorstep.dispatch.job.failed.v1"
    driver_id: str
    reason: str
    note: str | None


class JobReturnCompleted(_JobEvent):
    event_type = "doorstep.dispatch.job.return_completed.v1"
    driver_id: str


class JobCancelled(_JobEvent):
    event_type = "doorstep.dispatch.job.cancelled.v1"
    reason: str | None
    actor: JobActor
    goods_on_board: bool


class JobHandedToCourier(_JobEvent):
    event_type = "doorstep.dispatch.job.handed_to_courier.v1"
    courier: str
    actor: JobActor
