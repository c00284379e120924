"""Integrations HTTP API: connections, the partner webhook intake and the inbound log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from doorstep.infra.service import Service
from doorstep.integrations import views
from doorstep.integrations.domain.commands import (
    ChangeMapping,
    OpenConnection,
    ReceiveWebhook,
    ReplayDelivery,
    TryMapping,
)
from doorstep.integrations.domain.errors import DeliveryNotFound, PayloadTooLarge
from doorstep.integrations.domain.model import Connection, DeliveryStatus, InboundDelivery, public_settings
from doorstep.integrations.handlers import Receipt
from doorstep.integrations.ports import MappedOrder
from doorstep.kernel.auth import PUBLIC, Principal, Requires
from doorstep.kernel.pagination import Page

router = APIRouter(prefix="/v1/integrations", tags=["integrations"])

MAX_WEBHOOK_BYTES = 2 * 1024 * 1024


async def _service(request: Request) -> Service:
    service: Service = request.app.state.services["integrations"]
    return service


IntegrationsService = Annotated[Service, Depends(_service)]
Reads = Annotated[Principal, Depends(Requires("integrations.read"))]
Manages = Annotated[Principal, Depends(Requires("integrations.manage"))]


class ConnectionIn(BaseModel):
    platform: str = Field(min_length=1, max_length=50, examples=["shopify"])
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Per platform; Shopify needs `pickup`."
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="The platform's signing secret, if it has one.",
    )


class ConnectionOut(BaseModel):
    connection_id: str
    platform: str
    webhook_url: str
    settings: dict[str, Any]
    created_at: datetime


class NewConnectionOut(ConnectionOut):
    secret: str = Field(description="Signs the platform's deliveries. Shown when the connection is opened.")


class ConnectionList(BaseModel):
    """Every connection of the tenant in one page; `next_cursor` is there for the shape all lists share."""

    items: list[ConnectionOut]
    next_cursor: None = None


class ReceiptOut(BaseModel):
    delivery_id: str
    status: DeliveryStatus
    duplicate: bool


class DeliveryOut(BaseModel):
    id: str
    connection_id: str
    platform: str
    platform_delivery_id: str | None
    received_at: datetime
    status: DeliveryStatus
    external_id: str | None
    failure_field: str | None
    failure_reason: str | None
    attempts: int


class DeliveryDetail(DeliveryOut):
    headers: dict[str, str]
    body: str


def webhook_url(request: Request, connection: Connection) -> str:
    base: str = request.app.state.public_url.rstrip("/")
    return f"{base}/v1/integrations/webhooks/{connection.platform}/{connection.token}"


def _connection_out(request: Request, connection: Connection) -> dict[str, Any]:
    return {
        "connection_id": connection.id,
        "platform": connection.platform,
        "webhook_url": webhook_url(request, connection),
        "settings": public_settings(connection.settings),
        "created_at": connection.created_at,
    }


def _delivery_out(delivery: InboundDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "connection_id": delivery.connection_id,
        "platform": delivery.platform,
        "platform_delivery_id": delivery.platform_delivery_id,
        "received_at": delivery.received_at,
        "status": delivery.status,
        "external_id": delivery.external_id,
        "failure_field": delivery.failure_field,
        "failure_reason": delivery.failure_reason,
        "attempts": delivery.attempts,
    }


@router.post("/connections", status_code=201, summary="Connect a partner platform")
async def open_connection(
    body: ConnectionIn, request: Request, principal: Manages, service: IntegrationsService
) -> NewConnectionOut:
    connection: Connection = await service.bus.handle(
        OpenConnection(
            tenant_id=principal.tenant_id,
            platform=body.platform,
            settings=body.settings,
            secret=body.secret,
            actor=principal.actor,
        )
    )
    return NewConnectionOut(**_connection_out(request, connection), secret=connection.secret)


class MappingIn(BaseModel):
    mapping: dict[str, Any] = Field(
        description="Doorstep order fields to JSONPath rules, e.g. "
        '`{"external_id": "$.id", "items": {"path": "$.lines[*]", "fields": {...}}, ...}`.'
    )


class MappingTestIn(BaseModel):
    payload: Any = Field(description="A sample payload as the sender posts it (decrypted).")
    mapping: dict[str, Any] | None = Field(
        default=None, description="A draft mapping to try instead of the stored one (nothing is stored)."
    )


class MappingTestOut(BaseModel):
    external_id: str
    change: str
    version: int | None
    draft: dict[str, Any]


@router.put(
    "/connections/{connection_id}/mapping",
    summary="Replace a json_mapping connection's mapping (checked before it is stored)",
)
async def change_mapping(
    connection_id: str, body: MappingIn, request: Request, principal: Manages, service: IntegrationsService
) -> ConnectionOut:
    connection: Connection = await service.bus.handle(
        ChangeMapping(
            tenant_id=principal.tenant_id,
            connection_id=connection_id,
            mapping=body.mapping,
            actor=principal.actor,
        )
    )
    return ConnectionOut(**_connection_out(request, connection))


@router.post(
    "/connections/{connection_id}/mapping/test",
    summary="Map a sample payload with the stored (or a draft) mapping; nothing is stored",
)
async def test_mapping(
    connection_id: str, body: MappingTestIn, principal: Manages, service: IntegrationsService
) -> MappingTestOut:
    mapped: MappedOrder = await service.bus.handle(
        TryMapping(
            tenant_id=principal.tenant_id,
            connection_id=connection_id,
            payload=body.payload,
            mapping=body.mapping,
        )
    )
    return MappingTestOut(
        external_id=mapped.external_id,
        change=mapped.change.value,
        version=mapped.version,
        draft=mapped.draft.model_dump(mode="json"),
    )


@router.get("/connections", summary="The tenant's platform connections")
async def list_connections(
    request: Request, principal: Reads, service: IntegrationsService
) -> ConnectionList:
    found = await views.list_connections(service.database, tenant_id=principal.tenant_id)
    return ConnectionList(items=[ConnectionOut(**_connection_out(request, c)) for c in found])


@router.post(
    "/webhooks/{platform}/{token}",
    status_code=202,
    summary="A partner platform delivers an order (signed with the connection's secret)",
    responses={401: {"description": "The signature is missing or wrong; nothing was stored."}},
    dependencies=[PUBLIC],
)
async def receive_webhook(
    platform: str, token: str, request: Request, service: IntegrationsService
) -> JSONResponse:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(f"deliveries are limited to {MAX_WEBHOOK_BYTES} bytes")
    # Read as a stream and stop at the limit: a chunked body has no length to check up front.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge(f"deliveries are limited to {MAX_WEBHOOK_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    receipt: Receipt = await service.bus.handle(
        ReceiveWebhook(platform=platform, token=token, headers=dict(request.headers.items()), body=body)
    )
    out = ReceiptOut(delivery_id=receipt.delivery_id, status=receipt.status, duplicate=receipt.duplicate)
    return JSONResponse(out.model_dump(mode="json"), status_code=202)


@router.get("/inbound", summary="The inbound log: every delivery, mapped or not")
async def list_inbound(
    principal: Reads,
    service: IntegrationsService,
    status: DeliveryStatus | None = None,
    connection_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[DeliveryOut]:
    found, next_cursor = await views.list_deliveries(
        service.database,
        tenant_id=principal.tenant_id,
        status=status,
        connection_id=connection_id,
        limit=limit,
        cursor=cursor,
    )
    return Page[DeliveryOut](items=[DeliveryOut(**_delivery_out(d)) for d in found], next_cursor=next_cursor)


@router.get("/inbound/{delivery_id}", summary="One delivery with its raw body")
async def get_inbound(delivery_id: str, principal: Reads, service: IntegrationsService) -> DeliveryDetail:
    delivery = await views.get_delivery(
        service.database, tenant_id=principal.tenant_id, delivery_id=delivery_id
    )
    if delivery is None:
        raise DeliveryNotFound(f"there is no inbound delivery {delivery_id}")
    return DeliveryDetail(
        **_delivery_out(delivery),
        headers=delivery.headers,
        body=delivery.body.decode("utf-8", errors="replace"),
    )


@router.post("/inbound/{delivery_id}/replay", summary="Map a stored delivery again, e.g. after a fix")
async def replay_inbound(delivery_id: str, principal: Manages, service: IntegrationsService) -> DeliveryOut:
    delivery: InboundDelivery = await service.bus.handle(
        ReplayDelivery(tenant_id=principal.tenant_id, delivery_id=delivery_id, actor=principal.actor)
    )
    return DeliveryOut(**_delivery_out(delivery))
