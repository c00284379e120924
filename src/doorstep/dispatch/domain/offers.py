"""Who carries a job: offers to drivers, assignment by hand or by automatic dispatch, pins, couriers.

A dispatcher's assignment or stop order is pinned: automatic dispatch may not change it, and `pins`
tells the optimiser what it must keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from doorstep.dispatch.domain.job_events import (
    Actor,
    JobAssigned,
    JobEvent,
    JobHandedToCourier,
    JobOffered,
    JobPinChanged,
    JobReassigned,
    JobUnassigned,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferWithdrawn,
    StopsReordered,
    TaskKind,
)
from doorstep.dispatch.domain.jobs import (
    BEFORE_PICKUP,
    ON_BOARD,
    TRANSITIONS,
    WAITING,
    InvalidJob,
    Job,
    JobLocked,
    JobStatus,
    Offer,
    OfferStatus,
    TaskStatus,
)
from doorstep.kernel.errors import Conflict, Forbidden, NotFound

J = JobStatus


class OfferNotFound(NotFound):
    slug = "job-offer-not-found"
    title = "No offer of this job was made to the driver"

    def __init__(self, job_id: str, driver_id: str) -> None:
        super().__init__(f"job {job_id} was not offered to driver {driver_id}", job_id=job_id)


class OfferNotOpen(Conflict):
    slug = "job-offer-not-open"
    title = "The offer is no longer open"

    def __init__(self, job_id: str, status: OfferStatus) -> None:
        super().__init__(f"the offer of job {job_id} was {status.value}", offer_status=status.value)


class OfferTimedOut(Conflict):
    slug = "job-offer-timed-out"
    title = "The offer expired before it was answered"

    def __init__(self, job_id: str, expires_at: datetime) -> None:
        super().__init__(
            f"the offer of job {job_id} expired at {expires_at.isoformat()}",
            expires_at=expires_at.isoformat(),
        )


class DriverExcluded(Conflict):
    slug = "driver-excluded-from-job"
    title = "The driver already declined this job or let its offer expire"

    def __init__(self, job_id: str, driver_ids: Iterable[str]) -> None:
        drivers = sorted(driver_ids)
        super().__init__(
            f"job {job_id} is not offered again to {', '.join(drivers)}", job_id=job_id, driver_ids=drivers
        )


class JobAlreadyAssigned(Conflict):
    slug = "dispatch-job-already-assigned"
    title = "The job already has a driver"

    def __init__(self, job: Job) -> None:
        super().__init__(
            f"job {job.id} is {job.status.value} with driver {job.driver_id}; reassign it instead",
            current_status=job.status.value,
        )


class DispatcherOnly(Forbidden):
    slug = "dispatcher-only"
    title = "Only a dispatcher may do this"


def offer_job(
    job: Job,
    *,
    driver_ids: Sequence[str],
    expires_at: datetime,
    now: datetime,
    actor: Actor = Actor.AUTOMATIC,
) -> list[JobEvent]:
    """Offer the job to one driver, or broadcast it to several: the first to accept takes it."""
    if J.OFFERED not in TRANSITIONS[job.status]:
        raise job.refuse(J.OFFERED)
    if not driver_ids:
        raise InvalidJob("offer the job to at least one driver", field="driver_ids")
    if len(set(driver_ids)) != len(driver_ids):
        raise InvalidJob("each driver may be offered the job once", field="driver_ids")
    if expires_at <= now:
        raise InvalidJob("the offer must expire after it is made", field="expires_at")
    excluded = job.excluded_drivers.intersection(driver_ids)
    if excluded:
        raise DriverExcluded(job.id, excluded)
    job.move(J.OFFERED, actor=actor, now=now)
    job.offers.extend(Offer(driver_id, now, expires_at) for driver_id in driver_ids)
    return job.emit(JobOffered(**job.event_fields(now), driver_ids=tuple(driver_ids), expires_at=expires_at))


def accept_offer(job: Job, *, driver_id: str, now: datetime) -> list[JobEvent]:
    """The driver takes the job; any other open offer of it is withdrawn."""
    offer = _latest_offer(job, driver_id)
    if offer.status is not OfferStatus.OPEN:
        raise OfferNotOpen(job.id, offer.status)
    if now >= offer.expires_at:
        raise OfferTimedOut(job.id, offer.expires_at)
    offer.status, offer.answered_at = OfferStatus.ACCEPTED, now
    withdrawn = withdraw_open_offers(job, now)
    job.move(J.ASSIGNED, actor=Actor.DRIVER, now=now)
    job.driver_id, job.pinned = driver_id, False
    return job.emit(
        OfferAccepted(**job.event_fields(now), driver_id=driver_id),
        *withdrawn,
        JobAssigned(**job.event_fields(now), driver_id=driver_id, actor=Actor.DRIVER, pinned=False),
    )


def decline_offer(job: Job, *, driver_id: str, now: datetime) -> list[JobEvent]:
    """The driver says no: never offered this job again; the job waits again once no offer is open."""
    offer = _latest_offer(job, driver_id)
    if offer.status is not OfferStatus.OPEN:
        raise OfferNotOpen(job.id, offer.status)
    offer.status, offer.answered_at = OfferStatus.DECLINED, now
    job.declined_by.add(driver_id)
    back = _back_in_queue_if_no_offer_open(job, now, reason="offers declined or expired")
    return job.emit(OfferDeclined(**job.event_fields(now), driver_id=driver_id, back_in_queue=back))


def expire_offers(job: Job, *, now: datetime) -> list[JobEvent]:
    """Time out every open offer whose expiry has come; nothing happens to an offer still running."""
    due = [offer for offer in job.open_offers if offer.expires_at <= now]
    for offer in due:
        offer.status, offer.answered_at = OfferStatus.EXPIRED, now
        job.expired_for.add(offer.driver_id)
    back = bool(due) and _back_in_queue_if_no_offer_open(job, now, reason="offers declined or expired")
    return job.emit(
        *(OfferExpired(**job.event_fields(now), driver_id=o.driver_id, back_in_queue=back) for o in due)
    )


def assign(
    job: Job, *, driver_id: str, actor: Actor, now: datetime, pin: bool | None = None
) -> list[JobEvent]:
    """Give a waiting job to a driver. A dispatcher's assignment is pinned unless `pin=False`."""
    _check_not_driver(actor)
    if job.status not in WAITING:
        if job.driver_id is not None:
            raise JobAlreadyAssigned(job)
        raise job.refuse(J.ASSIGNED)
    if actor is Actor.AUTOMATIC and driver_id in job.excluded_drivers:
        raise DriverExcluded(job.id, [driver_id])
    withdrawn = withdraw_open_offers(job, now)
    job.move(J.ASSIGNED, actor=actor, now=now)
    job.driver_id = driver_id
    job.pinned = _pinned(actor, pin)
    return job.emit(
        *withdrawn,
        JobAssigned(**job.event_fields(now), driver_id=driver_id, actor=actor, pinned=job.pinned),
    )


