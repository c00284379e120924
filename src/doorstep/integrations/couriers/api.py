"""Couriers on demand: courier accounts, quotes, deliveries, cancellation, and the networks' webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select

from doorstep.infra.service import Service
from doorstep.integrations.couriers import repository
from doorstep.integrations.couriers.accounts import CloseCourierAccount, NewAccount, OpenCourierAccount
from doorstep.integrations.couriers.domain import Provider
from doorstep.integrations.couriers.errors import CourierDeliveryNotFound
from doorstep.integrations.couriers.handlers import (
    CancelCourierDelivery,
    CreateCourierDelivery,
    Created,
    QuoteCourier,
)
from doorstep.integrations.couriers.ports import CourierInfo, CourierRequest, CourierStatus
from doorstep.integrations.couriers.repository import CourierAccount, StoredDelivery, StoredQuote
from doorstep.integrations.couriers.tables import courier_accounts
from doorstep.integrations.couriers.webhooks import ReceiveCourierWebhook, WebhookReceipt
from doorstep.integrations.domain.errors import PayloadTooLarge
from doorstep.kernel.auth import PUBLIC, Principal, Requires

router = APIRouter(prefix="/v1/integrations", tags=["couriers"])

MAX_WEBHOOK_BYTES = 512 * 1024


async def _service(request: Request) -> Service:
    service: Service = request.app.state.services["integrations"]
    return service


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not accepted")
    return value


IntegrationsService = Annotated[Service, Depends(_service)]
Reads = Annotated[Principal, Depends(Requires("integrations.read"))]
Manages = Annotated[Principal, Depends(Requires("integrations.manage"))]
Reference = Annotated[str, Field(min_length=1, max_length=36), AfterValidator(_no_nul)]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Provider
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
    credentials: dict[str, str] = Field(
        description="DoorDash Drive: `developer_id`, `key_id`, `signing_secret`. Uber Direct: `customer_id`, "
        "`client_id`, `client_secret`, `webhook_signing_key`. Stored, never shown again."
    )
    settings: dict[str, str] = Field(
        default_factory=dict, description="`base_url` (and for Uber Direct `auth_url`) to reach a sandbox."
    )


class AccountOut(BaseModel):
    id: str
    provider: Provider
    name: str
    webhook_url: str
    settings: dict[str, str]
    created_at: datetime


class NewAccountOut(AccountOut):
    webhook_secret: str | None = Field(
        description="DoorDash Drive only: the `Authorization` header value to configure for its webhooks."
    )


class AccountList(BaseModel):
    items: list[AccountOut]
    next_cursor: None = None


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: Reference = Field(description="The order the courier would carry.")
    request: CourierRequest


class QuoteOut(BaseModel):
    id: str
    account_id: str
    order_id: str
    provider_quote_id: str
    fee: int
    currency: str
    pickup_eta: datetime | None
    dropoff_eta: datetime | None
    expires_at: datetime | None
    created_at: datetime


class DeliveryIn(BaseModel):
    """Either `quote_id`, or `account_id`, `order_id` and `request`."""

    model_config = ConfigDict(extra="forbid")
    quote_id: Reference | None = None
    account_id: Reference | None = None
    order_id: Reference | None = None
    request: CourierRequest | None = None


class DeliveryOut(BaseModel):
    id: str
    account_id: str
    provider: Provider
    order_id: str
    quote_id: str | None
    provider_delivery_id: str
    status: CourierStatus
    provider_status: str | None
    tracking_url: str | None
    fee: int | None
    currency: str | None
    courier: CourierInfo | None
    proof_of_delivery: list[str]
    status_at: datetime | None
    created_at: datetime
    updated_at: datetime
    courier_location_at: datetime | None = Field(
        description="When the courier was at `courier.location`: the latest position the network reported."
    )


class WebhookReceiptOut(BaseModel):
    outcome: str = Field(
        description="`applied` (a newer status), `location_updated` (a later courier position only), "
        "`ignored` (nothing newer than what is stored), `unknown_delivery`, or `duplicate`."
    )
    duplicate: bool


def _webhook_url(request: Request, account: CourierAccount) -> str:
    base: str = request.app.state.public_url.rstrip("/")
    return f"{base}/v1/integrations/courier-webhooks/{account.provider.value}/{account.token}"


def _account_out(request: Request, account: CourierAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "provider": account.provider,
        "name": account.name,
        "webhook_url": _webhook_url(request, account),
        "settings": account.settings,
        "created_at": account.created_at,
    }


def _quote_out(quote: StoredQuote) -> QuoteOut:
    return QuoteOut(
        id=quote.id,
        account_id=quote.account_id,
        order_id=quote.order_id,
        provider_quote_id=quote.provider_quote_id,
        fee=quote.fee,
        currency=quote.currency,
        pickup_eta=quote.pickup_eta,
        dropoff_eta=quote.dropoff_eta,
        expires_at=quote.expires_at,
        created_at=quote.created_at,
    )


def _delivery_out(delivery: StoredDelivery) -> DeliveryOut:
    row = delivery.row()
    row.pop("tenant_id")
    return DeliveryOut(**{**row, "courier": delivery.courier})


@router.post("/courier-accounts", status_code=201, summary="Connect a courier network account")
async def open_account(
    body: AccountIn, request: Request, principal: Manages, service: IntegrationsService
) -> NewAccountOut:
    opened: NewAccount = await service.bus.handle(
        OpenCourierAccount(
            tenant_id=principal.tenant_id,
            provider=body.provider,
            name=body.name,
            credentials=body.credentials,
            settings=body.settings,
            actor=principal.actor,
        )
    )
    return NewAccountOut(**_account_out(request, opened.account), webhook_secret=opened.webhook_secret)


@router.get("/courier-accounts", summary="The tenant's courier accounts (never their credentials)")
async def list_accounts(request: Request, principal: Reads, service: IntegrationsService) -> AccountList:
    async with service.database.reader() as session:
        rows = (
            await session.execute(
                select(courier_accounts)
                .where(courier_accounts.c.tenant_id == principal.tenant_id)
                .order_by(courier_accounts.c.id)
            )
        ).all()
    return AccountList(items=[AccountOut(**_account_out(request, repository.account_of(r))) for r in rows])


@router.delete("/courier-accounts/{account_id}", status_code=204, summary="Disconnect a courier account")
async def close_account(account_id: str, principal: Manages, service: IntegrationsService) -> Response:
    await service.bus.handle(
        CloseCourierAccount(tenant_id=principal.tenant_id, account_id=account_id, actor=principal.actor)
    )
    return Response(status_code=204)


@router.post(
    "/courier-accounts/{account_id}/quotes", status_code=201, summary="Ask the account's network for a quote"
)
async def quote(account_id: str, body: QuoteIn, principal: Manages, service: IntegrationsService) -> QuoteOut:
    stored: StoredQuote = await service.bus.handle(
        QuoteCourier(
            tenant_id=principal.tenant_id,
            account_id=account_id,
            order_id=body.order_id,
            request=body.request,
            actor=principal.actor,
        )
    )
    return _quote_out(stored)


@router.post(
    "/courier-deliveries",
    status_code=201,
    summary="Hand an order to a courier network (one delivery per order and account)",
)
async def create_delivery(body: DeliveryIn, principal: Manages, service: IntegrationsService) -> DeliveryOut:
    created: Created = await service.bus.handle(
        CreateCourierDelivery(
            tenant_id=principal.tenant_id,
            quote_id=body.quote_id,
            account_id=body.account_id,
            order_id=body.order_id,
            request=body.request,
            actor=principal.actor,
        )
    )
    return _delivery_out(created.delivery)


@router.get("/courier-deliveries/{courier_delivery_id}", summary="One courier delivery as last reported")
async def get_delivery(
    courier_delivery_id: str, principal: Reads, service: IntegrationsService
) -> DeliveryOut:
    async with service.database.reader() as session:
        found = await repository.get_delivery(
            await session.connection(), tenant_id=principal.tenant_id, delivery_id=courier_delivery_id
        )
    if found is None:
        raise CourierDeliveryNotFound(f"there is no courier delivery {courier_delivery_id}")
    return _delivery_out(found)


@router.post("/courier-deliveries/{courier_delivery_id}/cancel", summary="Cancel a courier delivery")
async def cancel_delivery(
    courier_delivery_id: str, principal: Manages, service: IntegrationsService
) -> DeliveryOut:
    cancelled: StoredDelivery = await service.bus.handle(
        CancelCourierDelivery(
            tenant_id=principal.tenant_id, delivery_id=courier_delivery_id, actor=principal.actor
        )
    )
    return _delivery_out(cancelled)


@router.post(
    "/courier-webhooks/{provider}/{token}",
    status_code=202,
    summary="A courier network reports a delivery's status (signed per network)",
    responses={401: {"description": "The signature or credential is missing or wrong; nothing was stored."}},
    dependencies=[PUBLIC],
)
async def receive_webhook(
    provider: str, token: str, request: Request, service: IntegrationsService
) -> JSONResponse:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge(f"courier webhooks are limited to {MAX_WEBHOOK_BYTES} bytes")
        chunks.append(chunk)
    receipt: WebhookReceipt = await service.bus.handle(
        ReceiveCourierWebhook(
            provider=provider, token=token, headers=dict(request.headers.items()), body=b"".join(chunks)
        )
    )
    out = WebhookReceiptOut(outcome=receipt.outcome, duplicate=receipt.duplicate)
    return JSONResponse(out.model_dump(mode="json"), status_code=202)
