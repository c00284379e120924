"""What callers ask of dispatch jobs: from the orders events, the dispatcher, the driver and the clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict

from doorstep.dispatch.domain.job_events import FailureReason
from doorstep.dispatch.domain.proof import ProofOfDelivery, ProofRequirements
from doorstep.kernel.messages import Command


class TrackOrder(Command):
    """An orders event: the order's status now, and its stops when the event carried them."""

    tenant_id: str
    order_id: str
    status: str
    pickup: dict[str, Any] | None = None
    dropoff: dict[str, Any] | None = None
    reason: str | None = None


class AssignJob(Command):
    tenant_id: str
    job_id: str
    driver_id: str
    pin: bool | None
    actor: str


class UnassignJob(Command):
    tenant_id: str
    job_id: str
    reason: str | None
    actor: str


class OfferJob(Command):
    tenant_id: str
    job_id: str
    driver_ids: tuple[str, ...]
    expires_in_s: int
    actor: str


class SetProofRequirements(Command):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    tenant_id: str
    job_id: str
    requirements: ProofRequirements
    actor: str


class AnswerOffer(Command):
    tenant_id: str
    job_id: str
    user_id: str
    accept: bool


DriverStepName = Literal["arrive_pickup", "arrive_dropoff", "pick_up", "complete_return"]


class DriverStep(Command):
    """A step of the driver at a stop that needs nothing but who and which job."""

    tenant_id: str
    job_id: str
    user_id: str
    step: DriverStepName


class DeliverJob(Command):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    tenant_id: str
    job_id: str
    user_id: str
    proof: ProofOfDelivery


class FailJob(Command):
    tenant_id: str
    job_id: str
    user_id: str
    reason: FailureReason
    note: str | None


class ExpireOffers(Command):
    """Time out the offers due by `now`; the answer is how many jobs changed."""

    now: datetime
    limit: int = 100
