"""Request and response bodies of the jobs API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from doorstep.dispatch.domain.job_events import FailureReason
from doorstep.dispatch.domain.jobs import JobStatus, OfferStatus, Task, TaskStatus
from doorstep.dispatch.domain.proof import MAX_PHOTOS
from doorstep.dispatch.jobs_views import JobView

Key = str


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignIn(Body):
    driver_id: str = Field(min_length=1, max_length=36)
    pin: bool | None = Field(
        default=None, description="Keep automatic dispatch off this job (a dispatcher's default: yes)."
    )


class UnassignIn(Body):
    reason: str | None = Field(default=None, max_length=500)


class OfferIn(Body):
    driver_ids: list[str] = Field(min_length=1, max_length=50)
    expires_in_s: int = Field(default=60, ge=5, le=3600)


class RequirementsIn(Body):
    photo: bool = False
    signature: bool = False
    pin: str | None = Field(default=None, description="The code the recipient was given: 4 to 8 digits.")
    minimum_age: int | None = None
    cash_to_collect: int | None = Field(default=None, description="Minor units.")


class ArriveIn(Body):
    stop: Literal["pickup", "dropoff"]


class AgeCheckIn(Body):
    birth_year: int | None = None
    verified_by_id: bool = False


class DeliverIn(Body):
    photo_keys: list[Key] = Field(default_factory=list, max_length=MAX_PHOTOS)
    signature_key: Key | None = Field(default=None, max_length=300)
    pin: str | None = Field(default=None, max_length=8)
    age_check: AgeCheckIn | None = None
    cash_collected: int | None = Field(default=None, ge=0)


class FailIn(Body):
    reason: FailureReason
    note: str | None = Field(default=None, max_length=500)


class TaskOut(BaseModel):
    address: str
    lat: float
    lon: float
    window_start: datetime | None
    window_end: datetime | None
    status: TaskStatus
    arrived_at: datetime | None
    done_at: datetime | None

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        stop = task.stop
        return cls(
            address=stop.address,
            lat=stop.lat,
            lon=stop.lon,
            window_start=stop.window.start,
            window_end=stop.window.end,
            status=task.status,
            arrived_at=task.arrived_at,
            done_at=task.done_at,
        )


class RequirementsOut(BaseModel):
    photo: bool
    signature: bool
    pin: bool = Field(description="Whether a PIN is asked; its value is never shown.")
    minimum_age: int | None
    cash_to_collect: int | None


class OfferOut(BaseModel):
    driver_id: str
    status: OfferStatus
    offered_at: datetime
    expires_at: datetime
    answered_at: datetime | None


class HistoryOut(BaseModel):
    from_status: JobStatus | None
    to_status: JobStatus
    actor: str
    at: datetime
    reason: str | None


class ProofOut(BaseModel):
    photo_keys: list[str]
    signature_key: str | None
    pin_ok: bool
    age_checked: bool
    cash_collected: int | None


class JobOut(BaseModel):
    id: str
    order_id: str
    status: JobStatus
    driver_id: str | None
    pinned: bool
    size: int
    skills: list[str]
    priority: int
    pickup: TaskOut
    dropoff: TaskOut
    return_task: TaskOut | None
    requirements: RequirementsOut
    offers: list[OfferOut]
    history: list[HistoryOut]
    proof: ProofOut | None
    failure: FailureReason | None
    courier: str | None
    created_at: datetime

    @classmethod
    def of(cls, view: JobView) -> JobOut:
        job, proof, req = view.job, view.proof, view.job.requirements
        return cls(
            id=job.id,
            order_id=job.order_id,
            status=job.status,
            driver_id=job.driver_id,
            pinned=job.pinned,
            size=job.size,
            skills=sorted(job.skills),
            priority=job.priority,
            pickup=TaskOut.of(job.pickup),
            dropoff=TaskOut.of(job.dropoff),
            return_task=TaskOut.of(job.return_task) if job.return_task is not None else None,
            requirements=RequirementsOut(
                photo=req.photo,
                signature=req.signature,
                pin=req.pin is not None,
                minimum_age=req.minimum_age,
                cash_to_collect=req.cash_to_collect,
            ),
            offers=[
                OfferOut(
                    driver_id=o.driver_id,
                    status=o.status,
                    offered_at=o.offered_at,
                    expires_at=o.expires_at,
                    answered_at=o.answered_at,
                )
                for o in job.offers
            ],
            history=[
                HistoryOut(
                    from_status=h.from_status,
                    to_status=h.to_status,
                    actor=h.actor.value,
                    at=h.at,
                    reason=h.reason,
                )
                for h in job.history
            ],
            proof=(
                ProofOut(
                    photo_keys=list(proof.photo_keys),
                    signature_key=proof.signature_key,
                    pin_ok=proof.pin_ok,
                    age_checked=proof.age_check is not None,
                    cash_collected=proof.cash_collected,
                )
                if proof is not None
                else None
            ),
            failure=job.failure,
            courier=job.courier,
            created_at=job.created_at,
        )
