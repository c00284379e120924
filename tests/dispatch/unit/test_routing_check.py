"""The independent feasibility check, one broken rule at a time, on problems worked out on paper.

Locations 0..4 lie on a line 10 apart: travel time and distance between i and j are 10 * |i - j|.
"""

from __future__ import annotations

import pytest

from doorstep.dispatch.routing import (
    InvalidProblem,
    Job,
    Plan,
    Problem,
    Stop,
    StopKind,
    TimeWindow,
    TravelMatrices,
    Vehicle,
    ViolationKind,
    Visit,
    check,
    plan_from_sequences,
)
from doorstep.dispatch.routing.feasibility import keep_feasible_routes

LINE = tuple(tuple(10 * abs(i - j) for j in range(5)) for i in range(5))
P, D = StopKind.PICKUP, StopKind.DELIVERY


def van(
    vehicle_id: str = "v1", *, capacity: int = 1, end: int = 1000, skills: frozenset[str] = frozenset()
) -> Vehicle:
    return Vehicle(vehicle_id, (capacity,), 0, 0, TimeWindow(0, end), skills=skills)


def windowed_pair(*vehicles: Vehicle) -> Problem:
    """A (1 -> 2, 10 s to hand over) and B (3 -> 4, delivered by 45); one parcel at a time fits only B first."""
    a = Job("A", (1,), pickup=Stop(1), delivery=Stop(2, service=10))
    b = Job("B", (1,), pickup=Stop(3), delivery=Stop(4, (TimeWindow(0, 45),)))
    return Problem((a, b), vehicles or (van(),), {"car": TravelMatrices(LINE, LINE)})


def kinds(problem: Problem, plan: Plan) -> list[tuple[ViolationKind, str | None, str | None]]:
    return [(v.kind, v.vehicle_id, v.job_id) for v in check(problem, plan)]


def test_the_only_feasible_order_passes_with_its_earliest_times_and_cost() -> None:
    # given
    problem = windowed_pair()
    # when
    plan = plan_from_sequences(problem, {"v1": [("B", P), ("B", D), ("A", P), ("A", D)]})
    # then
    assert plan.routes == {
        "v1": (Visit("B", P, 30, 30), Visit("B", D, 40, 40), Visit("A", P, 70, 70), Visit("A", D, 80, 80))
    }
    assert plan.cost == 100
    assert plan.unassigned == frozenset()
    assert check(problem, plan) == []


def test_a_delivery_after_its_window_is_a_time_window_violation() -> None:
    problem = windowed_pair()
    plan = plan_from_sequences(problem, {"v1": [("A", P), ("A", D), ("B", P), ("B", D)]})
    violations = check(problem, plan)
    assert [(v.kind, v.job_id) for v in violations] == [(ViolationKind.TIME_WINDOW, "B")]
    assert violations[0].detail == "the delivery of job B: service starts at 50, outside its time windows"


def test_waiting_for_a_window_is_allowed() -> None:
    a = Job("A", (1,), pickup=Stop(1, (TimeWindow(100, 120),)), delivery=Stop(2))
    problem = Problem((a,), (van(),), {"car": TravelMatrices(LINE, LINE)})
    plan = plan_from_sequences(problem, {"v1": [("A", P), ("A", D)]})
    assert plan.routes["v1"] == (Visit("A", P, 10, 100), Visit("A", D, 110, 110))
    assert check(problem, plan) == []


def test_carrying_two_parcels_in_room_for_one_is_a_capacity_violation() -> None:
    problem = windowed_pair()
    plan = plan_from_sequences(problem, {"v1": [("A", P), ("B", P), ("B", D), ("A", D)]})
    assert kinds(problem, plan) == [(ViolationKind.CAPACITY, "v1", None)]


def test_a_delivery_before_its_pickup_is_an_order_violation() -> None:
    problem = windowed_pair(van(capacity=2))
    plan = plan_from_sequences(problem, {"v1": [("B", P), ("B", D), ("A", D), ("A", P)]})
    assert (ViolationKind.ORDER, "v1", "A") in kinds(problem, plan)


def test_a_shipment_over_two_vehicles_is_split() -> None:
    problem = windowed_pair(van("v1"), van("v2"))
    plan = plan_from_sequences(problem, {"v1": [("B", P), ("B", D), ("A", P)], "v2": [("A", D)]})
    assert kinds(problem, plan) == [(ViolationKind.SPLIT, None, "A")]


def test_half_a_shipment_is_incomplete() -> None:
    problem = windowed_pair()
    plan = plan_from_sequences(problem, {"v1": [("B", P), ("B", D), ("A", P)]})
    assert kinds(problem, plan) == [(ViolationKind.INCOMPLETE, None, "A")]


def test_a_stop_visited_twice_is_a_duplicate() -> None:
    problem = windowed_pair(van(capacity=2, end=10_000))
    visits = plan_from_sequences(problem, {"v1": [("B", P), ("B", D), ("A", P), ("A", D)]}).routes["v1"]
    plan = Plan({"v1": (*visits, Visit("A", D, 200, 200))})
    assert kinds(problem, plan) == [(ViolationKind.DUPLICATE, "v1", "A")]


