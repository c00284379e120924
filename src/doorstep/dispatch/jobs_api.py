"""Dispatch HTTP API for jobs: the dispatcher's queue and moves, the driver's own jobs and their steps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from doorstep.dispatch import jobs_views
from doorstep.dispatch.domain.job_commands import (
    AnswerOffer,
    AssignJob,
    DeliverJob,
    DriverStep,
    FailJob,
    OfferJob,
    SetProofRequirements,
    UnassignJob,
)
from doorstep.dispatch.domain.jobs import JobStatus
from doorstep.dispatch.domain.proof import AgeCheck, ProofOfDelivery, ProofRequirements
from doorstep.dispatch.jobs_handlers import JobNotFound
from doorstep.dispatch.jobs_schemas import (
    ArriveIn,
    AssignIn,
    DeliverIn,
    FailIn,
    JobOut,
    OfferIn,
    RequirementsIn,
    UnassignIn,
)
from doorstep.dispatch.service import DispatchService, dispatch_service
from doorstep.kernel.auth import Principal, Requires
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.messages import Command
from doorstep.kernel.pagination import Page

router = APIRouter(prefix="/v1/dispatch", tags=["dispatch jobs"])

Dispatch = Annotated[DispatchService, Depends(dispatch_service)]
Reads = Annotated[Principal, Depends(Requires("dispatch.read"))]
Assigns = Annotated[Principal, Depends(Requires("dispatch.assign"))]
Executes = Annotated[Principal, Depends(Requires("dispatch.execute"))]


async def _job(service: DispatchService, tenant_id: str, job_id: str) -> JobOut:
    view = await jobs_views.get_job(service.database, tenant_id=tenant_id, job_id=job_id)
    if view is None:
        raise JobNotFound(job_id)
    return JobOut.of(view)


async def _do(service: DispatchService, principal: Principal, job_id: str, command: Command) -> JobOut:
    await service.bus.handle(command)
    return await _job(service, principal.tenant_id, job_id)


@router.get("/jobs", summary="The tenant's jobs, newest first")
async def list_jobs(
    principal: Reads,
    service: Dispatch,
    status: JobStatus | None = None,
    driver_id: Annotated[str | None, Query(max_length=36)] = None,
    order_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[JobOut]:
    found, next_cursor = await jobs_views.list_jobs(
        service.database,
        tenant_id=principal.tenant_id,
        status=status,
        driver_id=driver_id,
        order_id=order_id,
        limit=limit,
        cursor=cursor,
    )
    return Page[JobOut](items=[JobOut.of(view) for view in found], next_cursor=next_cursor)


@router.get("/drivers/me/jobs", summary="The caller's jobs as a driver: assigned ones and open offers")
async def my_jobs(
    principal: Executes,
    service: Dispatch,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[JobOut]:
    me = await _me(service, principal)
    found, next_cursor = await jobs_views.list_jobs(
        service.database, tenant_id=principal.tenant_id, driver_id=me, limit=limit, cursor=cursor
    )
    return Page[JobOut](items=[JobOut.of(view) for view in found], next_cursor=next_cursor)


@router.get("/jobs/{job_id}", summary="One job with its tasks, offers, status history and proof")
async def get_job(job_id: str, principal: Reads, service: Dispatch) -> JobOut:
    return await _job(service, principal.tenant_id, job_id)


@router.post("/jobs/{job_id}/assign", summary="Give the job to a driver, or move it to another")
async def assign_job(job_id: str, body: AssignIn, principal: Assigns, service: Dispatch) -> JobOut:
    command = AssignJob(
        tenant_id=principal.tenant_id,
        job_id=job_id,
        driver_id=body.driver_id,
        pin=body.pin,
        actor=principal.actor,
    )
    return await _do(service, principal, job_id, command)


@router.post("/jobs/{job_id}/unassign", summary="Take the job from its driver before pickup")
async def unassign_job(job_id: str, body: UnassignIn, principal: Assigns, service: Dispatch) -> JobOut:
    command = UnassignJob(
        tenant_id=principal.tenant_id, job_id=job_id, reason=body.reason, actor=principal.actor
    )
    return await _do(service, principal, job_id, command)


@router.post("/jobs/{job_id}/offer", summary="Offer the job to drivers: the first to accept takes it")
async def offer_job(job_id: str, body: OfferIn, principal: Assigns, service: Dispatch) -> JobOut:
    command = OfferJob(
        tenant_id=principal.tenant_id,
        job_id=job_id,
        driver_ids=tuple(body.driver_ids),
        expires_in_s=body.expires_in_s,
        actor=principal.actor,
    )
    return await _do(service, principal, job_id, command)


@router.put("/jobs/{job_id}/requirements", summary="What the door must yield: photo, signature, PIN, age")
async def set_requirements(
    job_id: str, body: RequirementsIn, principal: Assigns, service: Dispatch
) -> JobOut:
    requirements = ProofRequirements(**body.model_dump())
    command = SetProofRequirements(
        tenant_id=principal.tenant_id, job_id=job_id, requirements=requirements, actor=principal.actor
    )
    return await _do(service, principal, job_id, command)


@router.post("/jobs/{job_id}/offer/accept", summary="Take a job offered to the caller")
async def accept_offer(job_id: str, principal: Executes, service: Dispatch) -> JobOut:
    command = AnswerOffer(
        tenant_id=principal.tenant_id, job_id=job_id, user_id=principal.subject, accept=True
    )
    return await _do(service, principal, job_id, command)


@router.post("/jobs/{job_id}/offer/decline", summary="Say no to a job offered to the caller")
async def decline_offer(job_id: str, principal: Executes, service: Dispatch) -> JobOut:
    command = AnswerOffer(
        tenant_id=principal.tenant_id, job_id=job_id, user_id=principal.subject, accept=False
    )
    return await _do(service, principal, job_id, command)


@router.post("/jobs/{job_id}/arrive", summary="The caller arrived at the pickup or the drop-off")
async def arrive(job_id: str, body: ArriveIn, principal: Executes, service: Dispatch) -> JobOut:
    step = "arrive_pickup" if body.stop == "pickup" else "arrive_dropoff"
    command = DriverStep(tenant_id=principal.tenant_id, job_id=job_id, user_id=principal.subject, step=step)
    return await _do(service, principal, job_id, command)


@router.post("/jobs/{job_id}/pick-up", summary="The caller has the goods on board")
async def pick_up(job_id: str, principal: Executes, service: Dispatch) -> JobOut:
    command = DriverStep(
        tenant_id=principal.tenant_id, job_id=job_id, user_id=principal.subject, step="pick_up"
    )
    return await _do(service, principal, job_id, command)


@router.post(
    "/jobs/{job_id}/deliver",
    summary="Hand the goods over, with the proof the job asks for",
    description="Photos and a signature are uploaded first; their keys come here.",
)
async def deliver(job_id: str, body: DeliverIn, principal: Executes, service: Dispatch) -> JobOut:
    # Only files uploaded to this tenant (`POST /v1/dispatch/files`) can prove a delivery.
    own = f"{principal.tenant_id}/"
    for index, key in enumerate(body.photo_keys):
        if not key.startswith(own):
            raise InvalidInput(
                "not a file uploaded with POST /v1/dispatch/files", field=f"photo_keys.{index}"
            )
    if body.signature_key is not None and not body.signature_key.startswith(own):
        raise InvalidInput("not a file uploaded with POST /v1/dispatch/files", field="signature_key")
    age = body.age_check
    proof = ProofOfDelivery(
        photo_keys=tuple(body.photo_keys),
        signature_key=body.signature_key,
        pin=body.pin,
        age_check=AgeCheck(age.birth_year, age.verified_by_id) if age is not None else None,
        cash_collected=body.cash_collected,
    )
    command = DeliverJob(tenant_id=principal.tenant_id, job_id=job_id, user_id=principal.subject, proof=proof)
    return await _do(service, principal, job_id, command)


@router.post("/jobs/{job_id}/fail", summary="The drop-off failed: the goods go back to the pickup")
async def fail(job_id: str, body: FailIn, principal: Executes, service: Dispatch) -> JobOut:
    command = FailJob(
        tenant_id=principal.tenant_id,
        job_id=job_id,
        user_id=principal.subject,
        reason=body.reason,
        note=body.note,
    )
    return await _do(service, principal, job_id, command)


@router.post("/jobs/{job_id}/return/complete", summary="The goods of a failed job are back at the pickup")
async def complete_return(job_id: str, principal: Executes, service: Dispatch) -> JobOut:
    command = DriverStep(
        tenant_id=principal.tenant_id, job_id=job_id, user_id=principal.subject, step="complete_return"
    )
    return await _do(service, principal, job_id, command)


async def _me(service: DispatchService, principal: Principal) -> str:
    return await jobs_views.driver_id_of_user(
        service.database, tenant_id=principal.tenant_id, user_id=principal.subject
    )
