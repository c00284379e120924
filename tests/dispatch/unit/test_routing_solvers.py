"""Both solver adapters on problems whose best plan is known, and on a Li & Lim instance for feasibility.

Locations 0..4 lie on a line 10 apart: travel time and distance between i and j are 10 * |i - j|.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from doorstep.dispatch.routing import (
    Job,
    Plan,
    Problem,
    Solver,
    Stop,
    StopKind,
    TimeWindow,
    TravelMatrices,
    UnsupportedProblem,
    Vehicle,
    Visit,
    check,
    pyvrp_solver,
    vroom_solver,
)
from doorstep.dispatch.routing.lilim import parse, to_problem

LINE = tuple(tuple(10 * abs(i - j) for j in range(5)) for i in range(5))
P, D = StopKind.PICKUP, StopKind.DELIVERY
DATA = Path(
    os.environ.get("DOORSTEP_LILIM_DIR", Path(__file__).resolve().parents[3].parent / "shared/bench/lilim")
)


SOLVER_FUNCTIONS: tuple[Solver, ...] = (pyvrp_solver.solve, vroom_solver.solve)  # both meet the port
SOLVERS = pytest.mark.parametrize("solve", SOLVER_FUNCTIONS, ids=["pyvrp", "vroom"])


def van(
    vehicle_id: str = "v1", *, capacity: int = 1, skills: frozenset[str] = frozenset(), fixed_cost: int = 0
) -> Vehicle:
    return Vehicle(vehicle_id, (capacity,), 0, 0, TimeWindow(0, 1000), skills=skills, fixed_cost=fixed_cost)


def on_line(jobs: tuple[Job, ...], *vehicles: Vehicle) -> Problem:
    return Problem(jobs, vehicles or (van(),), {"car": TravelMatrices(LINE, LINE)})


@SOLVERS
def test_windows_and_room_for_one_parcel_force_the_order(solve: Solver) -> None:
    # given A (1 -> 2, 10 s to hand over) and B (3 -> 4, delivered by 45): only B first fits
    a = Job("A", (1,), pickup=Stop(1), delivery=Stop(2, service=10))
    b = Job("B", (1,), pickup=Stop(3), delivery=Stop(4, (TimeWindow(0, 45),)))
    problem = on_line((a, b))
    # when
    plan = solve(problem, time_limit=0.5, seed=1)
    # then
    assert plan.routes == {
        "v1": (Visit("B", P, 30, 30), Visit("B", D, 40, 40), Visit("A", P, 70, 70), Visit("A", D, 80, 80))
    }
    assert (plan.cost, plan.unassigned) == (100, frozenset())


@SOLVERS
def test_a_job_goes_only_to_a_vehicle_with_its_skills(solve: Solver) -> None:
    # given a hot-food job only v2 can carry, a plain one, room for one parcel and a fixed cost that
    # favours one vehicle: the best plan is v2 alone, hot first (distance 80; plain first is 100)
    hot = Job("hot", (1,), pickup=Stop(1), delivery=Stop(2), skills=frozenset({"hot_bag"}))
    plain = Job("plain", (1,), pickup=Stop(3), delivery=Stop(4))
    problem = on_line(
        (hot, plain),
        van("v1", fixed_cost=1000),
        van("v2", skills=frozenset({"hot_bag", "cash"}), fixed_cost=1000),
    )
    # when
    plan = solve(problem, time_limit=0.5, seed=1)
    # then
    assert plan.routes == {
        "v2": (
            Visit("hot", P, 10, 10),
            Visit("hot", D, 20, 20),
            Visit("plain", P, 30, 30),
            Visit("plain", D, 40, 40),
        )
    }
    assert plan.cost == 1080


@SOLVERS
def test_single_deliveries_ride_from_the_start_and_single_pickups_back(solve: Solver) -> None:
    # given room for one: drop D first, then collect C
    drop = Job("D", (1,), delivery=Stop(2))
    collect = Job("C", (1,), pickup=Stop(1))
    plan = solve(on_line((drop, collect)), time_limit=0.5, seed=1)
    assert plan.routes == {"v1": (Visit("D", D, 20, 20), Visit("C", P, 30, 30))}
    assert plan.cost == 40


@SOLVERS
def test_a_job_no_vehicle_can_reach_in_time_stays_unassigned(solve: Solver) -> None:
    a = Job("A", (1,), pickup=Stop(1), delivery=Stop(2))
    late = Job("late", (1,), pickup=Stop(3, (TimeWindow(0, 5),)), delivery=Stop(4))
    problem = on_line((a, late))
    plan = solve(problem, time_limit=0.5, seed=1)
    assert plan.routes == {"v1": (Visit("A", P, 10, 10), Visit("A", D, 20, 20))}
    assert plan.unassigned == frozenset({"late"})


def test_pyvrp_refuses_a_stop_with_two_windows() -> None:
    two = Job("two", (1,), pickup=Stop(1, (TimeWindow(0, 5), TimeWindow(50, 60))), delivery=Stop(2))
    with pytest.raises(UnsupportedProblem) as raised:
        pyvrp_solver.solve(on_line((two,)), time_limit=0.5)
    assert raised.value.field == "windows"


def test_vroom_waits_for_the_second_window() -> None:
    two = Job("two", (1,), pickup=Stop(1, (TimeWindow(0, 5), TimeWindow(50, 60))), delivery=Stop(2))
    plan = vroom_solver.solve(on_line((two,)), time_limit=0.5)
    assert plan.routes == {"v1": (Visit("two", P, 10, 50), Visit("two", D, 60, 60))}


@SOLVERS
def test_nothing_to_plan_gives_an_empty_plan(solve: Solver) -> None:
    assert solve(on_line(()), time_limit=0.5) == Plan({}, frozenset(), 0)


@pytest.mark.skipif(not (DATA / "pdp_100" / "lr101.txt").exists(), reason=f"no Li & Lim data in {DATA}")
@SOLVERS
def test_a_li_lim_instance_gets_a_feasible_complete_plan(solve: Solver) -> None:
    # given 53 shipments with tight windows and a 25-vehicle fleet
    instance = parse(DATA / "pdp_100" / "lr101.txt")
    problem = to_problem(instance)
    # when
    plan = solve(problem, time_limit=1.0, seed=1)
    # then
    assert check(problem, plan) == []
    assert plan.unassigned == frozenset()
    assert sum(len(visits) for visits in plan.routes.values()) == 106


@SOLVERS
def test_a_job_needing_a_skill_nobody_has_stays_unassigned(solve: Solver) -> None:
    hot = Job("hot", (1,), pickup=Stop(1), delivery=Stop(2), skills=frozenset({"hot_bag"}))
    plain = Job("plain", (1,), pickup=Stop(3), delivery=Stop(4))
    plan = solve(on_line((hot, plain)), time_limit=0.5, seed=1)
    assert plan.routes == {"v1": (Visit("plain", P, 30, 30), Visit("plain", D, 40, 40))}
    assert plan.unassigned == frozenset({"hot"})


def test_pyvrp_without_fleet_minimisation_finds_the_same_forced_order() -> None:
    a = Job("A", (1,), pickup=Stop(1), delivery=Stop(2, service=10))
    b = Job("B", (1,), pickup=Stop(3), delivery=Stop(4, (TimeWindow(0, 45),)))
    plan = pyvrp_solver.solve(on_line((a, b)), time_limit=0.5, seed=1, minimise_vehicles=False)
    assert [(v.job_id, v.kind) for v in plan.routes["v1"]] == [("B", P), ("B", D), ("A", P), ("A", D)]
    assert plan.cost == 100