def unassign(job: Job, *, actor: Actor, now: datetime, reason: str | None = None) -> list[JobEvent]:
    """Take the job from its driver before pickup; it waits again, unpinned."""
    _check_not_driver(actor)
    if job.status not in BEFORE_PICKUP:
        raise job.refuse(J.UNASSIGNED)
    _check_unlocked(job, actor)
    driver_id = job.driver_id
    assert driver_id is not None
    job.move(J.UNASSIGNED, actor=actor, now=now, reason=reason)
    job.driver_id, job.pinned = None, False
    job.stop_positions.clear()
    _reset(job, TaskKind.PICKUP)
    return job.emit(JobUnassigned(**job.event_fields(now), driver_id=driver_id, actor=actor))


def reassign(
    job: Job,
    *,
    driver_id: str,
    actor: Actor,
    now: datetime,
    handover_note: str | None = None,
    pin: bool | None = None,
) -> list[JobEvent]:
    """Move the job to another driver: before pickup freely (unless pinned, for automatic dispatch);
    with the goods on board only by a dispatcher, with a note on where the two drivers meet."""
    _check_not_driver(actor)
    if job.status not in BEFORE_PICKUP | ON_BOARD:
        raise job.refuse(J.ASSIGNED)
    if driver_id == job.driver_id:
        raise InvalidJob(f"job {job.id} is already with driver {driver_id}", field="driver_id")
    _check_unlocked(job, actor)
    if actor is Actor.AUTOMATIC and driver_id in job.excluded_drivers:
        raise DriverExcluded(job.id, [driver_id])
    on_board = job.status in ON_BOARD
    if on_board:
        if actor is not Actor.DISPATCHER:
            raise DispatcherOnly("only a dispatcher may hand goods already picked up to another driver")
        if handover_note is None or not handover_note.strip():
            raise InvalidJob(
                "the goods are on board: say where and how the drivers hand them over", field="handover_note"
            )
    previous = job.driver_id
    assert previous is not None
    job.move(J.PICKED_UP if on_board else J.ASSIGNED, actor=actor, now=now, reason=handover_note)
    _reset(job, TaskKind.DROPOFF if on_board else TaskKind.PICKUP)
    job.driver_id = driver_id
    job.pinned = _pinned(actor, pin)
    job.stop_positions.clear()
    return job.emit(
        JobReassigned(
            **job.event_fields(now),
            from_driver_id=previous,
            driver_id=driver_id,
            actor=actor,
            handover_note=handover_note if on_board else None,
        )
    )


