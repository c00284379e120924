"""What the orders service publishes, and the public shape of an order."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from doorstep.kernel.messages import Event

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str | None) -> str | None:
    if value is not None and (not _EMAIL.match(value) or "\x00" in value):
        raise ValueError("not an email address")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000, and no real name, address or note contains it.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Phone = Annotated[str, Field(min_length=3, max_length=40), AfterValidator(_no_nul)]
Identifier = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Note = Annotated[str, Field(max_length=2000), AfterValidator(_no_nul)]
MinorUnits = Annotated[int, Field(ge=0, le=10**12)]
# The largest total an order may reach: far above any real order, far below int64.
MAX_ORDER_TOTAL = 10**13
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Email = Annotated[str | None, AfterValidator(_email)]


class Schema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderStatus(StrEnum):
    NEEDS_ATTENTION = "needs_attention"
    PLACED = "placed"
    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY_FOR_PICKUP = "ready_for_pickup"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED_DELIVERY = "failed_delivery"
    RETURNED = "returned"


class PaymentMethod(StrEnum):
    CARD = "card"
    CASH = "cash"
    WALLET = "wallet"
    ONLINE = "online"
    INVOICE = "invoice"
    OTHER = "other"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAID = "paid"
    REFUNDED = "refunded"
    VOIDED = "voided"
    FAILED = "failed"


class GeoPoint(Schema):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class TimeWindow(Schema):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end <= self.start:
            raise ValueError("window end must be after its start")
        return self


class Stop(Schema):
    name: Name
    address: Text
    phone: Phone | None = None
    # None when the sender only knows the address: the orders service geocodes it, and an order
    # whose stops stay without coordinates waits in `needs_attention`.
    location: GeoPoint | None = None
    window: TimeWindow | None = None


class Customer(Schema):
    name: Name
    phone: Phone | None = None
    email: Email = None


class Item(Schema):
    name: Name
    sku: Annotated[Identifier, Field(max_length=100)] | None = None
    quantity: int = Field(ge=1, le=100_000)
    unit_price: MinorUnits


class Payment(Schema):
    method: PaymentMethod = PaymentMethod.OTHER
    status: PaymentStatus = PaymentStatus.PENDING


class OrderDraft(Schema):
    """An order as a client, a CSV row group or a partner platform hands it to Doorstep."""

    external_id: Identifier | None = None
    merchant_id: Annotated[Identifier, Field(max_length=100)] | None = None
    pickup: Stop
    dropoff: Stop
    customer: Customer
    items: list[Item] = Field(min_length=1, max_length=500)
    currency: CurrencyCode
    tip: MinorUnits = 0
    delivery_fee: MinorUnits = 0
    notes: Note | None = None
    payment: Payment = Payment()

    @model_validator(mode="after")
    def _total_fits(self) -> Self:
        total = Totals.of(self.items, delivery_fee=self.delivery_fee, tip=self.tip).total
        if total > MAX_ORDER_TOTAL:
            raise ValueError(f"the order total {total} exceeds {MAX_ORDER_TOTAL} minor units")
        return self


class Totals(Schema):
    subtotal: int
    delivery_fee: int
    tip: int
    total: int

    @classmethod
    def of(cls, items: Sequence[Item], *, delivery_fee: int, tip: int) -> Totals:
        subtotal = sum(item.quantity * item.unit_price for item in items)
        return cls(subtotal=subtotal, delivery_fee=delivery_fee, tip=tip, total=subtotal + delivery_fee + tip)


class OrderSnapshot(OrderDraft):
    """The whole order as it stands, carried by events so consumers need not ask."""

    id: str
    source: str
    status: OrderStatus
    totals: Totals
    created_at: datetime
    updated_at: datetime


class OrderCreated(Event):
    event_type = "doorstep.orders.order.created.v1"
    order: OrderSnapshot

    def subject(self) -> str:
        return self.order.id


class OrderUpdated(Event):
    event_type = "doorstep.orders.order.updated.v1"
    changed_fields: list[str]
    order: OrderSnapshot

    def subject(self) -> str:
        return self.order.id


class OrderStatusChanged(Event):
    event_type = "doorstep.orders.order.status_changed.v1"
    order_id: str
    external_id: str | None
    source: str
    from_status: OrderStatus
    to_status: OrderStatus
    reason: str | None
    actor: str
    changed_at: datetime

    def subject(self) -> str:
        return self.order_id
