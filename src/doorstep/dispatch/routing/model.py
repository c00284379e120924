"""The solver-neutral routing model: jobs, vehicles, travel matrices and the plans a solver returns.

Units are the caller's, as integers (seconds and metres in production; Li & Lim scales its doubles). Every
location is an index into the matrices of the vehicle's profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

from doorstep.kernel.errors import InvalidInput

Matrix = tuple[tuple[int, ...], ...]


class InvalidProblem(InvalidInput):
    slug = "invalid-routing-problem"
    title = "The routing problem is not well formed"


class StopKind(StrEnum):
    PICKUP = "pickup"
    DELIVERY = "delivery"


class JobKind(StrEnum):
    SHIPMENT = "shipment"  # picked up at one stop, delivered at another, by the same vehicle
    DELIVERY = "delivery"  # loaded at the vehicle's start, dropped at the stop
    PICKUP = "pickup"  # collected at the stop, brought to the vehicle's end


@dataclass(frozen=True)
class TimeWindow:
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidProblem(
                f"time window ends ({self.end}) before it starts ({self.start})", field="end"
            )


@dataclass(frozen=True)
class Stop:
    location: int
    windows: tuple[TimeWindow, ...] = ()  # service starts inside one of them; none means any time
    service: int = 0

    def __post_init__(self) -> None:
        if self.service < 0:
            raise InvalidProblem("service time must not be negative", field="service")

    def earliest_start(self, arrival: int) -> int | None:
        """When service can start for a vehicle arriving at `arrival` (waiting allowed), or None if too late."""
        if not self.windows:
            return arrival
        starts = [max(arrival, w.start) for w in self.windows if arrival <= w.end]
        return min(starts) if starts else None

    def accepts(self, start: int) -> bool:
        return not self.windows or any(w.start <= start <= w.end for w in self.windows)


@dataclass(frozen=True)
class Job:
    id: str
    size: tuple[int, ...]
    pickup: Stop | None = None
    delivery: Stop | None = None
    skills: frozenset[str] = frozenset()
    priority: int = 0  # 0..100, higher is served first when not every job fits
    prize: int | None = None  # None: the job must be served; else optional, worth `prize` when served

    def __post_init__(self) -> None:
        if self.pickup is None and self.delivery is None:
            raise InvalidProblem(f"job {self.id} has neither a pickup nor a delivery", field="pickup")
        if any(amount < 0 for amount in self.size):
            raise InvalidProblem(f"job {self.id} has a negative size", field="size")
        if not 0 <= self.priority <= 100:
            raise InvalidProblem(f"job {self.id}: priority must be within 0..100", field="priority")
        if self.prize is not None and self.prize < 0:
            raise InvalidProblem(f"job {self.id}: prize must not be negative", field="prize")

    @property
    def kind(self) -> JobKind:
        if self.pickup is not None and self.delivery is not None:
            return JobKind.SHIPMENT
        return JobKind.PICKUP if self.pickup is not None else JobKind.DELIVERY

    @property
    def required(self) -> bool:
        return self.prize is None

    def stop(self, kind: StopKind) -> Stop | None:
        return self.pickup if kind is StopKind.PICKUP else self.delivery

    def stops(self) -> tuple[tuple[StopKind, Stop], ...]:
        return tuple((kind, stop) for kind in StopKind if (stop := self.stop(kind)) is not None)


@dataclass(frozen=True)
class Vehicle:
    id: str
    capacity: tuple[int, ...]
    start: int
    end: int
    shift: TimeWindow
    skills: frozenset[str] = frozenset()
    fixed_cost: int = 0
    profile: str = "car"


@dataclass(frozen=True)
class TravelMatrices:
    durations: Matrix
    distances: Matrix

    def __post_init__(self) -> None:
        size = len(self.durations)
        for name, matrix in (("durations", self.durations), ("distances", self.distances)):
            if len(matrix) != size or any(len(row) != size for row in matrix):
                raise InvalidProblem(f"{name} must be a square matrix of size {size}", field=name)
            if any(value < 0 for row in matrix for value in row):
                raise InvalidProblem(f"{name} must not hold negative values", field=name)

    @property
    def size(self) -> int:
        return len(self.durations)


@dataclass(frozen=True, eq=False)
class Problem:
    jobs: tuple[Job, ...]
    vehicles: tuple[Vehicle, ...]
    matrices: Mapping[str, TravelMatrices]  # by vehicle profile
    jobs_by_id: Mapping[str, Job] = field(init=False, repr=False)
    vehicles_by_id: Mapping[str, Vehicle] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "jobs_by_id", {job.id: job for job in self.jobs})
        object.__setattr__(self, "vehicles_by_id", {vehicle.id: vehicle for vehicle in self.vehicles})
        if len(self.jobs_by_id) != len(self.jobs):
            raise InvalidProblem("job ids must be unique", field="jobs")
        if len(self.vehicles_by_id) != len(self.vehicles):
            raise InvalidProblem("vehicle ids must be unique", field="vehicles")
        dimensions = {len(job.size) for job in self.jobs} | {len(v.capacity) for v in self.vehicles}
        if len(dimensions) > 1:
            raise InvalidProblem("sizes and capacities must have the same dimensions", field="size")
        for vehicle in self.vehicles:
            matrices = self.matrices.get(vehicle.profile)
            if matrices is None:
                raise InvalidProblem(f"no matrices for profile {vehicle.profile!r}", field="profile")
            if not (0 <= vehicle.start < matrices.size and 0 <= vehicle.end < matrices.size):
                raise InvalidProblem(f"vehicle {vehicle.id}: location outside the matrix", field="start")
        size = min((m.size for m in self.matrices.values()), default=0)
        for job in self.jobs:
            for _, stop in job.stops():
                if not 0 <= stop.location < size:
                    raise InvalidProblem(f"job {job.id}: location outside the matrix", field="location")

    @property
    def dimensions(self) -> int:
        return len(self.vehicles[0].capacity) if self.vehicles else 0


@dataclass(frozen=True)
class Visit:
    job_id: str
    kind: StopKind
    arrival: int
    start: int  # service start, after any wait for the window


@dataclass(frozen=True)
class Plan:
    routes: Mapping[str, tuple[Visit, ...]]  # vehicle id -> visits in order; unused vehicles absent
    unassigned: frozenset[str] = frozenset()
    cost: int = 0  # fixed costs of the used vehicles + distance

    @property
    def vehicles_used(self) -> int:
        return sum(1 for visits in self.routes.values() if visits)


def earliest_visits(
    problem: Problem, vehicle: Vehicle, sequence: Sequence[tuple[str, StopKind]]
) -> tuple[Visit, ...]:
    """The visits of `sequence` at their earliest times: leave at the shift start, wait for each window.

    A stop reached after all its windows keeps its arrival as start: the checker reports it.
    """
    travel = problem.matrices[vehicle.profile].durations
    time, here, visits = vehicle.shift.start, vehicle.start, []
    for job_id, kind in sequence:
        stop = problem.jobs_by_id[job_id].stop(kind)
        if stop is None:
            raise InvalidProblem(f"job {job_id} has no {kind.value} stop", field="routes")
        arrival = time + travel[here][stop.location]
        start = stop.earliest_start(arrival)
        start = arrival if start is None else start
        visits.append(Visit(job_id, kind, arrival, start))
        time, here = start + stop.service, stop.location
    return tuple(visits)


def route_distance(problem: Problem, vehicle: Vehicle, visits: Sequence[Visit]) -> int:
    distances = problem.matrices[vehicle.profile].distances
    path = [vehicle.start, *(_location(problem, v) for v in visits), vehicle.end]
    return sum(distances[a][b] for a, b in pairwise(path))


def plan_cost(problem: Problem, routes: Mapping[str, Sequence[Visit]]) -> int:
    total = 0
    for vehicle_id, visits in routes.items():
        if visits:
            vehicle = problem.vehicles_by_id[vehicle_id]
            total += vehicle.fixed_cost + route_distance(problem, vehicle, visits)
    return total


def plan_from_sequences(problem: Problem, sequences: Mapping[str, Sequence[tuple[str, StopKind]]]) -> Plan:
    """A plan visiting `sequences` (vehicle id -> (job id, stop kind)) at the earliest times."""
    routes = {
        vehicle_id: earliest_visits(problem, problem.vehicles_by_id[vehicle_id], sequence)
        for vehicle_id, sequence in sequences.items()
        if sequence
    }
    served = {visit.job_id for visits in routes.values() for visit in visits}
    unassigned = frozenset(job.id for job in problem.jobs if job.id not in served)
    return Plan(routes=routes, unassigned=unassigned, cost=plan_cost(problem, routes))


def _location(problem: Problem, visit: Visit) -> int:
    stop = problem.jobs_by_id[visit.job_id].stop(visit.kind)
    if stop is None:
        raise InvalidProblem(f"job {visit.job_id} has no {visit.kind.value} stop", field="routes")
    return stop.location
