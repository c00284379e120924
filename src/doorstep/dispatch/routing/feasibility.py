"""An independent feasibility check of a plan: it trusts nothing a solver says, only the problem."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from doorstep.dispatch.routing.model import Job, JobKind, Plan, Problem, StopKind, Vehicle, Visit, plan_cost


class ViolationKind(StrEnum):
    UNKNOWN_VEHICLE = "unknown_vehicle"
    UNKNOWN_JOB = "unknown_job"
    UNKNOWN_STOP = "unknown_stop"  # e.g. the pickup of a delivery-only job
    DUPLICATE = "duplicate"  # a stop visited twice, or a job both routed and unassigned
    MISSING = "missing"  # a job neither routed nor unassigned
    UNSERVED = "unserved"  # a required job left unassigned
    INCOMPLETE = "incomplete"  # a shipment with only one of its two stops on routes
    SPLIT = "split"  # a shipment's pickup and delivery on different vehicles
    ORDER = "order"  # a delivery before its pickup
    SCHEDULE = "schedule"  # stated times that cannot be: earlier than travel allows, start before arrival
    TIME_WINDOW = "time_window"
    CAPACITY = "capacity"
    SHIFT = "shift"  # back at the end location after the shift ends
    SKILLS = "skills"


@dataclass(frozen=True)
class Violation:
    kind: ViolationKind
    detail: str
    vehicle_id: str | None = None
    job_id: str | None = None


def check(problem: Problem, plan: Plan) -> list[Violation]:
    """Every rule a plan must keep, as the list of the ones it breaks (empty: feasible)."""
    violations = _coverage(problem, plan)
    for vehicle_id, visits in plan.routes.items():
        vehicle = problem.vehicles_by_id.get(vehicle_id)
        if vehicle is None:
            violations.append(
                Violation(ViolationKind.UNKNOWN_VEHICLE, f"no vehicle {vehicle_id}", vehicle_id=vehicle_id)
            )
            continue
        known = [v for v in visits if _stop_exists(problem, v)]
        violations += _skills(problem, vehicle, known)
        violations += _times(problem, vehicle, known)
        violations += _loads(problem, vehicle, known)
    return violations


def keep_feasible_routes(problem: Problem, plan: Plan) -> Plan:
    """`plan` without the routes the check faults; their jobs become unassigned. A last guard on a solver."""
    faulty = {v.vehicle_id for v in check(problem, plan) if v.vehicle_id is not None}
    if not faulty:
        return plan
    routes = {vid: visits for vid, visits in plan.routes.items() if vid not in faulty}
    dropped = {visit.job_id for vid in faulty for visit in plan.routes.get(vid, ())}
    return Plan(routes, plan.unassigned | dropped, plan_cost(problem, routes))


def _stop_exists(problem: Problem, visit: Visit) -> bool:
    job = problem.jobs_by_id.get(visit.job_id)
    return job is not None and job.stop(visit.kind) is not None


def _coverage(problem: Problem, plan: Plan) -> list[Violation]:
    out: list[Violation] = []
    where: dict[tuple[str, StopKind], tuple[str, int]] = {}
    for vehicle_id, visits in plan.routes.items():
        for position, visit in enumerate(visits):
            job = problem.jobs_by_id.get(visit.job_id)
            if job is None:
                out.append(
                    Violation(ViolationKind.UNKNOWN_JOB, f"no job {visit.job_id}", vehicle_id, visit.job_id)
                )
            elif job.stop(visit.kind) is None:
                out.append(
                    Violation(
                        ViolationKind.UNKNOWN_STOP,
                        f"job {job.id} has no {visit.kind.value} stop",
                        vehicle_id,
                        job.id,
                    )
                )
            elif (visit.job_id, visit.kind) in where:
                out.append(
                    Violation(
                        ViolationKind.DUPLICATE,
                        f"the {visit.kind.value} of job {job.id} is visited twice",
                        vehicle_id,
                        job.id,
                    )
                )
            else:
                where[visit.job_id, visit.kind] = (vehicle_id, position)
    routed = {job_id for job_id, _ in where}
    for job_id in sorted(plan.unassigned):
        if job_id not in problem.jobs_by_id:
            out.append(
                Violation(ViolationKind.UNKNOWN_JOB, f"no job {job_id} to leave unassigned", job_id=job_id)
            )
        elif job_id in routed:
            out.append(
                Violation(ViolationKind.DUPLICATE, f"job {job_id} is routed and unassigned", job_id=job_id)
            )
        elif problem.jobs_by_id[job_id].required:
            out.append(
                Violation(ViolationKind.UNSERVED, f"required job {job_id} is unassigned", job_id=job_id)
            )
    for job in problem.jobs:
        out += _job_coverage(job, where, routed, plan.unassigned)
    return out


def _job_coverage(
    job: Job,
    where: dict[tuple[str, StopKind], tuple[str, int]],
    routed: set[str],
    unassigned: frozenset[str],
) -> list[Violation]:
    if job.id not in routed:
        if job.id in unassigned:
            return []
        return [
            Violation(ViolationKind.MISSING, f"job {job.id} is neither routed nor unassigned", job_id=job.id)
        ]
    if job.kind is not JobKind.SHIPMENT:
        return []
    pickup, delivery = where.get((job.id, StopKind.PICKUP)), where.get((job.id, StopKind.DELIVERY))
    if pickup is None or delivery is None:
        missing = StopKind.PICKUP if pickup is None else StopKind.DELIVERY
        return [
            Violation(ViolationKind.INCOMPLETE, f"shipment {job.id} lacks its {missing.value}", job_id=job.id)
        ]
    if pickup[0] != delivery[0]:
        detail = f"shipment {job.id} is picked up by {pickup[0]} and delivered by {delivery[0]}"
        return [Violation(ViolationKind.SPLIT, detail, job_id=job.id)]
    if delivery[1] < pickup[1]:
        return [
            Violation(
                ViolationKind.ORDER, f"shipment {job.id} is delivered before its pickup", pickup[0], job.id
            )
        ]
    return []


def _skills(problem: Problem, vehicle: Vehicle, visits: list[Visit]) -> list[Violation]:
    out: list[Violation] = []
    for job_id in dict.fromkeys(v.job_id for v in visits):
        lacking = problem.jobs_by_id[job_id].skills - vehicle.skills
        if lacking:
            detail = f"vehicle {vehicle.id} lacks {', '.join(sorted(lacking))} for job {job_id}"
            out.append(Violation(ViolationKind.SKILLS, detail, vehicle.id, job_id))
    return out


def _times(problem: Problem, vehicle: Vehicle, visits: list[Visit]) -> list[Violation]:
    out: list[Violation] = []
    travel = problem.matrices[vehicle.profile].durations
    ready, here = vehicle.shift.start, vehicle.start
    for visit in visits:
        stop = problem.jobs_by_id[visit.job_id].stop(visit.kind)
        assert stop is not None  # filtered by the caller
        earliest = ready + travel[here][stop.location]
        what = f"the {visit.kind.value} of job {visit.job_id}"
        if visit.arrival < earliest:
            detail = f"{what}: arrival {visit.arrival} is before the earliest possible {earliest}"
            out.append(Violation(ViolationKind.SCHEDULE, detail, vehicle.id, visit.job_id))
        if visit.start < max(visit.arrival, earliest):
            detail = f"{what}: service starts at {visit.start}, before the vehicle can be there"
            out.append(Violation(ViolationKind.SCHEDULE, detail, vehicle.id, visit.job_id))
        if not stop.accepts(visit.start):
            detail = f"{what}: service starts at {visit.start}, outside its time windows"
            out.append(Violation(ViolationKind.TIME_WINDOW, detail, vehicle.id, visit.job_id))
        ready, here = max(visit.start, earliest) + stop.service, stop.location
    back = ready + travel[here][vehicle.end]
    if back > vehicle.shift.end:
        detail = f"vehicle {vehicle.id} is back at {back}, after its shift ends at {vehicle.shift.end}"
        out.append(Violation(ViolationKind.SHIFT, detail, vehicle.id))
    return out


def _loads(problem: Problem, vehicle: Vehicle, visits: list[Visit]) -> list[Violation]:
    out: list[Violation] = []
    jobs = [problem.jobs_by_id[v.job_id] for v in visits]
    load = [0] * len(vehicle.capacity)
    for job in dict.fromkeys(j for j in jobs if j.kind is JobKind.DELIVERY):
        load = [a + b for a, b in zip(load, job.size, strict=True)]
    points = [("the start", load)]
    for visit, job in zip(visits, jobs, strict=True):
        sign = -1 if visit.kind is StopKind.DELIVERY else 1
        load = [a + sign * b for a, b in zip(load, job.size, strict=True)]
        points.append((f"the {visit.kind.value} of job {job.id}", load))
    for where, amounts in points:
        if any(a > c for a, c in zip(amounts, vehicle.capacity, strict=True)):
            detail = (
                f"vehicle {vehicle.id} carries {list(amounts)} after {where}, over {list(vehicle.capacity)}"
            )
            out.append(Violation(ViolationKind.CAPACITY, detail, vehicle.id))
    return out
