"""The routing model solved by PyVRP (iterated local search): shipments, windows, capacities, shifts, prizes.

Vehicle minimisation is warm-started route elimination: plan with the whole fleet, then repeatedly drop
the route with the fewest jobs, give its jobs back and ask for a complete plan with one vehicle fewer;
polish the distance at the smallest fleet found. PyVRP's own `minimise_fleet` counts clients only, and a
fixed vehicle cost alone leaves it a vehicle too many on some instances.

PyVRP has no skills: each skill set of the fleet becomes a routing profile of its own in which the stops a
vehicle may not serve lie beyond its maximum distance. A stop with more than one time window is refused.
Runs stop on wall time, so a seed reproduces a plan only on an idle machine.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pyvrp
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.stop import FirstFeasible, MaxRuntime, MultipleCriteria, StoppingCriterion

from doorstep.dispatch.routing.feasibility import keep_feasible_routes
from doorstep.dispatch.routing.model import (
    JobKind,
    Plan,
    Problem,
    StopKind,
    plan_from_sequences,
)
from doorstep.dispatch.routing.ports import UnsupportedProblem
from doorstep.dispatch.routing.pyvrp_encoding import Encoding, encode

FIRST_PHASE_SHARE = 0.3  # of the time limit, with the whole fleet
ELIMINATION_STEP_SHARE = 0.2  # at most, per attempt to plan with one vehicle fewer
ELIMINATION_ATTEMPTS = 2  # failed attempts in a row before settling on the fleet size
RESERVE_SHARE = 0.05  # kept for the final polish
MIN_RUN = 0.05  # seconds
OVERRUN_SHARE = 0.03  # PyVRP checks its clock between iterations; a loaded machine runs over
ELIMINATION_DISTANCE_COST = 0  # while looking for a plan with one vehicle fewer


def solve(problem: Problem, *, time_limit: float, seed: int = 0, minimise_vehicles: bool = True) -> Plan:
    """The best plan PyVRP finds in `time_limit` seconds (wall time)."""
    _refuse_unsupported(problem)
    if not problem.jobs or not problem.vehicles:
        return plan_from_sequences(problem, {})
    time_limit *= 1 - OVERRUN_SHARE
    deadline = time.perf_counter() + time_limit
    encoding = encode(problem, relaxed=False)
    best = _plan(encoding.data, time_limit, deadline, seed, minimise_vehicles)
    if not best.solution.is_feasible():
        # Not every required job fits: serve what can be served, the rest stays unassigned.
        encoding = encode(problem, relaxed=True)
        relaxed = _run(encoding.data, max(MIN_RUN, deadline - time.perf_counter()), seed, None)
        best = _Found(relaxed, tuple(range(encoding.data.num_vehicle_types)))
    return keep_feasible_routes(problem, _decode(problem, encoding, best))


@dataclass(frozen=True)
class _Found:
    solution: pyvrp.Solution
    types: tuple[int, ...]  # the solution's vehicle type index -> the encoding's


def _refuse_unsupported(problem: Problem) -> None:
    for job in problem.jobs:
        if any(len(stop.windows) > 1 for _, stop in job.stops()):
            raise UnsupportedProblem(
                f"job {job.id}: PyVRP takes one time window per stop; plan it with VROOM", field="windows"
            )


def _plan(
    data: pyvrp.ProblemData, time_limit: float, deadline: float, seed: int, minimise_vehicles: bool
) -> _Found:
    every_type = tuple(range(data.num_vehicle_types))
    if not minimise_vehicles:
        # Stop early when the required jobs do not fit, so that the fallback gets the time left.
        first = _run(data, time_limit * FIRST_PHASE_SHARE, seed, None)
        if not first.is_feasible() or _left(deadline) <= MIN_RUN:
            return _Found(first, every_type)
        return _Found(_run(data, _left(deadline), seed + 1, first), every_type)
    best = _Found(_run(data, time_limit * FIRST_PHASE_SHARE, seed, None), every_type)
    attempt, failures = 1, 0
    while (
        best.solution.is_feasible()
        and best.solution.num_routes() > 1
        and _left(deadline) > time_limit * 2 * RESERVE_SHARE
    ):
        routes = sorted(best.solution.routes(), key=_jobs_on)
        kept = [r for i, r in enumerate(routes) if i != failures % len(routes)]
        # Without a distance cost the search only seeks feasibility: the fewer-vehicle plan is often longer.
        smaller, start, types = _restricted(data, kept, best.types, distance_cost=ELIMINATION_DISTANCE_COST)
        budget = min(_left(deadline) - time_limit * RESERVE_SHARE, time_limit * ELIMINATION_STEP_SHARE)
        found = _run(smaller, budget, seed + attempt, start, first_feasible=True)
        attempt += 1
        if found.is_feasible() and found.is_complete():
            best, failures = _Found(found, types), 0
        else:
            failures += 1
            if failures >= ELIMINATION_ATTEMPTS:
                break
    if _left(deadline) > MIN_RUN and best.solution.is_feasible():
        fleet, start, types = _restricted(data, best.solution.routes(), best.types)
        polished = _run(fleet, _left(deadline), seed + attempt, start)
        if (
            polished.is_feasible()
            and polished.is_complete()
            and polished.num_routes() <= best.solution.num_routes()
        ):
            best = _Found(polished, types)
    return best


def _left(deadline: float) -> float:
    return deadline - time.perf_counter()


def _jobs_on(route: pyvrp.Route) -> int:
    return route.num_shipments() + route.num_clients()


def _restricted(
    data: pyvrp.ProblemData,
    routes: Sequence[pyvrp.Route],
    types: tuple[int, ...],
    *,
    distance_cost: int | None = None,
) -> tuple[pyvrp.ProblemData, pyvrp.Solution, tuple[int, ...]]:
    """`data` with only as many vehicles of each type as `routes` use, and `routes` as a start.

    `types` maps the routes' vehicle types to `data`'s; the result's map comes back with it.
    """
    used = Counter(types[route.vehicle_type()] for route in routes)
    kept = tuple(sorted(used))
    renumber = {original: new for new, original in enumerate(kept)}
    original_types = data.vehicle_types()
    smaller = data.replace(
        vehicle_types=[
            original_types[t].replace(num_available=used[t], unit_distance_cost=distance_cost) for t in kept
        ]
    )
    start = pyvrp.Solution(
        smaller,
        [
            pyvrp.Route(
                smaller,
                [pyvrp.Activity(a.type, a.idx) for a in route if not a.is_depot()],
                renumber[types[route.vehicle_type()]],
            )
            for route in routes
        ],
    )
    return smaller, start, kept


def _run(
    data: pyvrp.ProblemData,
    seconds: float,
    seed: int,
    start: pyvrp.Solution | None,
    *,
    first_feasible: bool = False,
) -> pyvrp.Solution:
    stop: StoppingCriterion = MaxRuntime(max(MIN_RUN, seconds))
    if first_feasible:
        stop = MultipleCriteria([FirstFeasible(), stop])
    with warnings.catch_warnings():
        # Raised when the required jobs cannot all be served; `solve` then plans without them.
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        result = pyvrp.solve(
            data, stop=stop, seed=seed, collect_stats=False, display=False, initial_solution=start
        )
    return result.best


def _decode(problem: Problem, encoding: Encoding, found: _Found) -> Plan:
    free = [list(fleet) for fleet in encoding.fleets]
    sequences: dict[str, list[tuple[str, StopKind]]] = {}
    for route in found.solution.routes():
        vehicle = free[found.types[route.vehicle_type()]].pop(0)
        sequence: list[tuple[str, StopKind]] = []
        for activity in route:
            if activity.is_pickup():
                sequence.append((encoding.shipments[activity.idx], StopKind.PICKUP))
            elif activity.is_delivery():
                sequence.append((encoding.shipments[activity.idx], StopKind.DELIVERY))
            elif activity.is_client():
                job = problem.jobs_by_id[encoding.clients[activity.idx]]
                sequence.append(
                    (job.id, StopKind.DELIVERY if job.kind is JobKind.DELIVERY else StopKind.PICKUP)
                )
        if sequence:
            sequences[vehicle.id] = sequence
    return plan_from_sequences(problem, sequences)
