"""A dispatch job from the order it comes from to its delivery, and every step it refuses on the way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorstep.contracts.orders import OrderStatus
from doorstep.dispatch.domain.execution import arrive_at_dropoff, arrive_at_pickup, deliver, pick_up
from doorstep.dispatch.domain.job_events import (
    Actor,
    JobAssigned,
    JobCreated,
    JobDelivered,
    JobPickedUp,
    TaskArrived,
    TaskKind,
)
from doorstep.dispatch.domain.jobs import (
    IllegalJobTransition,
    InvalidJob,
    Job,
    JobStatus,
    JobStop,
    NotTheAssignedDriver,
    TaskStatus,
    Window,
)
from doorstep.dispatch.domain.offers import assign
from doorstep.dispatch.domain.proof import ProofOfDelivery, ProofRequirements

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
READY = NOW + timedelta(minutes=10)
PROMISED = NOW + timedelta(minutes=40)
PICKUP = JobStop("Torstrasse 1, Berlin", 52.5290, 13.4010, Window(start=READY))
DROPOFF = JobStop("Kastanienallee 5, Berlin", 52.5380, 13.4100, Window(end=PROMISED))
S = JobStatus


def new_job(requirements: ProofRequirements = ProofRequirements()) -> Job:
    return Job.create(
        id="job-1",
        tenant_id="tenant-a",
        order_id="order-1",
        pickup=PICKUP,
        dropoff=DROPOFF,
        size=2,
        skills=["hot_bag"],
        priority=10,
        requirements=requirements,
        now=NOW,
    )


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def test_an_order_ready_to_dispatch_becomes_an_unassigned_job_with_two_pending_tasks() -> None:
    # given / when
    job = new_job()

    # then
    assert job.status is S.UNASSIGNED
    assert (job.pickup.kind, job.pickup.status, job.pickup.stop) == (
        TaskKind.PICKUP,
        TaskStatus.PENDING,
        PICKUP,
    )
    assert (job.dropoff.kind, job.dropoff.status, job.dropoff.stop) == (
        TaskKind.DROPOFF,
        TaskStatus.PENDING,
        DROPOFF,
    )
    assert (job.ready_at, job.promised_by) == (READY, PROMISED)
    assert (job.size, job.priority, job.skills) == (2, 10, frozenset({"hot_bag"}))
    assert job.events == [JobCreated(job_id="job-1", order_id="order-1", tenant_id="tenant-a", at=NOW)]
    assert job.events[0].order_status is None


def test_a_job_that_checks_age_or_collects_cash_needs_drivers_with_those_skills() -> None:
    # given
    requirements = ProofRequirements(minimum_age=18, cash_to_collect=2450)

    # when
    job = new_job(requirements)

    # then
    assert job.skills == frozenset({"hot_bag", "age_check", "cash"})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"size": -1}, "size"),
        ({"priority": 101}, "priority"),
        ({"pickup": JobStop("Torstrasse 1", 91.0, 13.4)}, "pickup.lat"),
        ({"dropoff": JobStop("Kastanienallee 5", 52.5, 181.0)}, "dropoff.lon"),
        ({"dropoff": JobStop("  ", 52.5, 13.4)}, "dropoff.address"),
        ({"dropoff": JobStop("Kastanienallee 5", 52.5, 13.4, Window(end=READY))}, "dropoff.window"),
        ({"pickup": JobStop("Torstrasse 1", 52.5, 13.4, Window(READY, READY))}, "pickup.window"),
        (
            {"pickup": JobStop("Torstrasse 1", 52.5, 13.4, Window(start=datetime(2025, 3, 1)))},
            "pickup.window.start",
        ),
    ],
)
def test_a_job_with_bad_values_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    # given
    values: dict[str, object] = {
        "id": "job-1",
        "tenant_id": "tenant-a",
        "order_id": "order-1",
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        "now": NOW,
    } | changes

    # when
    with pytest.raises(InvalidJob) as refused:
        Job.create(**values)  # type: ignore[arg-type]

    # then
    assert refused.value.field == field
    assert refused.value.status == 422


def test_a_driver_carries_the_job_from_pickup_to_delivery_and_each_step_names_the_order_status() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))

    # when
    steps = [
        arrive_at_pickup(job, driver_id="driver-1", now=at(12)),
        pick_up(job, driver_id="driver-1", now=at(14)),
        arrive_at_dropoff(job, driver_id="driver-1", now=at(25)),
        deliver(
            job, driver_id="driver-1", proof=ProofOfDelivery(photo_keys=("pod/job-1/1.jpg",)), now=at(26)
        ),
    ]

    # then
    fields = {"job_id": "job-1", "order_id": "order-1", "tenant_id": "tenant-a"}
    assert steps == [
        [TaskArrived(**fields, at=at(12), task=TaskKind.PICKUP, driver_id="driver-1")],
        [JobPickedUp(**fields, at=at(14), driver_id="driver-1")],
        [TaskArrived(**fields, at=at(25), task=TaskKind.DROPOFF, driver_id="driver-1")],
        [
            JobDelivered(
                **fields,
                at=at(26),
                driver_id="driver-1",
                proof=ProofOfDelivery(photo_keys=("pod/job-1/1.jpg",)),
            )
        ],
    ]
    assert [events[0].order_status for events in steps] == [
        None,
        OrderStatus.PICKED_UP,
        None,
        OrderStatus.DELIVERED,
    ]
    assert job.status is S.DELIVERED
    assert (job.pickup.status, job.pickup.arrived_at, job.pickup.done_at) == (TaskStatus.DONE, at(12), at(14))
    assert (job.dropoff.status, job.dropoff.arrived_at, job.dropoff.done_at) == (
        TaskStatus.DONE,
        at(25),
        at(26),
    )
    assert [(change.from_status, change.to_status, change.actor) for change in job.history] == [
        (None, S.UNASSIGNED, Actor.AUTOMATIC),
        (S.UNASSIGNED, S.ASSIGNED, Actor.AUTOMATIC),
        (S.ASSIGNED, S.ARRIVED_AT_PICKUP, Actor.DRIVER),
        (S.ARRIVED_AT_PICKUP, S.PICKED_UP, Actor.DRIVER),
        (S.PICKED_UP, S.ARRIVED_AT_DROPOFF, Actor.DRIVER),
        (S.ARRIVED_AT_DROPOFF, S.DELIVERED, Actor.DRIVER),
    ]
    assert isinstance(job.events[1], JobAssigned)
    assert len(job.events) == 6


def test_picking_up_before_arriving_is_refused_naming_the_allowed_moves() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        pick_up(job, driver_id="driver-1", now=at(2))

    # then
    assert refused.value.detail == (
        "a job that is assigned cannot become picked_up; allowed: unassigned, assigned, arrived_at_pickup, cancelled"
    )
    assert refused.value.extensions["allowed_statuses"] == [
        "unassigned",
        "assigned",
        "arrived_at_pickup",
        "cancelled",
    ]
    assert refused.value.status == 409
    assert job.status is S.ASSIGNED


def test_arriving_at_the_dropoff_before_pickup_is_refused() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    arrive_at_pickup(job, driver_id="driver-1", now=at(12))

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        arrive_at_dropoff(job, driver_id="driver-1", now=at(13))

    # then
    assert refused.value.extensions["requested_status"] == "arrived_at_dropoff"
    assert refused.value.extensions["allowed_statuses"] == [
        "unassigned",
        "assigned",
        "picked_up",
        "cancelled",
    ]
    assert job.status is S.ARRIVED_AT_PICKUP


def test_delivering_before_arriving_at_the_dropoff_is_refused() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    arrive_at_pickup(job, driver_id="driver-1", now=at(12))
    pick_up(job, driver_id="driver-1", now=at(14))

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        deliver(job, driver_id="driver-1", proof=ProofOfDelivery(), now=at(15))

    # then
    assert refused.value.extensions["allowed_statuses"] == ["picked_up", "arrived_at_dropoff", "returning"]
    assert job.status is S.PICKED_UP


def test_a_delivered_job_is_final() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    arrive_at_pickup(job, driver_id="driver-1", now=at(12))
    pick_up(job, driver_id="driver-1", now=at(14))
    arrive_at_dropoff(job, driver_id="driver-1", now=at(25))
    deliver(job, driver_id="driver-1", proof=ProofOfDelivery(), now=at(26))

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        arrive_at_dropoff(job, driver_id="driver-1", now=at(27))

    # then
    assert refused.value.detail == (
        "a job that is delivered cannot become arrived_at_dropoff; allowed: none: the job is final"
    )


def test_a_driver_cannot_move_a_job_assigned_to_another() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))

    # when
    with pytest.raises(NotTheAssignedDriver) as refused:
        arrive_at_pickup(job, driver_id="driver-2", now=at(12))

    # then
    assert refused.value.status == 403
    assert refused.value.detail == "driver driver-2 is not assigned to job job-1"
    assert (job.status, job.pickup.status) == (S.ASSIGNED, TaskStatus.PENDING)


def test_nobody_arrives_for_an_unassigned_job() -> None:
    # given
    job = new_job()

    # when
    with pytest.raises(NotTheAssignedDriver):
        arrive_at_pickup(job, driver_id="driver-1", now=at(12))

    # then
    assert job.status is S.UNASSIGNED
