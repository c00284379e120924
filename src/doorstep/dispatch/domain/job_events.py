"""The events of a job's life, as plain values each transition returns, and the words they use.

`order_status` on each event is the status the step moves the order to (the orders service's lifecycle),
or None when the order's status stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from doorstep.contracts.orders import OrderStatus
from doorstep.dispatch.domain.proof import ProofOfDelivery


class TaskKind(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"
    RETURN = "return"  # back to the pickup after a failed or cancelled delivery


class FailureReason(StrEnum):
    CUSTOMER_ABSENT = "customer_absent"
    ADDRESS_NOT_FOUND = "address_not_found"
    REFUSED = "refused"
    DAMAGED = "damaged"
    AGE_CHECK_FAILED = "age_check_failed"
    OTHER = "other"


class Actor(StrEnum):
    """Who moves a job: automatic dispatch may not undo what a dispatcher pinned."""

    DISPATCHER = "dispatcher"
    AUTOMATIC = "automatic"
    DRIVER = "driver"


@dataclass(frozen=True, kw_only=True)
class JobEvent:
    implies: ClassVar[OrderStatus | None] = None
    job_id: str
    order_id: str
    tenant_id: str
    at: datetime

    @property
    def order_status(self) -> OrderStatus | None:
        return self.implies


@dataclass(frozen=True, kw_only=True)
class JobCreated(JobEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class JobOffered(JobEvent):
    driver_ids: tuple[str, ...]
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class OfferAccepted(JobEvent):
    driver_id: str


@dataclass(frozen=True, kw_only=True)
class OfferDeclined(JobEvent):
    driver_id: str
    back_in_queue: bool  # no open offer is left: the job is unassigned again


@dataclass(frozen=True, kw_only=True)
class OfferExpired(JobEvent):
    driver_id: str
    back_in_queue: bool


@dataclass(frozen=True, kw_only=True)
class OfferWithdrawn(JobEvent):
    driver_id: str


@dataclass(frozen=True, kw_only=True)
class JobAssigned(JobEvent):
    driver_id: str
    actor: Actor
    pinned: bool


@dataclass(frozen=True, kw_only=True)
class JobUnassigned(JobEvent):
    driver_id: str
    actor: Actor


@dataclass(frozen=True, kw_only=True)
class JobReassigned(JobEvent):
    from_driver_id: str
    driver_id: str
    actor: Actor
    handover_note: str | None  # set when the goods were already on board


@dataclass(frozen=True, kw_only=True)
class JobPinChanged(JobEvent):
    pinned: bool


@dataclass(frozen=True, kw_only=True)
class StopsReordered(JobEvent):
    driver_id: str
    positions: tuple[tuple[TaskKind, int], ...]  # this job's stops and their places in the route


@dataclass(frozen=True, kw_only=True)
class TaskArrived(JobEvent):
    task: TaskKind
    driver_id: str


@dataclass(frozen=True, kw_only=True)
class JobPickedUp(JobEvent):
    implies = OrderStatus.PICKED_UP
    driver_id: str


@dataclass(frozen=True, kw_only=True)
class JobDelivered(JobEvent):
    implies = OrderStatus.DELIVERED
    driver_id: str
    proof: ProofOfDelivery


@dataclass(frozen=True, kw_only=True)
class JobFailed(JobEvent):
    implies = OrderStatus.FAILED_DELIVERY
    driver_id: str
    reason: FailureReason
    note: str | None


@dataclass(frozen=True, kw_only=True)
class ReturnStarted(JobEvent):
    driver_id: str


@dataclass(frozen=True, kw_only=True)
class ReturnCompleted(JobEvent):
    implies = OrderStatus.RETURNED
    driver_id: str


@dataclass(frozen=True, kw_only=True)
class JobCancelled(JobEvent):
    reason: str | None
    actor: Actor
    goods_on_board: bool  # then the goods go back to the pickup: the job is returning

    @property
    def order_status(self) -> OrderStatus | None:
        # The orders lifecycle has no move from picked_up to cancelled: goods already on their way fail
        # the delivery and come back (failed_delivery, then returned).
        return OrderStatus.FAILED_DELIVERY if self.goods_on_board else OrderStatus.CANCELLED


@dataclass(frozen=True, kw_only=True)
class JobHandedToCourier(JobEvent):
    courier: str
    actor: Actor
