"""The delivery API: `/v1/deliveries` quotes, accept, follow, list and cancel; the tenant's rate card."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from doorstep.contracts.orders import (
    Customer,
    GeoPoint,
    Identifier,
    Item,
    Name,
    Note,
    OrderStatus,
    Phone,
    Stop,
    Text,
)
from doorstep.infra.service import Service
from doorstep.integrations.deliveries.domain.errors import DeliveryNotFound, QuoteNotFound
from doorstep.integrations.deliveries.domain.model import REQUESTED, Delivery, Quote
from doorstep.integrations.deliveries.domain.rate_card import FeeLine, RateCard, Size
from doorstep.integrations.deliveries.handlers import (
    Accepted,
    AcceptQuote,
    CancelDelivery,
    PutRateCard,
    QuoteDelivery,
)
from doorstep.integrations.deliveries.repository import DeliveryApiRepository, DeliveryListing
from doorstep.kernel.auth import Principal, Requires
from doorstep.kernel.errors import InvalidInput, NotFound
from doorstep.kernel.pagination import Page
from doorstep.kernel.permissions import Reach

router = APIRouter(prefix="/v1/deliveries", tags=["delivery API"])


async def _service(request: Request) -> Service:
    service: Service = request.app.state.services["integrations"]
    return service


IntegrationsService = Annotated[Service, Depends(_service)]
Creates = Annotated[Principal, Depends(Requires("orders.create"))]
Reads = Annotated[Principal, Depends(Requires("orders.read"))]
Manages = Annotated[Principal, Depends(Requires("orders.manage"))]
Prices = Annotated[Principal, Depends(Requires("pricing.manage"))]


# What a delivery's status can be: requested until its order exists, then the order's.
STATUSES = (REQUESTED, *(status.value for status in OrderStatus))
STATUS_FILTER = f"Repeat to match any of several: {', '.join(STATUSES)}."


class RateCardNotFound(NotFound):
    slug = "rate-card-not-found"
    title = "The tenant has no delivery rate card"


class Place(BaseModel):
    """Where to pick up or drop off; without `location` the address is geocoded to price the trip."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    address: Text
    phone: Phone | None = None
    location: GeoPoint | None = Field(default=None, description="Geocoded from the address if left out.")


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_delivery_id: Identifier = Field(description="The partner's id; one delivery per id.")
    pickup: Place
    dropoff: Place
    pickup_time: AwareDatetime | None = Field(default=None, description="When to pick up; now if left out.")
    dropoff_time: AwareDatetime | None = Field(default=None, description="Deliver by then (optional).")
    size: Size = Size.MEDIUM
    customer: Customer | None = Field(
        default=None, description="The recipient; the drop-off's contact if left out."
    )
    items: list[Item] | None = Field(default=None, min_length=1, max_length=500)
    notes: Note | None = None


class FeeLineOut(BaseModel):
    kind: str
    label: str
    amount: int


class QuoteOut(BaseModel):
    id: str
    external_delivery_id: str
    pickup: Stop
    dropoff: Stop
    size: Size
    pickup_time: datetime
    dropoff_deadline: datetime | None
    dropoff_eta: datetime
    distance_m: int
    duration_s: int
    currency: str
    fee: int
    fee_lines: list[FeeLineOut]
    created_at: datetime
    expires_at: datetime


class DeliveryOut(BaseModel):
    id: str
    quote_id: str
    external_delivery_id: str
    order_id: str | None = Field(description="Set once the orders service has created the order.")
    status: str = Field(description="`requested` until the order exists, then the order's status.")
    status_updated_at: datetime | None
    cancellation_requested_at: datetime | None
    pickup: Stop
    dropoff: Stop
    size: Size
    pickup_time: datetime
    dropoff_eta: datetime
    currency: str
    fee: int
    fee_lines: list[FeeLineOut]
    created_at: datetime
    updated_at: datetime


def _lines(lines: list[FeeLine]) -> list[FeeLineOut]:
    return [FeeLineOut(kind=line.kind, label=line.label, amount=line.amount) for line in lines]


def _quote_out(quote: Quote) -> QuoteOut:
    return QuoteOut(
        id=quote.id,
        external_delivery_id=quote.external_delivery_id,
        pickup=quote.pickup,
        dropoff=quote.dropoff,
        size=quote.size,
        pickup_time=quote.pickup_time,
        dropoff_deadline=quote.dropoff_deadline,
        dropoff_eta=quote.dropoff_eta,
        distance_m=quote.distance_m,
        duration_s=quote.duration_s,
        currency=quote.currency,
        fee=quote.fee,
        fee_lines=_lines(quote.lines),
        created_at=quote.created_at,
        expires_at=quote.expires_at,
    )


def _delivery_out(delivery: Delivery, quote: Quote) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        quote_id=delivery.quote_id,
        external_delivery_id=delivery.external_delivery_id,
        order_id=delivery.order_id,
        status=delivery.status,
        status_updated_at=delivery.status_at,
        cancellation_requested_at=delivery.cancel_requested_at,
        pickup=quote.pickup,
        dropoff=quote.dropoff,
        size=quote.size,
        pickup_time=quote.pickup_time,
        dropoff_eta=quote.dropoff_eta,
        currency=quote.currency,
        fee=quote.fee,
        fee_lines=_lines(quote.lines),
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


def _utc(moment: datetime | None, field: str) -> datetime | None:
    try:
        return None if moment is None else moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("the time is out of range", field=field, location="query") from None


