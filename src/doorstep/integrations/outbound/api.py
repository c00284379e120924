"""Status-webhook endpoints: register, change, rotate the secret, read the messages, replay, test."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, Field
from sqlalchemy import select

from doorstep.infra.service import Service
from doorstep.integrations.outbound.domain import Endpoint, Message, MessageState
from doorstep.integrations.outbound.errors import WebhookEndpointNotFound
from doorstep.integrations.outbound.handlers import (
    ChangeEndpoint,
    DeleteEndpoint,
    RegisterEndpoint,
    ReplayFailedSince,
    ReplayMessage,
    RotateSecret,
    SendTestMessage,
)
from doorstep.integrations.outbound.repository import attempt_from_row, endpoint_from_row, message_from_row
from doorstep.integrations.outbound.tables import webhook_attempts, webhook_endpoints, webhook_messages
from doorstep.kernel.auth import Principal, Requires
from doorstep.kernel.pagination import Page, newest_first, page_of

router = APIRouter(prefix="/v1/integrations/webhook-endpoints", tags=["status webhooks"])


async def _service(request: Request) -> Service:
    service: Service = request.app.state.services["integrations"]
    return service


IntegrationsService = Annotated[Service, Depends(_service)]
Reads = Annotated[Principal, Depends(Requires("integrations.read"))]
Manages = Annotated[Principal, Depends(Requires("integrations.manage"))]
EventTypes = Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=20)]
Description = Annotated[str, Field(max_length=500)]


class EndpointIn(BaseModel):
    url: AnyHttpUrl = Field(examples=["https://example.com/doorstep/webhooks"])
    event_types: EventTypes = Field(examples=[["order.*"]], description="Patterns such as `order.*`.")
    description: Description | None = None


class EndpointChange(BaseModel):
    url: AnyHttpUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="`whsec_...`: verifies the signatures. Shown only now.")


class EndpointList(BaseModel):
    items: list[EndpointOut]
    next_cursor: None = None


class AttemptOut(BaseModel):
    attempted_at: datetime
    status: int | None
    latency_ms: int
    response_snippet: str
    error: str | None


class MessageOut(BaseModel):
    id: str = Field(description="The `webhook-id`, the same on every attempt.")
    event_type: str
    event_id: str
    subject: str | None
    state: MessageState
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptOut] = []


class ReplaySince(BaseModel):
    since: AwareDatetime


class Replayed(BaseModel):
    replayed: int


def _endpoint_out(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def _message_out(message: Message, attempts: list[AttemptOut] | None = None) -> MessageOut:
    return MessageOut(
        id=message.id,
        event_type=message.event_type,
        event_id=message.event_id,
        subject=message.subject,
        state=message.state,
        attempts=message.attempts,
        next_attempt_at=message.next_attempt_at if message.state is MessageState.PENDING else None,
        created_at=message.created_at,
        delivered_at=message.delivered_at,
        attempt_log=attempts or [],
    )


@router.post("", status_code=201, summary="Register an endpoint for status webhooks")
async def register(body: EndpointIn, principal: Manages, service: IntegrationsService) -> EndpointWithSecret:
    endpoint: Endpoint = await service.bus.handle(
        RegisterEndpoint(
            tenant_id=principal.tenant_id,
            url=str(body.url),
            event_types=body.event_types,
            description=body.description,
            actor=principal.actor,
        )
    )
    return EndpointWithSecret(**_endpoint_out(endpoint), secret=endpoint.secret)


@router.get("", summary="The tenant's webhook endpoints")
async def list_endpoints(principal: Reads, service: IntegrationsService) -> EndpointList:
    async with service.database.reader() as session:
        rows = await session.execute(
            select(webhook_endpoints)
            .where(webhook_endpoints.c.tenant_id == principal.tenant_id)
            .order_by(webhook_endpoints.c.id)
        )
        found = [endpoint_from_row(row) for row in rows]
    return EndpointList(items=[EndpointOut(**_endpoint_out(e)) for e in found])


async def _read_endpoint(service: Service, tenant_id: str, endpoint_id: str) -> Endpoint:
    async with service.database.reader() as session:
        row = (
            await session.execute(
                select(webhook_endpoints).where(
                    webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id
                )
            )
        ).first()
    if row is None:
        raise WebhookEndpointNotFound(f"there is no webhook endpoint {endpoint_id}")
    return endpoint_from_row(row)


@router.get("/{endpoint_id}", summary="One webhook endpoint")
async def get_endpoint(endpoint_id: str, principal: Reads, service: IntegrationsService) -> EndpointOut:
    return EndpointOut(**_endpoint_out(await _read_endpoint(service, principal.tenant_id, endpoint_id)))


@router.patch("/{endpoint_id}", summary="Change the URL or event types, or enable or disable the endpoint")
async def change(
    endpoint_id: str, body: EndpointChange, principal: Manages, service: IntegrationsService
) -> EndpointOut:
    endpoint: Endpoint = await service.bus.handle(
        ChangeEndpoint(
            tenant_id=principal.tenant_id,
            endpoint_id=endpoint_id,
            url=str(body.url) if body.url is not None else None,
            event_types=body.event_types,
            description=body.description,
            enabled=body.enabled,
            actor=principal.actor,
        )
    )
    return EndpointOut(**_endpoint_out(endpoint))


@router.delete("/{endpoint_id}", status_code=204, summary="Remove the endpoint; its pending messages fail")
async def delete(endpoint_id: str, principal: Manages, service: IntegrationsService) -> Response:
    await service.bus.handle(
        DeleteEndpoint(tenant_id=principal.tenant_id, endpoint_id=endpoint_id, actor=principal.actor)
    )
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", summary="A new secret; the old one stays valid for 24 hours")
async def rotate(endpoint_id: str, principal: Manages, service: IntegrationsService) -> EndpointWithSecret:
    endpoint: Endpoint = await service.bus.handle(
        RotateSecret(tenant_id=principal.tenant_id, endpoint_id=endpoint_id, actor=principal.actor)
    )
    return EndpointWithSecret(**_endpoint_out(endpoint), secret=endpoint.secret)


@router.get("/{endpoint_id}/messages", summary="Messages to the endpoint, newest first, with every attempt")
async def list_messages(
    endpoint_id: str,
    principal: Reads,
    service: IntegrationsService,
    state: MessageState | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[MessageOut]:
    endpoint = await _read_endpoint(service, principal.tenant_id, endpoint_id)
    query = select(webhook_messages).where(webhook_messages.c.endpoint_id == endpoint.id)
    if state is not None:
        query = query.where(webhook_messages.c.state == state.value)
    query = newest_first(query, webhook_messages.c.id, limit=limit, cursor=cursor)
    async with service.database.reader() as session:
        page, next_cursor = page_of((await session.execute(query)).all(), limit)
        messages = [message_from_row(row) for row in page]
        attempts: dict[str, list[AttemptOut]] = {m.id: [] for m in messages}
        if messages:
            rows = await session.execute(
                select(webhook_attempts)
                .where(webhook_attempts.c.message_id.in_(list(attempts)))
                .order_by(webhook_attempts.c.attempted_at, webhook_attempts.c.id)
            )
            for row in rows:
                attempt = attempt_from_row(row)
                attempts[attempt.message_id].append(
                    AttemptOut(
                        attempted_at=attempt.attempted_at,
                        status=attempt.status,
                        latency_ms=attempt.latency_ms,
                        response_snippet=attempt.snippet,
                        error=attempt.error,
                    )
                )
    return Page[MessageOut](
        items=[_message_out(m, attempts[m.id]) for m in messages], next_cursor=next_cursor
    )


@router.post("/{endpoint_id}/messages/{message_id}/replay", summary="Send one message again")
async def replay_one(
    endpoint_id: str, message_id: str, principal: Manages, service: IntegrationsService
) -> MessageOut:
    message: Message = await service.bus.handle(
        ReplayMessage(
            tenant_id=principal.tenant_id,
            endpoint_id=endpoint_id,
            message_id=message_id,
            actor=principal.actor,
        )
    )
    return _message_out(message)


@router.post("/{endpoint_id}/replay", summary="Send again every failed message since a time")
async def replay_since(
    endpoint_id: str, body: ReplaySince, principal: Manages, service: IntegrationsService
) -> Replayed:
    messages: list[Message] = await service.bus.handle(
        ReplayFailedSince(
            tenant_id=principal.tenant_id, endpoint_id=endpoint_id, since=body.since, actor=principal.actor
        )
    )
    return Replayed(replayed=len(messages))


@router.post("/{endpoint_id}/test", status_code=202, summary="Send a `webhook.test` message now")
async def send_test(endpoint_id: str, principal: Manages, service: IntegrationsService) -> MessageOut:
    message: Message = await service.bus.handle(
        SendTestMessage(tenant_id=principal.tenant_id, endpoint_id=endpoint_id, actor=principal.actor)
    )
    return _message_out(message)
