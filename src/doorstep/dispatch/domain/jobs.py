"""The dispatch job: an order to carry from a pickup to a drop-off, its states, and the events of its life.

The transitions live by use case: `offers.py` (offers, assignment, manual pins, courier hand-over) and
`execution.py` (what the driver does at the stops, cancellation, failure and the return); the events they
return are in `job_events.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from doorstep.dispatch.domain.job_events import Actor, FailureReason, JobCreated, JobEvent, TaskKind
from doorstep.dispatch.domain.proof import ProofOfDelivery, ProofRequirements
from doorstep.kernel.errors import Conflict, Forbidden, InvalidInput


class JobStatus(StrEnum):
    UNASSIGNED = "unassigned"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    ARRIVED_AT_PICKUP = "arrived_at_pickup"
    PICKED_UP = "picked_up"
    ARRIVED_AT_DROPOFF = "arrived_at_dropoff"
    DELIVERED = "delivered"
    FAILED = "failed"
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    HANDED_TO_COURIER = "handed_to_courier"


J = JobStatus

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    J.UNASSIGNED: frozenset({J.OFFERED, J.ASSIGNED, J.CANCELLED, J.HANDED_TO_COURIER}),
    # Back to unassigned when every offer was declined, expired or withdrawn.
    J.OFFERED: frozenset({J.UNASSIGNED, J.ASSIGNED, J.CANCELLED, J.HANDED_TO_COURIER}),
    # assigned -> assigned is a reassignment to another driver.
    J.ASSIGNED: frozenset({J.ARRIVED_AT_PICKUP, J.ASSIGNED, J.UNASSIGNED, J.CANCELLED}),
    J.ARRIVED_AT_PICKUP: frozenset({J.PICKED_UP, J.ASSIGNED, J.UNASSIGNED, J.CANCELLED}),
    # With the goods on board: a hand-over to another driver keeps or returns to picked_up, and a
    # cancellation sends the goods back (returning).
    J.PICKED_UP: frozenset({J.ARRIVED_AT_DROPOFF, J.PICKED_UP, J.RETURNING}),
    J.ARRIVED_AT_DROPOFF: frozenset({J.DELIVERED, J.FAILED, J.PICKED_UP, J.RETURNING}),
    J.FAILED: frozenset({J.RETURNING}),
    J.RETURNING: frozenset({J.RETURNED}),
    J.DELIVERED: frozenset(),
    J.RETURNED: frozenset(),
    J.CANCELLED: frozenset(),
    J.HANDED_TO_COURIER: frozenset(),
}

BEFORE_PICKUP = frozenset({J.ASSIGNED, J.ARRIVED_AT_PICKUP})
ON_BOARD = frozenset({J.PICKED_UP, J.ARRIVED_AT_DROPOFF})
WAITING = frozenset({J.UNASSIGNED, J.OFFERED})
CANCELLABLE = WAITING | BEFORE_PICKUP | ON_BOARD


class TaskStatus(StrEnum):
    PENDING = "pending"
    ARRIVED = "arrived"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class InvalidJob(InvalidInput):
    slug = "invalid-dispatch-job"
    title = "The job is not valid"

    def __init__(self, detail: str, *, field: str, **extensions: Any) -> None:
        super().__init__(detail, field=field, location="body", **extensions)


class IllegalJobTransition(Conflict):
    slug = "illegal-job-transition"
    title = "The job cannot move to that status"

    def __init__(self, current: JobStatus, target: JobStatus, allowed: Iterable[JobStatus]) -> None:
        lifecycle = list(JobStatus)
        allowed_values = [status.value for status in sorted(set(allowed), key=lifecycle.index)]
        moves = ", ".join(allowed_values) or "none: the job is final"
        super().__init__(
            f"a job that is {current.value} cannot become {target.value}; allowed: {moves}",
            current_status=current.value,
            requested_status=target.value,
            allowed_statuses=allowed_values,
        )


class JobLocked(Conflict):
    slug = "dispatch-job-locked"
    title = "A dispatcher pinned this job"

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"job {job_id} was pinned by a dispatcher; automatic dispatch may not change it",
            job_id=job_id,
        )


class NotTheAssignedDriver(Forbidden):
    slug = "not-the-assigned-driver"
    title = "The job is assigned to another driver"

    def __init__(self, job_id: str, driver_id: str) -> None:
        super().__init__(f"driver {driver_id} is not assigned to job {job_id}", job_id=job_id)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobStop:
    address: str
    lat: float
    lon: float
    window: Window = Window()


@dataclass(slots=True)
class Task:
    kind: TaskKind
    stop: JobStop
    status: TaskStatus = TaskStatus.PENDING
    arrived_at: datetime | None = None
    done_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    from_status: JobStatus | None
    to_status: JobStatus
    actor: Actor
    at: datetime
    reason: str | None = None


@dataclass(kw_only=True)
class Job:
    id: str
    tenant_id: str
    order_id: str
    pickup: Task
    dropoff: Task
    size: int
    skills: frozenset[str]
    priority: int
    requirements: ProofRequirements
    status: JobStatus
    created_at: datetime
    driver_id: str | None = None
    pinned: bool = False
    # The places of this job's stops in its driver's route, when a dispatcher ordered them by hand.
    stop_positions: dict[TaskKind, int] = field(default_factory=dict)
    offers: list[Offer] = field(default_factory=list)
    declined_by: set[str] = field(default_factory=set)
    expired_for: set[str] = field(default_factory=set)
    return_task: Task | None = None
    proof: ProofOfDelivery | None = None
    failure: FailureReason | None = None
    courier: str | None = None
    history: list[StatusChange] = field(default_factory=list)
    events: list[JobEvent] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        *,
        id: str,
        tenant_id: str,
        order_id: str,
        pickup: JobStop,
        dropoff: JobStop,
        size: int = 1,
        skills: Iterable[str] = (),
        priority: int = 0,
        requirements: ProofRequirements = ProofRequirements(),
        now: datetime,
    ) -> Job:
        """A job for an order ready to dispatch; it needs the skills its proof demands (age check, cash)."""
        _check_stop(pickup, "pickup")
        _check_stop(dropoff, "dropoff")
        if not 0 <= size <= 10_000:
            raise InvalidJob("size must be within 0..10000 units", field="size")
        if not 0 <= priority <= 100:
            raise InvalidJob("priority must be within 0..100", field="priority")
        ready, promised = pickup.window.start, dropoff.window.end
        if ready is not None and promised is not None and promised <= ready:
            raise InvalidJob(
                "the promised delivery time must be after the ready time", field="dropoff.window"
            )
        needed = set(skills)
        if requirements.minimum_age is not None:
            needed.add("age_check")
        if requirements.cash_to_collect is not None:
            needed.add("cash")
        job = cls(
            id=id,
            tenant_id=tenant_id,
            order_id=order_id,
            pickup=Task(TaskKind.PICKUP, pickup),
            dropoff=Task(TaskKind.DROPOFF, dropoff),
            size=size,
            skills=frozenset(needed),
            priority=priority,
            requirements=requirements,
            status=J.UNASSIGNED,
            created_at=now,
            history=[StatusChange(None, J.UNASSIGNED, Actor.AUTOMATIC, now)],
        )
        job.emit(JobCreated(**job.event_fields(now)))
        return job

    @property
    def ready_at(self) -> datetime | None:
        return self.pickup.stop.window.start

    @property
    def promised_by(self) -> datetime | None:
        return self.dropoff.stop.window.end

    @property
    def locked(self) -> bool:
        """Automatic dispatch must keep this job with its driver and its stops where they are."""
        return self.pinned

    @property
    def excluded_drivers(self) -> frozenset[str]:
        """Drivers who declined or let an offer expire: not offered this job again."""
        return frozenset(self.declined_by | self.expired_for)

    @property
    def open_offers(self) -> list[Offer]:
        return [offer for offer in self.offers if offer.status is OfferStatus.OPEN]

    @property
    def tasks(self) -> tuple[Task, ...]:
        extra = (self.return_task,) if self.return_task is not None else ()
        return (self.pickup, self.dropoff, *extra)

    def move(self, target: JobStatus, *, actor: Actor, now: datetime, reason: str | None = None) -> None:
        if target not in TRANSITIONS[self.status]:
            raise IllegalJobTransition(self.status, target, TRANSITIONS[self.status])
        self.history.append(StatusChange(self.status, target, actor, now, reason))
        self.status = target

    def refuse(self, target: JobStatus) -> IllegalJobTransition:
        return IllegalJobTransition(self.status, target, TRANSITIONS[self.status])

    def event_fields(self, now: datetime) -> dict[str, Any]:
        return {"job_id": self.id, "order_id": self.order_id, "tenant_id": self.tenant_id, "at": now}

    def emit(self, *events: JobEvent) -> list[JobEvent]:
        self.events.extend(events)
        return list(events)


class OfferStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


@dataclass(slots=True)
class Offer:
    driver_id: str
    offered_at: datetime
    expires_at: datetime
    status: OfferStatus = OfferStatus.OPEN
    answered_at: datetime | None = None


def _check_stop(stop: JobStop, name: str) -> None:
    if not stop.address.strip():
        raise InvalidJob(f"the {name} needs an address", field=f"{name}.address")
    if not -90 <= stop.lat <= 90:
        raise InvalidJob("latitude must be within -90..90", field=f"{name}.lat")
    if not -180 <= stop.lon <= 180:
        raise InvalidJob("longitude must be within -180..180", field=f"{name}.lon")
    start, end = stop.window.start, stop.window.end
    for bound, moment in (("start", start), ("end", end)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidJob("times must carry a timezone", field=f"{name}.window.{bound}")
    if start is not None and end is not None and end <= start:
        raise InvalidJob("the window must end after it starts", field=f"{name}.window")
