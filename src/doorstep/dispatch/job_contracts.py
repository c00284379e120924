"""The job domain's events as the published contracts; steps nobody outside needs stay unpublished."""

from __future__ import annotations

from doorstep.contracts import dispatch as published
from doorstep.dispatch.domain import job_events as domain
from doorstep.dispatch.domain.jobs import Job, JobStop, Window
from doorstep.kernel.messages import Event


def _stop(stop: JobStop) -> published.JobStopSummary:
    window: Window = stop.window
    return published.JobStopSummary(
        address=stop.address, lat=stop.lat, lon=stop.lon, window_start=window.start, window_end=window.end
    )


def contract(event: domain.JobEvent, job: Job) -> Event | None:
    """The published event for a step of `job`, or None for a step that is not published."""
    status = event.order_status
    common = {
        "job_id": event.job_id,
        "order_id": event.order_id,
        "order_status": status.value if status is not None else None,
        "occurred_at": event.at,
    }
    match event:
        case domain.JobCreated():
            return published.JobCreated(
                **common,
                pickup=_stop(job.pickup.stop),
                dropoff=_stop(job.dropoff.stop),
                size=job.size,
                skills=sorted(job.skills),
                priority=job.priority,
            )
        case domain.JobAssigned():
            return published.JobAssigned(
                **common, driver_id=event.driver_id, actor=event.actor.value, pinned=event.pinned
            )
        case domain.JobReassigned():
            return published.JobAssigned(
                **common,
                driver_id=event.driver_id,
                from_driver_id=event.from_driver_id,
                actor=event.actor.value,
                pinned=job.pinned,
            )
        case domain.JobUnassigned():
            return published.JobUnassigned(**common, driver_id=event.driver_id, actor=event.actor.value)
        case domain.JobOffered():
            return published.JobOffered(
                **common, driver_ids=list(event.driver_ids), expires_at=event.expires_at
            )
        case domain.TaskArrived():
            return published.JobArrived(**common, driver_id=event.driver_id, task=event.task.value)
        case domain.JobPickedUp():
            return published.JobPickedUp(**common, driver_id=event.driver_id)
        case domain.JobDelivered():
            proof = event.proof
            return published.JobDelivered(
                **common,
                driver_id=event.driver_id,
                photo_keys=list(proof.photo_keys),
                signature_key=proof.signature_key,
                pin_checked=job.requirements.pin is not None,
                age_checked=job.requirements.minimum_age is not None,
                cash_collected=proof.cash_collected,
            )
        case domain.JobFailed():
            return published.JobFailed(
                **common, driver_id=event.driver_id, reason=event.reason.value, note=event.note
            )
        case domain.ReturnCompleted():
            return published.JobReturnCompleted(**common, driver_id=event.driver_id)
        case domain.JobCancelled():
            return published.JobCancelled(
                **common, reason=event.reason, actor=event.actor.value, goods_on_board=event.goods_on_board
            )
        case domain.JobHandedToCourier():
            return published.JobHandedToCourier(**common, courier=event.courier, actor=event.actor.value)
    return None
