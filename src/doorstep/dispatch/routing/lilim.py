"""Li & Lim pickup-and-delivery instances (PDPTW), their best-known solutions, and their exact cost.

Line 1 is `K Q speed`; then one row per task `id x y demand early late service pickup delivery`, task 0
being the depot. Travel time is the double-precision Euclidean distance. The routing model is integer, so
`to_problem` scales: distances rounded, durations rounded up, so that a plan feasible in the model is
feasible in exact doubles. Reported distances are recomputed in doubles from the visiting order.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from doorstep.dispatch.routing.model import (
    Job,
    Plan,
    Problem,
    Stop,
    StopKind,
    TimeWindow,
    TravelMatrices,
    Vehicle,
    Visit,
    plan_from_sequences,
)

SCALE = 1000


class MalformedInstance(ValueError):
    pass


@dataclass(frozen=True)
class Task:
    id: int
    x: float
    y: float
    demand: int
    early: int
    late: int
    service: int
    pickup: int  # on a delivery: its pickup's id; else 0
    delivery: int  # on a pickup: its delivery's id; else 0


@dataclass(frozen=True)
class Instance:
    name: str
    vehicles: int
    capacity: int
    tasks: tuple[Task, ...]  # tasks[0] is the depot

    @property
    def depot(self) -> Task:
        return self.tasks[0]

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """(pickup id, delivery id) of every request, in pickup id order."""
        return tuple((t.id, t.delivery) for t in self.tasks[1:] if t.delivery)

    def distance(self, a: int, b: int) -> float:
        first, second = self.tasks[a], self.tasks[b]
        return math.hypot(first.x - second.x, first.y - second.y)

    def routes_distance(self, routes: list[list[int]]) -> float:
        """The exact length of routes given as task ids, depot omitted."""
        return sum(self.distance(a, b) for route in routes for a, b in pairwise([0, *route, 0]))


@dataclass(frozen=True)
class BestKnown:
    vehicles: int
    distance: float


def parse(path: Path) -> Instance:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    try:
        vehicles, capacity = int(rows[0][0]), int(rows[0][1])
        tasks = tuple(Task(*_task_fields(row)) for row in rows[1:])
    except (IndexError, ValueError) as error:
        raise MalformedInstance(f"{path.name}: {error}") from error
    if [t.id for t in tasks] != list(range(len(tasks))):
        raise MalformedInstance(f"{path.name}: task ids must run 0..n in order")
    for task in tasks[1:]:
        other = task.delivery or task.pickup
        partner = tasks[other] if 0 < other < len(tasks) else None
        if task.delivery:
            paired = partner is not None and partner.pickup == task.id and task.demand >= 0
        else:
            paired = partner is not None and partner.delivery == task.id and task.demand <= 0
        if not paired:
            raise MalformedInstance(f"{path.name}: task {task.id} is not half of a pickup-delivery pair")
    return Instance(path.stem, vehicles, capacity, tasks)


def _task_fields(row: list[str]) -> tuple[int, float, float, int, int, int, int, int, int]:
    if len(row) < 9:
        raise ValueError(f"a task row has 9 fields, got {len(row)}")
    i, x, y, demand, early, late, service, pickup, delivery = row[:9]
    return (
        int(i),
        float(x),
        float(y),
        int(demand),
        int(early),
        int(late),
        int(service),
        int(pickup),
        int(delivery),
    )


def parse_solution(path: Path) -> list[list[int]]:
    """Routes of a SINTEF solution file (`Route 1 : 5 3 7 ...`) as task ids."""
    return [
        [int(v) for v in line.split(":", 1)[1].split()]
        for line in path.read_text().splitlines()
        if line.startswith("Route")
    ]


def best_known(csv_path: Path) -> dict[str, BestKnown]:
    with csv_path.open(newline="") as handle:
        return {
            row["instance"]: BestKnown(int(row["vehicles"]), float(row["distance"]))
            for row in csv.DictReader(handle)
        }


def job_id(pickup: int) -> str:
    return f"r{pickup}"


def to_problem(instance: Instance, *, scale: int = SCALE, vehicle_cost: int | None = None) -> Problem:
    """The instance as a routing problem; location i is task i. `vehicle_cost` defaults to 4 longest arcs."""
    n = len(instance.tasks)
    exact = [[instance.distance(a, b) * scale for b in range(n)] for a in range(n)]
    distances = tuple(tuple(round(d) for d in row) for row in exact)
    durations = tuple(tuple(math.ceil(d) for d in row) for row in exact)
    if vehicle_cost is None:
        vehicle_cost = 4 * max(max(row) for row in distances)
    depot = instance.depot
    shift = TimeWindow(depot.early * scale, depot.late * scale)
    vehicles = tuple(
        Vehicle(f"v{k}", (instance.capacity,), 0, 0, shift, fixed_cost=vehicle_cost)
        for k in range(1, instance.vehicles + 1)
    )
    jobs = tuple(
        Job(
            job_id(p),
            (instance.tasks[p].demand,),
            pickup=_stop(instance.tasks[p], scale),
            delivery=_stop(instance.tasks[d], scale),
        )
        for p, d in instance.pairs
    )
    return Problem(jobs, vehicles, {"car": TravelMatrices(durations, distances)})


def _stop(task: Task, scale: int) -> Stop:
    return Stop(task.id, (TimeWindow(task.early * scale, task.late * scale),), task.service * scale)


def plan_of_routes(problem: Problem, instance: Instance, routes: list[list[int]]) -> Plan:
    """Routes of task ids as a plan at the earliest times; routes beyond the fleet go on unknown vehicles."""
    stops = {p: (job_id(p), StopKind.PICKUP) for p, _ in instance.pairs}
    stops |= {d: (job_id(p), StopKind.DELIVERY) for p, d in instance.pairs}
    unknown = sorted({task for route in routes for task in route} - stops.keys())
    if unknown:
        raise MalformedInstance(f"{instance.name} has no tasks {unknown}")
    vehicle_ids = [v.id for v in problem.vehicles]
    sequences = [[stops[task] for task in route] for route in routes if route]
    plan = plan_from_sequences(problem, dict(zip(vehicle_ids, sequences, strict=False)))
    surplus = {
        f"surplus{i}": tuple(Visit(job, kind, 0, 0) for job, kind in sequence)
        for i, sequence in enumerate(sequences[len(vehicle_ids) :], start=1)
    }
    return Plan({**plan.routes, **surplus}, plan.unassigned, plan.cost) if surplus else plan


def task_routes(instance: Instance, plan: Plan) -> list[list[int]]:
    """The plan's routes as lists of task ids in visiting order, depot omitted."""
    delivery_of = dict(instance.pairs)
    return [
        [int(v.job_id[1:]) if v.kind is StopKind.PICKUP else delivery_of[int(v.job_id[1:])] for v in visits]
        for visits in plan.routes.values()
        if visits
    ]