def set_pinned(job: Job, *, pinned: bool, now: datetime) -> list[JobEvent]:
    """A dispatcher pins a job to its driver, or gives it back to automatic dispatch."""
    if pinned and (job.driver_id is None or job.status not in BEFORE_PICKUP | ON_BOARD):
        raise InvalidJob(
            f"job {job.id} is {job.status.value}: only a job with a driver is pinned", field="pinned"
        )
    if job.pinned == pinned:
        return []
    job.pinned = pinned
    if not pinned:
        job.stop_positions.clear()
    return job.emit(JobPinChanged(**job.event_fields(now), pinned=pinned))


StopRef = tuple[str, TaskKind]  # job id, pickup or dropoff


def reorder_stops(
    jobs: Sequence[Job], *, driver_id: str, sequence: Sequence[StopRef], now: datetime
) -> list[JobEvent]:
    """A dispatcher orders a driver's remaining stops by hand; this pins the jobs and their order."""
    position = _route_positions(jobs, driver_id=driver_id, sequence=sequence)
    return _place_stops(jobs, driver_id=driver_id, position=position, pin=True, now=now)


def plan_stops(
    jobs: Sequence[Job], *, driver_id: str, sequence: Sequence[StopRef], now: datetime
) -> list[JobEvent]:
    """Automatic dispatch (or the driver asking to re-optimise) orders a driver's remaining stops.

    Unlike a dispatcher's order it pins nothing; the stops a dispatcher ordered by hand must keep their
    order relative to each other (other stops may come between them)."""
    position = _route_positions(jobs, driver_id=driver_id, sequence=sequence)
    held = pins(jobs).stop_orders.get(driver_id, ())
    if held and [stop for stop in sequence if stop in set(held)] != list(held):
        raise JobLocked(held[0][0])
    return _place_stops(jobs, driver_id=driver_id, position=position, pin=False, now=now)


def _route_positions(
    jobs: Sequence[Job], *, driver_id: str, sequence: Sequence[StopRef]
) -> dict[StopRef, int]:
    for job in jobs:
        if job.driver_id != driver_id or job.status not in BEFORE_PICKUP | ON_BOARD:
            raise InvalidJob(f"job {job.id} is not on the route of driver {driver_id}", field="sequence")
    expected = {(job.id, kind) for job in jobs for kind in _remaining_stops(job)}
    if len(set(sequence)) != len(sequence) or set(sequence) != expected:
        wanted = ", ".join(f"{job_id}:{kind.value}" for job_id, kind in sorted(expected))
        raise InvalidJob(f"list each remaining stop exactly once: {wanted}", field="sequence")
    position = {stop: index for index, stop in enumerate(sequence)}
    for job in jobs:
        pickup = position.get((job.id, TaskKind.PICKUP))
        if pickup is not None and pickup > position[(job.id, TaskKind.DROPOFF)]:
            raise InvalidJob(f"job {job.id}: its pickup must come before its drop-off", field="sequence")
    return position


