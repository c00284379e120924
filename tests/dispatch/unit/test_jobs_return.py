"""A failed delivery starts the return to the pickup; a cancellation ends a job, or sends goods on board back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from doorstep.contracts.orders import OrderStatus
from doorstep.dispatch.domain.execution import (
    arrive_at_dropoff,
    arrive_at_pickup,
    cancel,
    complete_return,
    deliver,
    fail,
    pick_up,
    start_return,
)
from doorstep.dispatch.domain.job_events import (
    Actor,
    FailureReason,
    JobCancelled,
    JobFailed,
    OfferWithdrawn,
    ReturnCompleted,
    ReturnStarted,
    TaskKind,
)
from doorstep.dispatch.domain.jobs import (
    IllegalJobTransition,
    InvalidJob,
    Job,
    JobStatus,
    JobStop,
    TaskStatus,
    Window,
)
from doorstep.dispatch.domain.offers import assign, hand_to_courier, offer_job
from doorstep.dispatch.domain.proof import ProofOfDelivery

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
S = JobStatus
IDS = {"job_id": "job-1", "order_id": "order-1", "tenant_id": "tenant-a"}
PICKUP = JobStop("Torstrasse 1, Berlin", 52.529, 13.401, Window(start=NOW))


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def new_job() -> Job:
    return Job.create(
        id="job-1",
        tenant_id="tenant-a",
        order_id="order-1",
        pickup=PICKUP,
        dropoff=JobStop("Kastanienallee 5, Berlin", 52.538, 13.410, Window(end=NOW + timedelta(hours=1))),
        now=NOW,
    )


def walk(*steps: Callable[[Job], object]) -> Job:
    job = new_job()
    for step in steps:
        step(job)
    return job


def offered(job: Job) -> None:
    offer_job(job, driver_ids=["driver-1"], expires_at=at(5), now=at(0))


def assigned(job: Job) -> None:
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))


def at_pickup(job: Job) -> None:
    arrive_at_pickup(job, driver_id="driver-1", now=at(10))


def picked(job: Job) -> None:
    pick_up(job, driver_id="driver-1", now=at(11))


def at_dropoff(job: Job) -> None:
    arrive_at_dropoff(job, driver_id="driver-1", now=at(25))


def failed(job: Job) -> None:
    fail(job, driver_id="driver-1", reason=FailureReason.CUSTOMER_ABSENT, now=at(30))


def returning(job: Job) -> None:
    start_return(job, driver_id="driver-1", now=at(31))


def delivered(job: Job) -> None:
    deliver(job, driver_id="driver-1", proof=ProofOfDelivery(), now=at(26))


def couriered(job: Job) -> None:
    hand_to_courier(job, courier="uber_direct", actor=Actor.AUTOMATIC, now=at(1))


def test_a_failed_delivery_moves_the_order_to_failed_delivery_and_creates_a_return_to_the_pickup() -> None:
    # given
    job = walk(assigned, at_pickup, picked, at_dropoff)

    # when
    events = fail(job, driver_id="driver-1", reason=FailureReason.REFUSED, now=at(30), note="wrong order")

    # then
    assert events == [
        JobFailed(**IDS, at=at(30), driver_id="driver-1", reason=FailureReason.REFUSED, note="wrong order")
    ]
    assert events[0].order_status is OrderStatus.FAILED_DELIVERY
    assert (job.status, job.failure, job.dropoff.status, job.dropoff.done_at) == (
        S.FAILED,
        FailureReason.REFUSED,
        TaskStatus.FAILED,
        at(30),
    )
    assert job.return_task is not None
    assert (job.return_task.kind, job.return_task.stop, job.return_task.status) == (
        TaskKind.RETURN,
        PICKUP,
        TaskStatus.PENDING,
    )
    assert [task.kind for task in job.tasks] == [TaskKind.PICKUP, TaskKind.DROPOFF, TaskKind.RETURN]


def test_the_goods_go_back_and_the_order_is_returned() -> None:
    # given
    job = walk(assigned, at_pickup, picked, at_dropoff, failed)

    # when
    started = start_return(job, driver_id="driver-1", now=at(31))
    completed = complete_return(job, driver_id="driver-1", now=at(45))

    # then
    assert started == [ReturnStarted(**IDS, at=at(31), driver_id="driver-1")]
    assert completed == [ReturnCompleted(**IDS, at=at(45), driver_id="driver-1")]
    assert [started[0].order_status, completed[0].order_status] == [None, OrderStatus.RETURNED]
    assert job.status is S.RETURNED
    assert job.return_task is not None
    assert (job.return_task.status, job.return_task.done_at) == (TaskStatus.DONE, at(45))


def test_a_failure_for_another_reason_says_what_went_wrong() -> None:
    # given
    job = walk(assigned, at_pickup, picked, at_dropoff)

    # when
    with pytest.raises(InvalidJob) as refused:
        fail(job, driver_id="driver-1", reason=FailureReason.OTHER, now=at(30))

    # then
    assert refused.value.field == "note"
    assert (job.status, job.return_task) == (S.ARRIVED_AT_DROPOFF, None)


def test_a_delivery_fails_only_at_the_dropoff() -> None:
    # given
    job = walk(assigned, at_pickup, picked)

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        fail(job, driver_id="driver-1", reason=FailureReason.DAMAGED, now=at(20))

    # then
    assert refused.value.extensions["requested_status"] == "failed"
    assert job.status is S.PICKED_UP


def test_a_return_starts_only_after_a_failure() -> None:
    # given
    job = walk(assigned, at_pickup, picked)

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        start_return(job, driver_id="driver-1", now=at(20))

    # then
    assert refused.value.extensions["requested_status"] == "returning"
    assert (job.status, job.return_task) == (S.PICKED_UP, None)


@pytest.mark.parametrize(
    "steps",
    [(), (offered,), (assigned,), (assigned, at_pickup)],
    ids=["unassigned", "offered", "assigned", "arrived_at_pickup"],
)
def test_a_job_cancelled_before_pickup_ends_and_cancels_the_order(
    steps: tuple[Callable[[Job], object], ...],
) -> None:
    # given
    job = walk(*steps)

    # when
    events = cancel(job, actor=Actor.DISPATCHER, now=at(20), reason="customer called")

    # then
    withdrawn = [OfferWithdrawn(**IDS, at=at(20), driver_id="driver-1")] if steps == (offered,) else []
    assert events == [
        *withdrawn,
        JobCancelled(
            **IDS, at=at(20), reason="customer called", actor=Actor.DISPATCHER, goods_on_board=False
        ),
    ]
    assert events[-1].order_status is OrderStatus.CANCELLED
    assert (job.status, job.driver_id, job.pickup.status, job.dropoff.status) == (
        S.CANCELLED,
        None,
        TaskStatus.CANCELLED,
        TaskStatus.CANCELLED,
    )


@pytest.mark.parametrize("steps", [(assigned, at_pickup, picked), (assigned, at_pickup, picked, at_dropoff)])
def test_a_job_cancelled_with_the_goods_on_board_sends_them_back(
    steps: tuple[Callable[[Job], object], ...],
) -> None:
    # given
    job = walk(*steps)

    # when
    events = cancel(job, actor=Actor.DISPATCHER, now=at(27), reason="customer called")
    completed = complete_return(job, driver_id="driver-1", now=at(40))

    # then
    assert events == [
        JobCancelled(**IDS, at=at(27), reason="customer called", actor=Actor.DISPATCHER, goods_on_board=True),
        ReturnStarted(**IDS, at=at(27), driver_id="driver-1"),
    ]
    # The orders lifecycle has no move from picked_up to cancelled: the delivery failed, the goods come back.
    assert [event.order_status for event in [*events, *completed]] == [
        OrderStatus.FAILED_DELIVERY,
        None,
        OrderStatus.RETURNED,
    ]
    assert (job.status, job.pickup.status, job.dropoff.status) == (
        S.RETURNED,
        TaskStatus.DONE,
        TaskStatus.CANCELLED,
    )


@pytest.mark.parametrize(
    ("steps", "allowed"),
    [
        ((assigned, at_pickup, picked, at_dropoff, delivered), []),
        ((assigned, at_pickup, picked, at_dropoff, failed), ["returning"]),
        ((assigned, at_pickup, picked, at_dropoff, failed, returning), ["returned"]),
        ((couriered,), []),
    ],
    ids=["delivered", "failed", "returning", "handed_to_courier"],
)
def test_a_job_delivered_returning_or_with_a_courier_is_not_cancelled(
    steps: tuple[Callable[[Job], object], ...], allowed: list[str]
) -> None:
    # given
    job = walk(*steps)
    before = job.status

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        cancel(job, actor=Actor.DISPATCHER, now=at(50))

    # then
    assert refused.value.extensions["requested_status"] == "cancelled"
    assert refused.value.extensions["allowed_statuses"] == allowed
    assert job.status is before
