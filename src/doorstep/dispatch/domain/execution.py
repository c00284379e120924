"""What the driver does with a job at its stops, and how a job ends: delivered, failed and returned, or
cancelled. Each step returns its events; each event names the order status it implies."""

from __future__ import annotations

from datetime import datetime

from doorstep.dispatch.domain.job_events import (
    Actor,
    FailureReason,
    JobCancelled,
    JobDelivered,
    JobEvent,
    JobFailed,
    JobPickedUp,
    ReturnCompleted,
    ReturnStarted,
    TaskArrived,
    TaskKind,
)
from doorstep.dispatch.domain.jobs import (
    CANCELLABLE,
    ON_BOARD,
    InvalidJob,
    Job,
    JobStatus,
    NotTheAssignedDriver,
    Task,
    TaskStatus,
)
from doorstep.dispatch.domain.offers import withdraw_open_offers
from doorstep.dispatch.domain.proof import ProofOfDelivery, check_proof

J = JobStatus


def arrive_at_pickup(job: Job, *, driver_id: str, now: datetime) -> list[JobEvent]:
    _check_driver(job, driver_id)
    job.move(J.ARRIVED_AT_PICKUP, actor=Actor.DRIVER, now=now)
    _arrive(job.pickup, now)
    return job.emit(TaskArrived(**job.event_fields(now), task=TaskKind.PICKUP, driver_id=driver_id))


def pick_up(job: Job, *, driver_id: str, now: datetime) -> list[JobEvent]:
    _check_driver(job, driver_id)
    if job.status is not J.ARRIVED_AT_PICKUP:
        raise job.refuse(J.PICKED_UP)
    job.move(J.PICKED_UP, actor=Actor.DRIVER, now=now)
    _finish(job.pickup, TaskStatus.DONE, now)
    return job.emit(JobPickedUp(**job.event_fields(now), driver_id=driver_id))


def arrive_at_dropoff(job: Job, *, driver_id: str, now: datetime) -> list[JobEvent]:
    _check_driver(job, driver_id)
    job.move(J.ARRIVED_AT_DROPOFF, actor=Actor.DRIVER, now=now)
    _arrive(job.dropoff, now)
    return job.emit(TaskArrived(**job.event_fields(now), task=TaskKind.DROPOFF, driver_id=driver_id))


def deliver(job: Job, *, driver_id: str, proof: ProofOfDelivery, now: datetime) -> list[JobEvent]:
    """Hand the goods over; the proof must satisfy every requirement of the job (PIN, age, photo...)."""
    _check_driver(job, driver_id)
    if job.status is not J.ARRIVED_AT_DROPOFF:
        raise job.refuse(J.DELIVERED)
    check_proof(job.requirements, proof, now=now)
    job.move(J.DELIVERED, actor=Actor.DRIVER, now=now)
    _finish(job.dropoff, TaskStatus.DONE, now)
    job.proof = proof
    return job.emit(JobDelivered(**job.event_fields(now), driver_id=driver_id, proof=proof))


def fail(
    job: Job, *, driver_id: str, reason: FailureReason, now: datetime, note: str | None = None
) -> list[JobEvent]:
    """The drop-off did not happen; a return task back to the pickup starts."""
    _check_driver(job, driver_id)
    if job.status is not J.ARRIVED_AT_DROPOFF:
        raise job.refuse(J.FAILED)
    if reason is FailureReason.OTHER and not (note and note.strip()):
        raise InvalidJob("say what went wrong when the reason is `other`", field="note")
    job.move(J.FAILED, actor=Actor.DRIVER, now=now, reason=reason.value)
    _finish(job.dropoff, TaskStatus.FAILED, now)
    job.failure = reason
    job.return_task = Task(TaskKind.RETURN, job.pickup.stop)
    return job.emit(JobFailed(**job.event_fields(now), driver_id=driver_id, reason=reason, note=note))


def start_return(job: Job, *, driver_id: str, now: datetime) -> list[JobEvent]:
    _check_driver(job, driver_id)
    if job.status is not J.FAILED:
        raise job.refuse(J.RETURNING)
    job.move(J.RETURNING, actor=Actor.DRIVER, now=now)
    return job.emit(ReturnStarted(**job.event_fields(now), driver_id=driver_id))


def complete_return(job: Job, *, driver_id: str, now: datetime) -> list[JobEvent]:
    """The goods are back at the pickup."""
    _check_driver(job, driver_id)
    job.move(J.RETURNED, actor=Actor.DRIVER, now=now)
    assert job.return_task is not None
    _finish(job.return_task, TaskStatus.DONE, now)
    return job.emit(ReturnCompleted(**job.event_fields(now), driver_id=driver_id))


def cancel(job: Job, *, actor: Actor, now: datetime, reason: str | None = None) -> list[JobEvent]:
    """Cancel a job before delivery. Goods already on board go back to the pickup (the job is returning)."""
    if job.status not in CANCELLABLE:
        raise job.refuse(J.CANCELLED)
    on_board = job.status in ON_BOARD
    withdrawn = withdraw_open_offers(job, now)
    job.move(J.RETURNING if on_board else J.CANCELLED, actor=actor, now=now, reason=reason)
    open_tasks = [task for task in (job.pickup, job.dropoff) if task.status in _OPEN_TASK]
    for task in open_tasks:
        _finish(task, TaskStatus.CANCELLED, now)
    cancelled = JobCancelled(**job.event_fields(now), reason=reason, actor=actor, goods_on_board=on_board)
    if not on_board:
        job.driver_id, job.pinned = None, False
        job.stop_positions.clear()
        return job.emit(*withdrawn, cancelled)
    assert job.driver_id is not None
    job.return_task = Task(TaskKind.RETURN, job.pickup.stop)
    return job.emit(cancelled, ReturnStarted(**job.event_fields(now), driver_id=job.driver_id))


_OPEN_TASK = frozenset({TaskStatus.PENDING, TaskStatus.ARRIVED})


def _check_driver(job: Job, driver_id: str) -> None:
    if job.driver_id != driver_id:
        raise NotTheAssignedDriver(job.id, driver_id)


def _arrive(task: Task, now: datetime) -> None:
    task.status, task.arrived_at = TaskStatus.ARRIVED, now


def _finish(task: Task, status: TaskStatus, now: datetime) -> None:
    task.status, task.done_at = status, now
