"""The courier port: what Doorstep asks of a third-party delivery network, in Doorstep's terms."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from doorstep.contracts.orders import GeoPoint, Name, OrderDraft, Phone, Stop, Text


class CourierStatus(StrEnum):
    """A delivery's status in Doorstep's terms, whichever network carries it."""

    REQUESTED = "requested"
    ASSIGNED = "assigned"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    FAILED = "failed"
    RETURNED = "returned"


class Schema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CourierStop(Schema):
    name: Name
    address: Text
    location: GeoPoint | None = None
    phone: Phone | None = None
    instructions: str | None = Field(default=None, max_length=500)
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None

    @classmethod
    def of(cls, stop: Stop, *, instructions: str | None = None) -> CourierStop:
        window = stop.window
        return cls(
            name=stop.name,
            address=stop.address,
            location=stop.location,
            phone=stop.phone,
            instructions=instructions,
            window_start=window.start if window else None,
            window_end=window.end if window else None,
        )


class CourierItem(Schema):
    name: Name
    quantity: int = Field(ge=1, le=100_000)
    unit_price: int = Field(ge=0, le=10**12)


class CourierRequest(Schema):
    """One pickup and one drop-off, what is carried and what it is worth (minor units).

    `external_id` is the id the network knows the delivery by; Doorstep sets it when it asks."""

    external_id: str = Field(default="", max_length=200)
    pickup: CourierStop
    dropoff: CourierStop
    items: list[CourierItem] = Field(min_length=1, max_length=500)
    order_value: int = Field(ge=0, le=10**13)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    tip: int = Field(default=0, ge=0, le=10**12)

    @classmethod
    def of_order(cls, draft: OrderDraft, *, external_id: str) -> CourierRequest:
        """The request for an order as Doorstep holds it; the order's notes go to the drop-off."""
        return cls(
            external_id=external_id,
            pickup=CourierStop.of(draft.pickup),
            dropoff=CourierStop.of(draft.dropoff, instructions=draft.notes[:500] if draft.notes else None),
            items=[
                CourierItem(name=i.name, quantity=i.quantity, unit_price=i.unit_price) for i in draft.items
            ],
            order_value=sum(i.quantity * i.unit_price for i in draft.items),
            currency=draft.currency,
            tip=draft.tip,
        )


class CourierQuote(Schema):
    provider_quote_id: str
    fee: int
    currency: str
    pickup_eta: datetime | None
    dropoff_eta: datetime | None
    expires_at: datetime | None


class CourierInfo(Schema):
    name: str | None = None
    phone: str | None = None
    location: GeoPoint | None = None


class CourierDelivery(Schema):
    """A delivery as the network reports it (answering create or status)."""

    provider_delivery_id: str
    status: CourierStatus
    tracking_url: str | None = None
    fee: int | None = None
    currency: str | None = None
    courier: CourierInfo | None = None
    proof_of_delivery: tuple[str, ...] = ()


class CourierUpdate(Schema):
    """A status webhook, verified and mapped. `event_key` identifies redeliveries of the same webhook."""

    event_key: str
    provider_delivery_id: str
    provider_status: str
    status: CourierStatus | None  # None: an event Doorstep does not track (kept, changes nothing)
    occurred_at: datetime
    tracking_url: str | None = None
    courier: CourierInfo | None = None
    proof_of_delivery: tuple[str, ...] = ()
    reason: str | None = None


class CourierProblem(Exception):
    """The network refused or failed a call; `detail` says why in words a dispatcher can act on."""

    def __init__(self, detail: str, *, provider_status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.provider_status = provider_status


class CourierRejected(CourierProblem):
    """The network answered that the request is wrong or impossible (a 4xx): asking again will not help."""


class CourierUnavailable(CourierProblem):
    """The network did not answer usefully (timeout, 5xx, not JSON): asking later may succeed."""


class WebhookNotAuthentic(Exception):
    """The webhook's signature or credential is missing or wrong."""


class WebhookUnreadable(Exception):
    """An authentic webhook whose body is not what the network documents."""


class CourierPort(Protocol):
    async def quote(self, request: CourierRequest) -> CourierQuote: ...

    async def create(self, request: CourierRequest, quote_id: str | None = None) -> CourierDelivery: ...

    async def cancel(self, delivery_id: str) -> CourierDelivery: ...

    async def status(self, delivery_id: str) -> CourierDelivery: ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> CourierUpdate: ...