def test_a_job_nowhere_is_missing_and_a_required_job_unassigned_is_unserved() -> None:
    problem = windowed_pair()
    routes = plan_from_sequences(problem, {"v1": [("B", P), ("B", D)]}).routes
    assert kinds(problem, Plan(routes)) == [(ViolationKind.MISSING, None, "A")]
    assert kinds(problem, Plan(routes, frozenset({"A"}))) == [(ViolationKind.UNSERVED, None, "A")]


def test_an_optional_job_may_stay_unassigned() -> None:
    a = Job("A", (1,), pickup=Stop(1), delivery=Stop(2), prize=50)
    problem = Problem((a,), (van(),), {"car": TravelMatrices(LINE, LINE)})
    assert check(problem, Plan({}, frozenset({"A"}))) == []


def test_unknown_vehicles_jobs_and_stops_are_reported() -> None:
    problem = windowed_pair()
    single = Job("S", (1,), delivery=Stop(1))
    problem = Problem((*problem.jobs, single), problem.vehicles, problem.matrices)
    plan = Plan(
        {"v9": (Visit("A", P, 10, 10),), "v1": (Visit("Z", P, 10, 10), Visit("S", P, 10, 10))},
        frozenset({"B"}),
    )
    found = kinds(problem, plan)
    assert (ViolationKind.UNKNOWN_VEHICLE, "v9", None) in found
    assert (ViolationKind.UNKNOWN_JOB, "v1", "Z") in found
    assert (ViolationKind.UNKNOWN_STOP, "v1", "S") in found


def test_stated_times_earlier_than_travel_allows_break_the_schedule() -> None:
    problem = windowed_pair()
    plan = Plan(
        {"v1": (Visit("B", P, 20, 20), Visit("B", D, 40, 40), Visit("A", P, 70, 70), Visit("A", D, 80, 80))}
    )
    violations = check(problem, plan)
    assert [(v.kind, v.job_id) for v in violations] == [
        (ViolationKind.SCHEDULE, "B"),
        (ViolationKind.SCHEDULE, "B"),
    ]
    assert violations[0].detail == "the pickup of job B: arrival 20 is before the earliest possible 30"


def test_coming_back_after_the_shift_ends_is_a_shift_violation() -> None:
    problem = windowed_pair(van(end=90))
    plan = plan_from_sequences(problem, {"v1": [("B", P), ("B", D), ("A", P), ("A", D)]})
    violations = check(problem, plan)
    assert [v.kind for v in violations] == [ViolationKind.SHIFT]
    assert violations[0].detail == "vehicle v1 is back at 110, after its shift ends at 90"


def test_a_job_needing_a_skill_the_vehicle_lacks_is_a_skills_violation() -> None:
    hot = Job("H", (1,), pickup=Stop(1), delivery=Stop(2), skills=frozenset({"hot_bag", "age_check"}))
    problem = Problem((hot,), (van(skills=frozenset({"hot_bag"})),), {"car": TravelMatrices(LINE, LINE)})
    violations = check(problem, plan_from_sequences(problem, {"v1": [("H", P), ("H", D)]}))
    assert [(v.kind, v.detail) for v in violations] == [
        (ViolationKind.SKILLS, "vehicle v1 lacks age_check for job H")
    ]


def test_single_deliveries_are_on_board_from_the_start() -> None:
    # given room for one: the delivery-only parcel rides from the depot, the pickup-only one back to it
    drop = Job("D", (1,), delivery=Stop(1))
    collect = Job("C", (1,), pickup=Stop(2))
    problem = Problem((drop, collect), (van(),), {"car": TravelMatrices(LINE, LINE)})
    # then dropping first fits and collecting first does not
    assert check(problem, plan_from_sequences(problem, {"v1": [("D", D), ("C", P)]})) == []
    assert kinds(problem, plan_from_sequences(problem, {"v1": [("C", P), ("D", D)]})) == [
        (ViolationKind.CAPACITY, "v1", None)
    ]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: TimeWindow(10, 5), "end"),
        (lambda: Job("J", (1,)), "pickup"),
        (lambda: Job("J", (-1,), delivery=Stop(1)), "size"),
        (lambda: TravelMatrices(((0, 1),), ((0,),)), "durations"),
        (
            lambda: Problem(
                (Job("J", (1,), delivery=Stop(7)),), (van(),), {"car": TravelMatrices(LINE, LINE)}
            ),
            "location",
        ),
        (lambda: Problem((), (van(),), {"bike": TravelMatrices(LINE, LINE)}), "profile"),
    ],
)
def test_a_malformed_problem_names_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidProblem) as raised:
        build()  # type: ignore[operator]
    assert raised.value.field == field


def test_keeping_feasible_routes_unassigns_the_jobs_of_a_faulty_one() -> None:
    # given v2's route misses B's window (A first), v1's is fine
    a = Job("A", (1,), pickup=Stop(1), delivery=Stop(2, service=10))
    b = Job("B", (1,), pickup=Stop(3), delivery=Stop(4, (TimeWindow(0, 45),)))
    c = Job("C", (1,), pickup=Stop(1), delivery=Stop(2))
    problem = Problem((a, b, c), (van("v1"), van("v2")), {"car": TravelMatrices(LINE, LINE)})
    plan = plan_from_sequences(
        problem, {"v1": [("C", P), ("C", D)], "v2": [("A", P), ("A", D), ("B", P), ("B", D)]}
    )
    # when
    kept = keep_feasible_routes(problem, plan)
    # then
    assert kept == Plan({"v1": plan.routes["v1"]}, frozenset({"A", "B"}), 40)
