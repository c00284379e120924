"""The routing model solved by VROOM (pyvroom): fast, with skills, several time windows and priorities.

Every job is optional for VROOM: what it cannot fit stays unassigned, higher priorities first. The arc
cost is the distance; a vehicle's fixed cost makes it prefer fewer vehicles, there is no fleet descent.
One thread, so that plans on a shared machine do not fight each other for cores.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import vroom  # type: ignore[import-untyped]

from doorstep.dispatch.routing.feasibility import keep_feasible_routes
from doorstep.dispatch.routing.model import Job, JobKind, Plan, Problem, Stop, StopKind, plan_from_sequences
from doorstep.dispatch.routing.ports import UnsupportedProblem

EXPLORATION_LEVEL = 5  # VROOM's 0..5; the highest, the time limit bounds it
MATRIX_LIMIT = 2**32 - 1  # VROOM's matrices are unsigned 32-bit


def solve(
    problem: Problem, *, time_limit: float | None, seed: int = 0, minimise_vehicles: bool = True
) -> Plan:
    """The best plan VROOM finds within `time_limit` seconds (None: the exploration level bounds it).

    VROOM uses no seed, but a time limit makes it non-deterministic even when the search ends before it
    (equal-cost plans tie differently from run to run): pass None where a plan must repeat exactly.
    """
    del seed, minimise_vehicles
    if not problem.jobs or not problem.vehicles:
        return plan_from_sequences(problem, {})
    problem_input = _input(problem)
    timeout = None if time_limit is None else timedelta(seconds=time_limit)
    solution = problem_input.solve(exploration_level=EXPLORATION_LEVEL, nb_threads=1, timeout=timeout)
    return keep_feasible_routes(problem, _decode(problem, solution.to_dict()))


def _input(problem: Problem) -> Any:
    skills = {name: number for number, name in enumerate(sorted({s for j in problem.jobs for s in j.skills}))}
    problem_input = vroom.Input()
    for profile, matrices in problem.matrices.items():
        for name, matrix in (("durations", matrices.durations), ("distances", matrices.distances)):
            if any(value > MATRIX_LIMIT for row in matrix for value in row):
                raise UnsupportedProblem(f"VROOM takes {name} up to {MATRIX_LIMIT}", field=name)
        distances = np.array(matrices.distances, dtype=np.uint32)
        problem_input.set_durations_matrix(profile, np.array(matrices.durations, dtype=np.uint32))
        problem_input.set_distances_matrix(profile, distances)
        problem_input.set_costs_matrix(profile, distances)
    for number, vehicle in enumerate(problem.vehicles):
        problem_input.add_vehicle(
            vroom.Vehicle(
                id=number,
                start=vehicle.start,
                end=vehicle.end,
                profile=vehicle.profile,
                capacity=list(vehicle.capacity),
                skills={skills[s] for s in vehicle.skills if s in skills},
                time_window=vroom.TimeWindow(vehicle.shift.start, vehicle.shift.end),
                costs=vroom.VehicleCosts(fixed=vehicle.fixed_cost),
            )
        )
    for number, job in enumerate(problem.jobs):
        _add_job(problem_input, number, job, {skills[s] for s in job.skills})
    return problem_input


def _add_job(problem_input: Any, number: int, job: Job, skills: set[int]) -> None:
    if job.pickup is not None and job.delivery is not None:
        problem_input.add_shipment(
            pickup=_step(number, job.pickup),
            delivery=_step(number, job.delivery),
            amount=vroom.Amount(list(job.size)),
            skills=skills,
            priority=job.priority,
        )
        return
    ((_, stop),) = job.stops()
    amount = vroom.Amount(list(job.size))
    problem_input.add_job(
        vroom.Job(
            id=number,
            location=stop.location,
            default_service=stop.service,
            delivery=amount if job.kind is JobKind.DELIVERY else vroom.Amount(),
            pickup=amount if job.kind is JobKind.PICKUP else vroom.Amount(),
            skills=skills,
            priority=job.priority,
            time_windows=[vroom.TimeWindow(w.start, w.end) for w in stop.windows],
        )
    )


def _step(number: int, stop: Stop) -> Any:
    return vroom.ShipmentStep(
        id=number,
        location=stop.location,
        default_service=stop.service,
        time_windows=[vroom.TimeWindow(w.start, w.end) for w in stop.windows],
    )


def _decode(problem: Problem, solution: dict[str, Any]) -> Plan:
    sequences: dict[str, list[tuple[str, StopKind]]] = {}
    for route in solution.get("routes", []):
        vehicle = problem.vehicles[int(route["vehicle"])]
        sequence: list[tuple[str, StopKind]] = []
        for step in route["steps"]:
            if step["type"] in ("pickup", "delivery"):
                sequence.append((problem.jobs[int(step["id"])].id, StopKind(step["type"])))
            elif step["type"] == "job":
                job = problem.jobs[int(step["id"])]
                sequence.append(
                    (job.id, StopKind.DELIVERY if job.kind is JobKind.DELIVERY else StopKind.PICKUP)
                )
        if sequence:
            sequences[vehicle.id] = sequence
    return plan_from_sequences(problem, sequences)
