"""Orders HTTP API."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Header, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from doorstep.contracts.orders import Customer, Item, OrderDraft, OrderStatus, Payment, Stop
from doorstep.infra.service import Service
from doorstep.kernel.auth import Principal, Requires
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.pagination import Page
from doorstep.kernel.permissions import Reach
from doorstep.orders import views
from doorstep.orders.domain.commands import AmendOrder, ChangeOrderStatus, GeocodeOrder, PlaceOrder
from doorstep.orders.domain.errors import OrderNotFound
from doorstep.orders.handlers import Placement
from doorstep.orders.importing import ImportReport, import_csv

router = APIRouter(prefix="/v1/orders", tags=["orders"])


async def _service(request: Request) -> Service:
    service: Service = request.app.state.services["orders"]
    return service


OrdersService = Annotated[Service, Depends(_service)]
Reads = Annotated[Principal, Depends(Requires("orders.read"))]
Creates = Annotated[Principal, Depends(Requires("orders.create"))]
Manages = Annotated[Principal, Depends(Requires("orders.manage"))]


async def _ensure_within_reach(service: Service, principal: Principal, order_id: str) -> None:
    """Changing an order needs seeing it: outside the caller's reach it does not exist for them."""
    if principal.reach is Reach.TENANT:
        return
    if (
        await views.get_order(
            service.database, tenant_id=principal.tenant_id, order_id=order_id, viewer=principal
        )
        is None
    ):
        raise OrderNotFound(f"there is no order {order_id}")


class StatusChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: OrderStatus
    reason: str | None = Field(default=None, max_length=500)


class OrderPatch(BaseModel):
    """Only the fields sent change; each may change only while the order's status allows it."""

    model_config = ConfigDict(extra="forbid")
    merchant_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    pickup: Stop | None = None
    dropoff: Stop | None = None
    customer: Customer | None = None
    items: list[Item] | None = Field(default=None, min_length=1, max_length=500)
    tip: int | None = Field(default=None, ge=0, le=10**12)
    delivery_fee: int | None = Field(default=None, ge=0, le=10**12)
    notes: str | None = Field(default=None, max_length=2000)
    payment: Payment | None = None


_NULLABLE = {"merchant_id", "notes"}


def _utc(moment: datetime | None, field: str) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidInput("give a UTC offset, e.g. 2026-11-21T18:00:00Z", field=field, location="query")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("the time is out of range", field=field, location="query") from None


def _json(body: str, status_code: int, **headers: str) -> Response:
    return Response(content=body, status_code=status_code, media_type="application/json", headers=headers)


@router.post(
    "",
    status_code=201,
    response_model=views.OrderDetail,
    summary="Place an order",
    responses={200: {"description": "An order with this external_id exists already; it is returned."}},
)
async def place_order(
    draft: OrderDraft,
    principal: Creates,
    service: OrdersService,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> Response:
    if principal.reach is Reach.MERCHANTS and draft.merchant_id not in principal.merchant_ids:
        raise InvalidInput("place orders for your own merchants", field="merchant_id", location="body")
    request_hash = hashlib.sha256(draft.model_dump_json().encode()).hexdigest() if idempotency_key else None
    placement: Placement = await service.bus.handle(
        PlaceOrder(
            tenant_id=principal.tenant_id,
            source="api",
            draft=draft,
            actor=principal.actor,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
    )
    return _json(placement.body, placement.status_code)


@router.get("", response_model=Page[views.OrderView], summary="List orders, newest first")
async def list_orders(
    principal: Reads,
    service: OrdersService,
    status: Annotated[list[OrderStatus] | None, Query(description="Repeat to match any of several")] = None,
    source: Annotated[str | None, Query(max_length=50)] = None,
    merchant_id: Annotated[str | None, Query(max_length=100)] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Customer or address text")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    page = await views.list_orders(
        service.database,
        tenant_id=principal.tenant_id,
        statuses=status or (),
        source=source,
        merchant_id=merchant_id,
        created_from=_utc(created_from, "created_from"),
        created_to=_utc(created_to, "created_to"),
        text=q,
        limit=limit,
        cursor=cursor,
        viewer=principal,
    )
    return _json(page.model_dump_json(), 200)


@router.get("/{order_id}", response_model=views.OrderDetail, summary="One order with its status history")
async def get_order(order_id: str, principal: Reads, service: OrdersService) -> Response:
    order = await views.get_order(
        service.database, tenant_id=principal.tenant_id, order_id=order_id, viewer=principal
    )
    if order is None:
        raise OrderNotFound(f"there is no order {order_id}")
    return _json(order.model_dump_json(), 200)


@router.patch("/{order_id}", response_model=views.OrderDetail, summary="Change fields that may still change")
async def amend_order(
    order_id: str, patch: OrderPatch, principal: Manages, service: OrdersService
) -> Response:
    await _ensure_within_reach(service, principal, order_id)
    moves_merchant = "merchant_id" in patch.model_fields_set
    if (
        principal.reach is Reach.MERCHANTS
        and moves_merchant
        and patch.merchant_id not in principal.merchant_ids
    ):
        raise InvalidInput(
            "you can move orders only between your own merchants", field="merchant_id", location="body"
        )
    changes: dict[str, Any] = {}
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None and name not in _NULLABLE:
            raise InvalidInput(f"{name} cannot be null", field=name, location="body")
        changes[name] = value
    order: views.OrderDetail = await service.bus.handle(
        AmendOrder(tenant_id=principal.tenant_id, order_id=order_id, changes=changes, actor=principal.actor)
    )
    return _json(order.model_dump_json(), 200)


@router.post(
    "/{order_id}/status", response_model=views.OrderDetail, summary="Move an order along its lifecycle"
)
async def change_status(
    order_id: str, body: StatusChangeIn, principal: Manages, service: OrdersService
) -> Response:
    await _ensure_within_reach(service, principal, order_id)
    order: views.OrderDetail = await service.bus.handle(
        ChangeOrderStatus(
            tenant_id=principal.tenant_id,
            order_id=order_id,
            status=body.status,
            reason=body.reason,
            actor=principal.actor,
        )
    )
    return _json(order.model_dump_json(), 200)


@router.post(
    "/{order_id}/geocode",
    response_model=views.OrderDetail,
    summary="Geocode the stops without coordinates again",
    description="For an order in `needs_attention`: asks the geocoder again for each stop without "
    "coordinates; once both have them the order becomes `placed`. A 422 (`address-not-geocoded`) names "
    "the addresses still not found; correct them, or set their `location`, with PATCH.",
)
async def geocode_order(order_id: str, principal: Manages, service: OrdersService) -> Response:
    await _ensure_within_reach(service, principal, order_id)
    order: views.OrderDetail = await service.bus.handle(
        GeocodeOrder(tenant_id=principal.tenant_id, order_id=order_id, actor=principal.actor)
    )
    return _json(order.model_dump_json(), 200)


@router.post("/import", summary="Import orders from a CSV file")
async def import_orders(
    principal: Creates,
    service: OrdersService,
    file: Annotated[UploadFile, File(description="UTF-8 CSV with a header row")],
) -> ImportReport:
    return await import_csv(file.file, bus=service.bus, tenant_id=principal.tenant_id, actor=principal.actor)