def _own_only(principal: Principal) -> bool:
    """Callers short of the whole tenant (merchant staff, customers) reach only what they made themselves."""
    return principal.reach is not Reach.TENANT


@router.get("/rate-card", summary="The tenant's delivery rate card")
async def get_rate_card(principal: Prices, service: IntegrationsService) -> RateCard:
    async with service.database.reader() as session:
        card = await DeliveryApiRepository(await session.connection()).rate_card(principal.tenant_id)
    if card is None:
        raise RateCardNotFound("the tenant has no rate card yet: PUT one")
    return card


@router.put("/rate-card", summary="Set the tenant's delivery rate card (replaces the whole card)")
async def put_rate_card(body: RateCard, principal: Prices, service: IntegrationsService) -> RateCard:
    card: RateCard = await service.bus.handle(
        PutRateCard(tenant_id=principal.tenant_id, card=body, actor=principal.actor)
    )
    return card


@router.post("/quotes", status_code=201, summary="Price a delivery: fee and ETA, valid for 15 minutes")
async def quote(body: QuoteIn, principal: Creates, service: IntegrationsService) -> QuoteOut:
    quoted: Quote = await service.bus.handle(
        QuoteDelivery(
            tenant_id=principal.tenant_id,
            external_delivery_id=body.external_delivery_id,
            pickup=Stop(**body.pickup.model_dump()),
            dropoff=Stop(**body.dropoff.model_dump()),
            size=body.size,
            customer=body.customer,
            items=body.items,
            notes=body.notes,
            pickup_time=body.pickup_time,
            dropoff_time=body.dropoff_time,
            actor=principal.actor,
        )
    )
    return _quote_out(quoted)


@router.get("/quotes/{quote_id}", summary="One quote")
async def get_quote(quote_id: str, principal: Reads, service: IntegrationsService) -> QuoteOut:
    async with service.database.reader() as session:
        found = await DeliveryApiRepository(await session.connection()).quote(
            tenant_id=principal.tenant_id,
            quote_id=quote_id,
            created_by=principal.actor if _own_only(principal) else None,
        )
    if found is None:
        raise QuoteNotFound(f"there is no delivery quote {quote_id}")
    return _quote_out(found)


@router.post(
    "/quotes/{quote_id}/accept",
    status_code=201,
    summary="Accept a quote: the delivery and its order are created (200 with the same delivery on a repeat)",
)
async def accept(
    quote_id: str, principal: Creates, service: IntegrationsService, response: Response
) -> DeliveryOut:
    accepted: Accepted = await service.bus.handle(
        AcceptQuote(
            tenant_id=principal.tenant_id,
            quote_id=quote_id,
            actor=principal.actor,
            own_only=_own_only(principal),
        )
    )
    if not accepted.created:
        response.status_code = 200
    return _delivery_out(accepted.delivery, accepted.quote)


@router.get("", summary="The tenant's deliveries, newest first")
async def list_deliveries(
    principal: Reads,
    service: IntegrationsService,
    status: Annotated[list[str] | None, Query(description=STATUS_FILTER)] = None,
    external_delivery_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    created_from: Annotated[AwareDatetime | None, Query(description="Created at or after.")] = None,
    created_to: Annotated[AwareDatetime | None, Query(description="Created before.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[DeliveryOut]:
    unknown = sorted(set(status or ()) - set(STATUSES))
    if unknown:
        raise InvalidInput(
            f"{unknown[0][:40]!r} is no delivery status; give one of {', '.join(STATUSES)}",
            field="status",
            location="query",
        )
    listing = DeliveryListing(
        tenant_id=principal.tenant_id,
        statuses=tuple(status or ()),
        external_delivery_id=external_delivery_id,
        created_from=_utc(created_from, "created_from"),
        created_to=_utc(created_to, "created_to"),
        created_by=principal.actor if _own_only(principal) else None,
    )
    async with service.database.reader() as session:
        page, next_cursor = await DeliveryApiRepository(await session.connection()).list_deliveries(
            listing, limit=limit, cursor=cursor
        )
    return Page[DeliveryOut](
        items=[_delivery_out(delivery, quote) for delivery, quote in page], next_cursor=next_cursor
    )


@router.get("/{api_delivery_id}", summary="One delivery with its order's current status and its fee")
async def get_delivery(api_delivery_id: str, principal: Reads, service: IntegrationsService) -> DeliveryOut:
    async with service.database.reader() as session:
        repository = DeliveryApiRepository(await session.connection())
        delivery = await repository.delivery(
            tenant_id=principal.tenant_id,
            delivery_id=api_delivery_id,
            created_by=principal.actor if _own_only(principal) else None,
        )
        quote = (
            None
            if delivery is None
            else await repository.quote(tenant_id=principal.tenant_id, quote_id=delivery.quote_id)
        )
    if delivery is None or quote is None:
        raise DeliveryNotFound(f"there is no delivery {api_delivery_id}")
    return _delivery_out(delivery, quote)


@router.post(
    "/{api_delivery_id}/cancel",
    status_code=202,
    summary="Cancel a delivery before pick-up (the order is cancelled by event; its status follows)",
)
async def cancel(api_delivery_id: str, principal: Manages, service: IntegrationsService) -> DeliveryOut:
    delivery, quote = await service.bus.handle(
        CancelDelivery(
            tenant_id=principal.tenant_id,
            delivery_id=api_delivery_id,
            actor=principal.actor,
            own_only=_own_only(principal),
        )
    )
    return _delivery_out(delivery, quote)
