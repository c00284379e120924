"""The Li & Lim reader, and the feasibility check against every published 100-task best-known route file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from doorstep.dispatch.routing import Job, Stop, TimeWindow, ViolationKind, check
from doorstep.dispatch.routing.lilim import (
    BestKnown,
    MalformedInstance,
    Task,
    best_known,
    parse,
    parse_solution,
    plan_of_routes,
    task_routes,
    to_problem,
)

# The benchmark data lives beside the repository, never in it (see bench/lilim.py).
DATA = Path(
    os.environ.get("DOORSTEP_LILIM_DIR", Path(__file__).resolve().parents[3].parent / "shared/bench/lilim")
)
needs_data = pytest.mark.skipif(not (DATA / "bks_lilim.csv").exists(), reason=f"no Li & Lim data in {DATA}")

TINY = (
    "2\t10\t1\r\n"
    "0\t0\t0\t0\t0\t100\t0\t0\t0\r\n"
    "1\t3\t4\t5\t0\t50\t2\t0\t2\r\n"
    "2\t6\t8\t-5\t10\t60\t3\t1\t0\r\n"
)


def test_an_instance_reads_into_tasks_pairs_and_a_scaled_problem(tmp_path: Path) -> None:
    # given
    path = tmp_path / "tiny.txt"
    path.write_text(TINY)
    # when
    instance = parse(path)
    problem = to_problem(instance, scale=1000, vehicle_cost=7)
    # then
    assert (instance.name, instance.vehicles, instance.capacity) == ("tiny", 2, 10)
    assert instance.tasks[1] == Task(1, 3.0, 4.0, 5, 0, 50, 2, 0, 2)
    assert instance.pairs == ((1, 2),)
    assert instance.routes_distance([[1, 2]]) == 20.0  # 5 out, 5 across, 10 back
    assert problem.jobs == (
        Job(
            "r1",
            (5,),
            pickup=Stop(1, (TimeWindow(0, 50_000),), 2000),
            delivery=Stop(2, (TimeWindow(10_000, 60_000),), 3000),
        ),
    )
    assert [(v.id, v.capacity, v.shift.end, v.fixed_cost) for v in problem.vehicles] == [
        ("v1", (10,), 100_000, 7),
        ("v2", (10,), 100_000, 7),
    ]
    assert problem.matrices["car"].distances[0][2] == 10_000


def test_durations_round_up_and_distances_round_to_nearest(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_text(TINY.replace("1\t3\t4\t5", "1\t1\t1\t5"))  # sqrt(2) away from the depot
    matrices = to_problem(parse(path), scale=1000).matrices["car"]
    assert (matrices.durations[0][1], matrices.distances[0][1]) == (1415, 1414)


def test_a_task_without_its_partner_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "broken.txt"
    path.write_text(TINY.replace("2\t6\t8\t-5\t10\t60\t3\t1\t0", "2\t6\t8\t-5\t10\t60\t3\t0\t0"))
    with pytest.raises(MalformedInstance, match="task 1 is not half of a pickup-delivery pair"):
        parse(path)


def test_a_solution_file_reads_as_routes_of_task_ids(tmp_path: Path) -> None:
    path = tmp_path / "lc.txt"
    path.write_text("Instance name : x\nSolution\nRoute 1 : 3 1 2 4\nRoute 2 : 5 6\n")
    assert parse_solution(path) == [[3, 1, 2, 4], [5, 6]]


@needs_data
def test_every_best_known_100_task_solution_passes_the_check_at_its_published_cost() -> None:
    # given
    table = best_known(DATA / "bks_lilim.csv")
    files = sorted((DATA / "bks_solutions_100").glob("*.txt"))
    assert len(files) == 56
    for file in files:
        name = file.name.split(".")[0]
        instance = parse(DATA / "pdp_100" / f"{name}.txt")
        routes = parse_solution(file)
        problem = to_problem(instance, scale=10**6)
        # when
        plan = plan_of_routes(problem, instance, routes)
        # then
        assert check(problem, plan) == [], name
        assert task_routes(instance, plan) == routes
        assert len(routes) == table[name].vehicles, name
        assert instance.routes_distance(routes) == pytest.approx(table[name].distance, abs=1e-3), name


@needs_data
def test_a_best_known_solution_with_a_task_moved_later_breaks_a_window() -> None:
    instance = parse(DATA / "pdp_100" / "lc101.txt")
    (file,) = (DATA / "bks_solutions_100").glob("lc101.*.txt")
    routes = parse_solution(file)
    routes[0] = [*routes[0][1:], routes[0][0]]  # 81 last: its delivery then comes first
    problem = to_problem(instance, scale=10**6)
    found = {v.kind for v in check(problem, plan_of_routes(problem, instance, routes))}
    assert ViolationKind.ORDER in found
    assert ViolationKind.TIME_WINDOW in found


@needs_data
def test_the_best_known_table_reads_vehicles_and_distance() -> None:
    assert best_known(DATA / "bks_lilim.csv")["lc101"] == BestKnown(10, 828.9369)
