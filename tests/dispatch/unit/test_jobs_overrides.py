"""A dispatcher's hand: assign, unassign, reassign, reorder stops; automatic dispatch keeps off what is pinned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorstep.dispatch.domain.execution import arrive_at_dropoff, arrive_at_pickup, pick_up
from doorstep.dispatch.domain.job_events import (
    Actor,
    JobPinChanged,
    JobReassigned,
    JobUnassigned,
    StopsReordered,
    TaskKind,
)
from doorstep.dispatch.domain.jobs import (
    IllegalJobTransition,
    InvalidJob,
    Job,
    JobLocked,
    JobStatus,
    JobStop,
    TaskStatus,
    Window,
)
from doorstep.dispatch.domain.offers import (
    DispatcherOnly,
    DispatchPins,
    assign,
    pins,
    plan_stops,
    reassign,
    reorder_stops,
    set_pinned,
    unassign,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
S = JobStatus
P, D = TaskKind.PICKUP, TaskKind.DROPOFF


def new_job(job_id: str = "job-1") -> Job:
    return Job.create(
        id=job_id,
        tenant_id="tenant-a",
        order_id=f"order-of-{job_id}",
        pickup=JobStop("Torstrasse 1, Berlin", 52.529, 13.401, Window(start=NOW)),
        dropoff=JobStop("Kastanienallee 5, Berlin", 52.538, 13.410, Window(end=NOW + timedelta(hours=1))),
        now=NOW,
    )


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def ids(job: Job) -> dict[str, str]:
    return {"job_id": job.id, "order_id": job.order_id, "tenant_id": job.tenant_id}


def picked_up_by(driver_id: str, job_id: str = "job-1") -> Job:
    job = new_job(job_id)
    assign(job, driver_id=driver_id, actor=Actor.AUTOMATIC, now=at(1))
    arrive_at_pickup(job, driver_id=driver_id, now=at(5))
    pick_up(job, driver_id=driver_id, now=at(6))
    return job


def test_a_dispatchers_assignment_is_pinned_and_automatic_dispatch_cannot_move_it() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.DISPATCHER, now=at(1))

    # when
    with pytest.raises(JobLocked) as moved:
        reassign(job, driver_id="driver-2", actor=Actor.AUTOMATIC, now=at(2))
    with pytest.raises(JobLocked) as taken:
        unassign(job, actor=Actor.AUTOMATIC, now=at(2))

    # then
    assert moved.value.detail == "job job-1 was pinned by a dispatcher; automatic dispatch may not change it"
    assert taken.value.status == 409
    assert (job.status, job.driver_id, job.locked) == (S.ASSIGNED, "driver-1", True)
    assert pins([job]) == DispatchPins(assignments={"job-1": "driver-1"}, stop_orders={}, excluded_drivers={})


def test_automatic_dispatch_replans_an_unpinned_job_before_pickup() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    arrive_at_pickup(job, driver_id="driver-1", now=at(5))

    # when
    events = reassign(job, driver_id="driver-2", actor=Actor.AUTOMATIC, now=at(6))

    # then
    assert events == [
        JobReassigned(
            **ids(job),
            at=at(6),
            from_driver_id="driver-1",
            driver_id="driver-2",
            actor=Actor.AUTOMATIC,
            handover_note=None,
        )
    ]
    assert (job.status, job.driver_id, job.pinned) == (S.ASSIGNED, "driver-2", False)
    assert (job.pickup.status, job.pickup.arrived_at) == (TaskStatus.PENDING, None)
    assert pins([job]).assignments == {}


def test_a_dispatcher_unpins_a_job_and_automatic_dispatch_may_move_it_again() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.DISPATCHER, now=at(1))

    # when
    unpinned = set_pinned(job, pinned=False, now=at(2))
    again = set_pinned(job, pinned=False, now=at(3))
    reassign(job, driver_id="driver-2", actor=Actor.AUTOMATIC, now=at(4))

    # then
    assert unpinned == [JobPinChanged(**ids(job), at=at(2), pinned=False)]
    assert again == []
    assert job.driver_id == "driver-2"


def test_a_job_without_a_driver_cannot_be_pinned() -> None:
    # given
    job = new_job()

    # when
    with pytest.raises(InvalidJob) as refused:
        set_pinned(job, pinned=True, now=at(1))

    # then
    assert refused.value.field == "pinned"
    assert job.pinned is False


def test_a_dispatcher_unassigns_a_job_before_pickup_and_it_waits_unpinned() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.DISPATCHER, now=at(1))
    arrive_at_pickup(job, driver_id="driver-1", now=at(5))

    # when
    events = unassign(job, actor=Actor.DISPATCHER, now=at(6), reason="driver's car broke down")

    # then
    assert events == [JobUnassigned(**ids(job), at=at(6), driver_id="driver-1", actor=Actor.DISPATCHER)]
    assert (job.status, job.driver_id, job.pinned, job.pickup.status) == (
        S.UNASSIGNED,
        None,
        False,
        TaskStatus.PENDING,
    )
    assert job.history[-1].reason == "driver's car broke down"


def test_a_job_with_the_goods_on_board_is_not_unassigned() -> None:
    # given
    job = picked_up_by("driver-1")

    # when
    with pytest.raises(IllegalJobTransition) as refused:
        unassign(job, actor=Actor.DISPATCHER, now=at(7))

    # then
    assert refused.value.extensions["allowed_statuses"] == ["picked_up", "arrived_at_dropoff", "returning"]
    assert job.driver_id == "driver-1"


def test_goods_on_board_go_to_another_driver_only_by_a_dispatcher_with_a_hand_over_note() -> None:
    # given
    job = picked_up_by("driver-1")

    # when
    with pytest.raises(DispatcherOnly):
        reassign(job, driver_id="driver-2", actor=Actor.AUTOMATIC, now=at(7))
    with pytest.raises(InvalidJob) as without_note:
        reassign(job, driver_id="driver-2", actor=Actor.DISPATCHER, now=at(7))
    events = reassign(
        job,
        driver_id="driver-2",
        actor=Actor.DISPATCHER,
        now=at(8),
        handover_note="meet at Rosenthaler Platz",
    )

    # then
    assert without_note.value.field == "handover_note"
    assert events == [
        JobReassigned(
            **ids(job),
            at=at(8),
            from_driver_id="driver-1",
            driver_id="driver-2",
            actor=Actor.DISPATCHER,
            handover_note="meet at Rosenthaler Platz",
        )
    ]
    assert (job.status, job.driver_id, job.pinned) == (S.PICKED_UP, "driver-2", True)


def test_a_hand_over_at_the_dropoff_sends_the_new_driver_to_the_dropoff() -> None:
    # given
    job = picked_up_by("driver-1")
    arrive_at_dropoff(job, driver_id="driver-1", now=at(20))

    # when
    reassign(job, driver_id="driver-2", actor=Actor.DISPATCHER, now=at(21), handover_note="van broke down")

    # then
    assert (job.status, job.dropoff.status, job.dropoff.arrived_at) == (S.PICKED_UP, TaskStatus.PENDING, None)
    arrive_at_dropoff(job, driver_id="driver-2", now=at(30))
    assert job.status is S.ARRIVED_AT_DROPOFF


def test_a_job_is_not_reassigned_to_its_own_driver() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))

    # when
    with pytest.raises(InvalidJob) as refused:
        reassign(job, driver_id="driver-1", actor=Actor.DISPATCHER, now=at(2))

    # then
    assert refused.value.field == "driver_id"


def test_a_driver_cannot_assign_a_job_to_themselves() -> None:
    # given
    job = new_job()

    # when
    with pytest.raises(DispatcherOnly) as refused:
        assign(job, driver_id="driver-1", actor=Actor.DRIVER, now=at(1))

    # then
    assert refused.value.status == 403
    assert job.status is S.UNASSIGNED


def test_a_dispatchers_stop_order_is_pinned_and_handed_to_the_optimiser() -> None:
    # given
    waiting = new_job("job-a")
    assign(waiting, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    on_board = picked_up_by("driver-1", "job-b")
    sequence = [("job-a", P), ("job-b", D), ("job-a", D)]

    # when
    events = reorder_stops([waiting, on_board], driver_id="driver-1", sequence=sequence, now=at(7))

    # then
    assert events == [
        StopsReordered(**ids(waiting), at=at(7), driver_id="driver-1", positions=((P, 0), (D, 2))),
        StopsReordered(**ids(on_board), at=at(7), driver_id="driver-1", positions=((D, 1),)),
    ]
    assert (waiting.locked, on_board.locked) == (True, True)
    assert pins([waiting, on_board]) == DispatchPins(
        assignments={"job-a": "driver-1", "job-b": "driver-1"},
        stop_orders={"driver-1": (("job-a", P), ("job-b", D), ("job-a", D))},
        excluded_drivers={},
    )
    arrive_at_pickup(waiting, driver_id="driver-1", now=at(9))
    pick_up(waiting, driver_id="driver-1", now=at(10))
    assert pins([waiting, on_board]).stop_orders == {"driver-1": (("job-b", D), ("job-a", D))}


def test_a_planned_stop_order_pins_nothing() -> None:
    # given two jobs automatic dispatch gave to one driver
    waiting = new_job("job-a")
    assign(waiting, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    on_board = picked_up_by("driver-1", "job-b")

    # when the planner orders the driver's stops
    events = plan_stops(
        [waiting, on_board],
        driver_id="driver-1",
        sequence=[("job-b", D), ("job-a", P), ("job-a", D)],
        now=at(7),
    )

    # then the order is kept on the jobs, and the optimiser is still free to change it
    assert events == [
        StopsReordered(**ids(waiting), at=at(7), driver_id="driver-1", positions=((P, 1), (D, 2))),
        StopsReordered(**ids(on_board), at=at(7), driver_id="driver-1", positions=((D, 0),)),
    ]
    assert (waiting.pinned, on_board.pinned) == (False, False)
    assert pins([waiting, on_board]).stop_orders == {}


def test_a_planned_order_keeps_the_dispatchers_stops_in_their_order() -> None:
    # given a dispatcher ordered job-a's and job-b's stops, and a third job joins the route unpinned
    waiting = new_job("job-a")
    assign(waiting, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    on_board = picked_up_by("driver-1", "job-b")
    reorder_stops(
        [waiting, on_board],
        driver_id="driver-1",
        sequence=[("job-a", P), ("job-b", D), ("job-a", D)],
        now=at(7),
    )
    extra = new_job("job-c")
    assign(extra, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(8))
    jobs = [waiting, on_board, extra]

    # when the planner slots job-c between the pinned stops
    plan_stops(
        jobs,
        driver_id="driver-1",
        sequence=[("job-a", P), ("job-c", P), ("job-b", D), ("job-c", D), ("job-a", D)],
        now=at(9),
    )
    # and then tries to swap two of the dispatcher's stops
    with pytest.raises(JobLocked) as refused:
        plan_stops(
            jobs,
            driver_id="driver-1",
            sequence=[("job-b", D), ("job-a", P), ("job-c", P), ("job-c", D), ("job-a", D)],
            now=at(10),
        )

    # then the first plan stands and the dispatcher's order is unchanged
    assert refused.value.status == 409
    assert extra.stop_positions == {P: 1, D: 3}
    assert extra.pinned is False
    assert pins(jobs).stop_orders == {"driver-1": (("job-a", P), ("job-b", D), ("job-a", D))}


@pytest.mark.parametrize(
    "sequence",
    [
        [("job-a", D), ("job-a", P), ("job-b", D)],  # drop-off before pickup
        [("job-a", P), ("job-a", D)],  # job-b's drop-off missing
        [("job-a", P), ("job-b", P), ("job-b", D), ("job-a", D)],  # job-b was picked up already
        [("job-a", P), ("job-b", D), ("job-a", D), ("job-a", D)],  # a stop twice
    ],
)
def test_a_stop_order_that_breaks_the_route_is_refused(sequence: list[tuple[str, TaskKind]]) -> None:
    # given
    waiting = new_job("job-a")
    assign(waiting, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    on_board = picked_up_by("driver-1", "job-b")

    # when
    with pytest.raises(InvalidJob) as refused:
        reorder_stops([waiting, on_board], driver_id="driver-1", sequence=sequence, now=at(7))

    # then
    assert refused.value.field == "sequence"
    assert (waiting.stop_positions, on_board.stop_positions, waiting.pinned) == ({}, {}, False)


def test_stops_of_another_drivers_job_are_not_reordered() -> None:
    # given
    mine = new_job("job-a")
    assign(mine, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    theirs = new_job("job-b")
    assign(theirs, driver_id="driver-2", actor=Actor.AUTOMATIC, now=at(1))

    # when
    with pytest.raises(InvalidJob) as refused:
        reorder_stops(
            [mine, theirs],
            driver_id="driver-1",
            sequence=[("job-a", P), ("job-b", P), ("job-b", D), ("job-a", D)],
            now=at(2),
        )

    # then
    assert refused.value.detail == "job job-b is not on the route of driver driver-1"


def test_reassigning_drops_the_hand_made_stop_order_of_the_old_route() -> None:
    # given
    job = new_job()
    assign(job, driver_id="driver-1", actor=Actor.AUTOMATIC, now=at(1))
    reorder_stops([job], driver_id="driver-1", sequence=[("job-1", P), ("job-1", D)], now=at(2))

    # when
    reassign(job, driver_id="driver-2", actor=Actor.DISPATCHER, now=at(3))

    # then
    assert job.stop_positions == {}
    assert pins([job]) == DispatchPins(assignments={"job-1": "driver-2"}, stop_orders={}, excluded_drivers={})
