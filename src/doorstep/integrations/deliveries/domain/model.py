"""Quotes and deliveries: what a partner was offered, and what it accepted, followed by its order's status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from doorstep.contracts.orders import (
    Customer,
    GeoPoint,
    Item,
    OrderDraft,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Stop,
    TimeWindow,
)
from doorstep.integrations.deliveries.domain.errors import DeliveryNotCancellable, InvalidDeliveryRequest
from doorstep.integrations.deliveries.domain.geo import great_circle_km
from doorstep.integrations.deliveries.domain.rate_card import FeeLine, RateCard, Size, price

QUOTE_VALIDITY = timedelta(minutes=15)
# A pickup time a little in the past is a clock apart, not a request for yesterday.
PICKUP_TIME_TOLERANCE = timedelta(minutes=5)
# How orders created through the delivery API are sourced (and linked back to their delivery).
SOURCE = "delivery_api"
# Until the orders service has said anything about the delivery's order.
REQUESTED = "requested"
# Before pick-up the order can still be cancelled (the orders service's own rule; it decides in the end).
CANCELLABLE = frozenset(
    {
        REQUESTED,
        OrderStatus.NEEDS_ATTENTION.value,
        OrderStatus.PLACED.value,
        OrderStatus.ACCEPTED.value,
        OrderStatus.PREPARING.value,
        OrderStatus.READY_FOR_PICKUP.value,
    }
)
# The platform versions of the two changes a delivery makes to its order: the placement, the cancellation.
PLACED_VERSION = 1
CANCELLED_VERSION = 2


@dataclass(frozen=True, slots=True)
class Travel:
    """How far and how long, until dispatch gives real ETAs: great-circle times a road factor at a set speed."""

    speed_kmh: float
    road_factor: float
    handling_minutes: float

    def distance_m(self, a: GeoPoint, b: GeoPoint) -> int:
        return round(great_circle_km(a.lat, a.lon, b.lat, b.lon) * self.road_factor * 1000)

    def duration_s(self, distance_m: int) -> int:
        return round(distance_m / 1000 / self.speed_kmh * 3600 + self.handling_minutes * 60)


@dataclass
class Quote:
    id: str
    tenant_id: str
    external_delivery_id: str
    created_by: str
    pickup: Stop
    dropoff: Stop
    size: Size
    customer: Customer
    items: list[Item]
    notes: str | None
    pickup_time: datetime
    dropoff_deadline: datetime | None
    distance_m: int
    duration_s: int
    currency: str
    lines: list[FeeLine]
    created_at: datetime
    expires_at: datetime

    @property
    def fee(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def dropoff_eta(self) -> datetime:
        return self.pickup_time + timedelta(seconds=self.duration_s)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    @classmethod
    def make(
        cls,
        *,
        id: str,
        tenant_id: str,
        external_delivery_id: str,
        created_by: str,
        card: RateCard,
        travel: Travel,
        pickup: Stop,
        dropoff: Stop,
        size: Size,
        customer: Customer | None,
        items: list[Item] | None,
        notes: str | None,
        pickup_time: datetime | None,
        dropoff_time: datetime | None,
        now: datetime,
    ) -> Quote:
        """Price a request; a time that cannot be met or a size the card does not quote is refused by field."""
        if pickup.location is None:
            raise InvalidDeliveryRequest("a quote needs the pickup's coordinates", field="pickup.location")
        if dropoff.location is None:
            raise InvalidDeliveryRequest("a quote needs the drop-off's coordinates", field="dropoff.location")
        if size not in card.sizes:
            raise InvalidDeliveryRequest(
                f"the rate card quotes the sizes {', '.join(sorted(card.sizes))}", field="size"
            )
        if pickup_time is not None and pickup_time < now - PICKUP_TIME_TOLERANCE:
            raise InvalidDeliveryRequest("the pickup time is in the past", field="pickup_time")
        if dropoff_time is not None and pickup_time is not None and dropoff_time <= pickup_time:
            raise InvalidDeliveryRequest(
                "the drop-off time is not after the pickup time", field="dropoff_time"
            )
        distance_m = travel.distance_m(pickup.location, dropoff.location)
        duration_s = travel.duration_s(distance_m)
        duration = timedelta(seconds=duration_s)
        if pickup_time is None:
            # Only a drop-off time: leave as late as still arrives on time, but never before now.
            pickup_time = now if dropoff_time is None else max(now, dropoff_time - duration)
        if dropoff_time is not None and dropoff_time < pickup_time + duration:
            raise InvalidDeliveryRequest(
                f"the earliest drop-off is {(pickup_time + duration).isoformat()}", field="dropoff_time"
            )
        quoted = price(
            card,
            distance_m=distance_m,
            duration_s=duration_s,
            size=size,
            pickup_at=pickup_time,
            pickup=pickup.location,
            dropoff=dropoff.location,
        )
        return cls(
            id=id,
            tenant_id=tenant_id,
            external_delivery_id=external_delivery_id,
            created_by=created_by,
            pickup=pickup,
            dropoff=dropoff,
            size=size,
            customer=customer or Customer(name=dropoff.name, phone=dropoff.phone),
            items=items or [Item(name=f"Parcel ({size.value})", quantity=1, unit_price=0)],
            notes=notes,
            pickup_time=pickup_time,
            dropoff_deadline=dropoff_time,
            distance_m=distance_m,
            duration_s=duration_s,
            currency=quoted.currency,
            lines=list(quoted.lines),
            created_at=now,
            expires_at=now + QUOTE_VALIDITY,
        )

    def order_draft(self) -> OrderDraft:
        """The order a delivery of this quote is: its fee the delivery fee, billed to the partner."""
        eta_end = self.dropoff_deadline or self.dropoff_eta
        dropoff = self.dropoff
        if eta_end > self.pickup_time:
            dropoff = dropoff.model_copy(update={"window": TimeWindow(start=self.pickup_time, end=eta_end)})
        return OrderDraft(
            external_id=self.external_delivery_id,
            pickup=self.pickup,
            dropoff=dropoff,
            customer=self.customer,
            items=self.items,
            currency=self.currency,
            delivery_fee=self.fee,
            notes=self.notes,
            payment=Payment(method=PaymentMethod.INVOICE, status=PaymentStatus.PENDING),
        )


@dataclass
class Delivery:
    id: str
    tenant_id: str
    quote_id: str
    external_delivery_id: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    order_id: str | None = None
    status: str = REQUESTED
    status_at: datetime | None = None
    cancel_requested_at: datetime | None = None

    @classmethod
    def request(cls, *, id: str, quote: Quote, created_by: str, now: datetime) -> Delivery:
        return cls(
            id=id,
            tenant_id=quote.tenant_id,
            quote_id=quote.id,
            external_delivery_id=quote.external_delivery_id,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )

    def request_cancellation(self, now: datetime) -> bool:
        """True when the cancellation is to be sent now; False when it was asked for already or is done."""
        if self.status == OrderStatus.CANCELLED.value or self.cancel_requested_at is not None:
            return False
        if self.status not in CANCELLABLE:
            raise DeliveryNotCancellable(
                f"a delivery whose order is {self.status} can no longer be cancelled",
                delivery_status=self.status,
            )
        self.cancel_requested_at = now
        self.updated_at = now
        return True

    def observe(self, *, order_id: str, status: str, at: datetime) -> bool:
        """Take the order's status as its events tell it; an older event arriving late changes nothing."""
        if self.status_at is not None and at < self.status_at:
            return False
        if (self.order_id, self.status, self.status_at) == (order_id, status, at):
            return False
        self.order_id, self.status, self.status_at = order_id, status, at
        self.updated_at = max(self.updated_at, at)
        return True
