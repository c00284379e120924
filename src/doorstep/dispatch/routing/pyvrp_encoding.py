"""The routing model as PyVRP data: one PyVRP location per depot and per stop, one vehicle type per kind.

A stop gets a location of its own even when it shares a place with another, so that a profile can make
one job's stops unreachable for vehicles without its skills (PyVRP has no skills of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvrp

from doorstep.dispatch.routing.model import Job, JobKind, Problem, Stop, Vehicle

UNBOUNDED = int(np.iinfo(np.int64).max)


@dataclass(frozen=True)
class Encoding:
    data: pyvrp.ProblemData
    fleets: tuple[tuple[Vehicle, ...], ...]  # per PyVRP vehicle type: its vehicles
    shipments: tuple[str, ...]  # PyVRP shipment index -> job id
    clients: tuple[str, ...]  # PyVRP client index -> job id


@dataclass(frozen=True)
class _Kind:
    """What makes vehicles interchangeable for PyVRP: everything but the id."""

    capacity: tuple[int, ...]
    start: int
    end: int
    shift_start: int
    shift_end: int
    skills: frozenset[str]
    fixed_cost: int
    profile: str


def encode(problem: Problem, *, relaxed: bool) -> Encoding:
    """`relaxed` makes required jobs optional with a prize above any route's cost."""
    depots = sorted({v.start for v in problem.vehicles} | {v.end for v in problem.vehicles})
    sites: list[int] = list(depots)  # PyVRP location -> the problem's location
    site_jobs: list[Job | None] = [None] * len(depots)
    shipments: list[pyvrp.Shipment] = []
    clients: list[pyvrp.Client] = []
    shipment_jobs: list[str] = []
    client_jobs: list[str] = []
    big_prize = _big_prize(problem)
    for job in problem.jobs:
        required = job.required and not relaxed
        prize = job.prize if job.prize is not None else (big_prize if relaxed else 0)
        if job.pickup is not None and job.delivery is not None:
            shipments.append(
                pyvrp.Shipment(
                    len(sites),
                    len(sites) + 1,
                    *_window(job.pickup),
                    job.pickup.service,
                    *_window(job.delivery),
                    job.delivery.service,
                    amount=list(job.size),
                    prize=prize,
                    required=required,
                    name=job.id,
                )
            )
            sites += [job.pickup.location, job.delivery.location]
            site_jobs += [job, job]
            shipment_jobs.append(job.id)
        else:
            ((_, stop),) = job.stops()
            early, late = _window(stop)
            amount = list(job.size)
            clients.append(
                pyvrp.Client(
                    len(sites),
                    delivery=amount if job.kind is JobKind.DELIVERY else [],
                    pickup=amount if job.kind is JobKind.PICKUP else [],
                    service_duration=stop.service,
                    tw_early=early,
                    tw_late=late,
                    prize=prize,
                    required=required,
                    name=job.id,
                )
            )
            sites.append(stop.location)
            site_jobs.append(job)
            client_jobs.append(job.id)
    fleets, types, distances, durations = _fleet(problem, sites, site_jobs, depots)
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(0.0, 0.0, name=str(location)) for location in sites],
        clients=clients,
        depots=[pyvrp.Depot(site) for site in range(len(depots))],
        vehicle_types=types,
        distance_matrices=distances,
        duration_matrices=durations,
        groups=[],
        shipments=shipments,
    )
    return Encoding(data, fleets, tuple(shipment_jobs), tuple(client_jobs))


def _window(stop: Stop) -> tuple[int, int]:
    if not stop.windows:
        return 0, UNBOUNDED
    return stop.windows[0].start, stop.windows[0].end


def _big_prize(problem: Problem) -> int:
    longest = max((max(map(max, m.distances), default=0) for m in problem.matrices.values()), default=0)
    fixed = max((v.fixed_cost for v in problem.vehicles), default=0)
    return (longest + 1) * 2 + fixed + 1


def _kind(vehicle: Vehicle) -> _Kind:
    return _Kind(
        vehicle.capacity,
        vehicle.start,
        vehicle.end,
        vehicle.shift.start,
        vehicle.shift.end,
        vehicle.skills,
        vehicle.fixed_cost,
        vehicle.profile,
    )


def _fleet(
    problem: Problem, sites: list[int], site_jobs: list[Job | None], depots: list[int]
) -> tuple[tuple[tuple[Vehicle, ...], ...], list[pyvrp.VehicleType], list[Any], list[Any]]:
    fleets: dict[_Kind, list[Vehicle]] = {}
    for vehicle in problem.vehicles:
        fleets.setdefault(_kind(vehicle), []).append(vehicle)
    profiles: dict[tuple[str, tuple[int, ...]], int] = {}  # (profile, blocked sites) -> PyVRP profile
    distances: list[Any] = []
    durations: list[Any] = []
    types: list[pyvrp.VehicleType] = []
    index = np.array(sites)
    for kind, vehicles in fleets.items():
        blocked = [s for s, job in enumerate(site_jobs) if job is not None and not job.skills <= kind.skills]
        profile = (kind.profile, tuple(blocked))
        if profile not in profiles:
            matrices = problem.matrices[kind.profile]
            distance = np.array(matrices.distances, dtype=np.int64)[np.ix_(index, index)]
            duration = np.array(matrices.durations, dtype=np.int64)[np.ix_(index, index)]
            if blocked:
                # Longer than any route without it, so a vehicle over its max distance is the only way there.
                unreachable = int(distance.max(initial=0)) * (len(sites) + 1) + 1
                distance[blocked, :] = unreachable
                distance[:, blocked] = unreachable
                np.fill_diagonal(distance, 0)
            profiles[profile] = len(distances)
            distances.append(distance)
            durations.append(duration)
        types.append(
            pyvrp.VehicleType(
                num_available=len(vehicles),
                capacity=list(kind.capacity),
                start_depot=depots.index(kind.start),
                end_depot=depots.index(kind.end),
                fixed_cost=kind.fixed_cost,
                tw_early=kind.shift_start,
                tw_late=kind.shift_end,
                max_distance=int(distances[profiles[profile]].max()) - 1 if blocked else UNBOUNDED,
                profile=profiles[profile],
                name=vehicles[0].id,
            )
        )
    return tuple(tuple(v) for v in fleets.values()), types, distances, durations