def _place_stops(
    jobs: Sequence[Job], *, driver_id: str, position: Mapping[StopRef, int], pin: bool, now: datetime
) -> list[JobEvent]:
    events: list[JobEvent] = []
    for job in jobs:
        job.stop_positions = {kind: position[(job.id, kind)] for kind in _remaining_stops(job)}
        job.pinned = job.pinned or pin
        places = tuple(sorted(job.stop_positions.items(), key=lambda item: item[1]))
        events += job.emit(StopsReordered(**job.event_fields(now), driver_id=driver_id, positions=places))
    return events


@dataclass(frozen=True, slots=True)
class DispatchPins:
    """What automatic dispatch must keep: pinned assignments, hand-made stop orders, refused drivers."""

    assignments: Mapping[str, str]  # job id -> driver id
    stop_orders: Mapping[str, tuple[StopRef, ...]]  # driver id -> stops in the dispatcher's order
    excluded_drivers: Mapping[str, frozenset[str]]  # job id -> drivers it may not go to


def pins(jobs: Iterable[Job]) -> DispatchPins:
    assignments: dict[str, str] = {}
    ranked: dict[str, list[tuple[int, StopRef]]] = {}
    excluded: dict[str, frozenset[str]] = {}
    for job in jobs:
        if job.excluded_drivers:
            excluded[job.id] = job.excluded_drivers
        if not job.locked or job.driver_id is None:
            continue
        assignments[job.id] = job.driver_id
        remaining = _remaining_stops(job)
        for kind, place in job.stop_positions.items():
            if kind in remaining:
                ranked.setdefault(job.driver_id, []).append((place, (job.id, kind)))
    stop_orders = {driver: tuple(stop for _, stop in sorted(stops)) for driver, stops in ranked.items()}
    return DispatchPins(assignments=assignments, stop_orders=stop_orders, excluded_drivers=excluded)


def hand_to_courier(job: Job, *, courier: str, actor: Actor, now: datetime) -> list[JobEvent]:
    """No own driver or robot can make it: a third-party courier takes the job from here."""
    if job.status not in WAITING:
        raise job.refuse(J.HANDED_TO_COURIER)
    if not courier.strip():
        raise InvalidJob("name the courier", field="courier")
    withdrawn = withdraw_open_offers(job, now)
    job.move(J.HANDED_TO_COURIER, actor=actor, now=now)
    job.courier = courier
    return job.emit(*withdrawn, JobHandedToCourier(**job.event_fields(now), courier=courier, actor=actor))


def _latest_offer(job: Job, driver_id: str) -> Offer:
    for offer in reversed(job.offers):
        if offer.driver_id == driver_id:
            return offer
    raise OfferNotFound(job.id, driver_id)


def withdraw_open_offers(job: Job, now: datetime) -> list[JobEvent]:
    events: list[JobEvent] = []
    for offer in job.open_offers:
        offer.status, offer.answered_at = OfferStatus.WITHDRAWN, now
        events.append(OfferWithdrawn(**job.event_fields(now), driver_id=offer.driver_id))
    return events


def _back_in_queue_if_no_offer_open(job: Job, now: datetime, *, reason: str) -> bool:
    if job.status is not J.OFFERED or job.open_offers:
        return False
    job.move(J.UNASSIGNED, actor=Actor.AUTOMATIC, now=now, reason=reason)
    return True


def _check_not_driver(actor: Actor) -> None:
    if actor is Actor.DRIVER:
        raise DispatcherOnly("a driver takes a job by accepting its offer")


def _check_unlocked(job: Job, actor: Actor) -> None:
    if actor is Actor.AUTOMATIC and job.locked:
        raise JobLocked(job.id)


def _pinned(actor: Actor, pin: bool | None) -> bool:
    if actor is not Actor.DISPATCHER:
        return False
    return True if pin is None else pin


def _remaining_stops(job: Job) -> tuple[TaskKind, ...]:
    if job.status in ON_BOARD:
        return (TaskKind.DROPOFF,)
    return (TaskKind.PICKUP, TaskKind.DROPOFF)


def _reset(job: Job, kind: TaskKind) -> None:
    task = job.pickup if kind is TaskKind.PICKUP else job.dropoff
    task.status, task.arrived_at = TaskStatus.PENDING, None
