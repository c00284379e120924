"""Status-webhook use cases: endpoints (register, change, rotate, delete), messages in, outcomes, replay."""

from __future__ import annotations

import json
import random as random_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from doorstep.contracts.integrations import WebhookEndpointDisabled
from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.outbound.domain import (
    EVENT_TYPES,
    TEST_TYPE,
    Attempt,
    Endpoint,
    Message,
    MessageState,
    Outcome,
    invalid_pattern,
    new_secret,
)
from doorstep.integrations.outbound.errors import (
    InvalidEventTypes,
    WebhookEndpointNotFound,
    WebhookMessageNotFound,
    WebhookUrlRefused,
)
from doorstep.integrations.outbound.repository import WebhookRepository
from doorstep.integrations.outbound.ssrf import Network, Resolver, UrlRefused, system_resolver, vet
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import CloudEvent, Command


@dataclass
class WebhookRuntime:
    """What the webhook handlers take from outside: the time, DNS, the allow-list, and who to wake."""

    clock: Callable[[], datetime] = utcnow
    resolver: Resolver = system_resolver
    allowed: Sequence[Network] = ()
    random: Callable[[], float] = random_module.random
    wake: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True, slots=True)
class Delivery:
    message: Message
    endpoint: Endpoint


class StoreWebhookMessages(Command):
    """Orders events delivered together: one message per matching enabled endpoint of each event's tenant."""

    events: tuple[CloudEvent, ...]


class RegisterEndpoint(Command):
    tenant_id: str
    url: str
    event_types: list[str]
    description: str | None = None
    actor: str = "system"


class ChangeEndpoint(Command):
    tenant_id: str
    endpoint_id: str
    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None
    actor: str = "system"


class DeleteEndpoint(Command):
    tenant_id: str
    endpoint_id: str
    actor: str = "system"


class RotateSecret(Command):
    tenant_id: str
    endpoint_id: str
    actor: str = "system"


class ReplayMessage(Command):
    tenant_id: str
    endpoint_id: str
    message_id: str
    actor: str = "system"


class ReplayFailedSince(Command):
    tenant_id: str
    endpoint_id: str
    since: datetime
    actor: str = "system"


class SendTestMessage(Command):
    tenant_id: str
    endpoint_id: str
    actor: str = "system"


class ClaimDueMessages(Command):
    limit: int
    per_endpoint: int
    lease_seconds: float
    busy: tuple[str, ...] = ()
    # Endpoints with a delivery of this dispatcher in flight: a half-open circuit gets one probe at a time.
    sending: tuple[str, ...] = ()


class RecordOutcome(Command):
    message_id: str
    status: int | None
    latency_ms: int
    snippet: str = ""
    error: str | None = None
    retry_after_seconds: float | None = None
    at: datetime | None = None  # when the attempt ended; the clock's time when recorded if not given


class RecordOutcomes(Command):
    """The outcomes of deliveries that finished together, stored in one transaction."""

    outcomes: tuple[RecordOutcome, ...]


def webhook_body(webhook_type: str, *, timestamp: datetime, data: dict[str, Any]) -> str:
    """The Standard Webhooks payload: `{"type", "timestamp", "data"}`."""
    return json.dumps(
        {"type": webhook_type, "timestamp": timestamp.isoformat().replace("+00:00", "Z"), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


async def store_webhook_messages(
    cmd: StoreWebhookMessages, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> int:
    """Idempotent by (endpoint, event): a redelivered event adds nothing. The inbox is not used, since
    the same `OrderCreated` is marked there by the order-link consumer of this service."""
    try:
        stored = await _store(cmd, uow, webhooks)
    except IntegrityError:
        stored = await _store(cmd, uow, webhooks)  # the same event stored at once by another process
    if stored:
        webhooks.wake()
    return stored


async def _store(cmd: StoreWebhookMessages, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime) -> int:
    events = [event for event in cmd.events if event.type in EVENT_TYPES]
    if not events:
        return 0
    now = webhooks.clock()
    async with uow:
        repository = WebhookRepository(uow.connection)
        endpoints = await repository.enabled_endpoints({event.tenantid for event in events})
        if not endpoints:
            return 0
        stored = await repository.stored_pairs({event.id for event in events})
        messages: list[Message] = []
        for event in events:
            webhook_type = EVENT_TYPES[event.type]
            body = webhook_body(webhook_type, timestamp=event.time, data=event.data)
            for endpoint in endpoints:
                wanted = endpoint.tenant_id == event.tenantid and endpoint.wants(webhook_type)
                if not wanted or (endpoint.id, event.id) in stored:
                    continue
                stored.add((endpoint.id, event.id))
                messages.append(
                    Message(
                        id=new_id(),
                        endpoint_id=endpoint.id,
                        tenant_id=event.tenantid,
                        event_id=event.id,
                        event_type=webhook_type,
                        subject=event.subject,
                        body=body,
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
        await repository.add_messages(messages)
        await uow.commit()
    return len(messages)


def _check_event_types(patterns: Sequence[str]) -> list[str]:
    if not patterns:
        raise InvalidEventTypes("name at least one event type", field="event_types", location="body")
    for index, pattern in enumerate(patterns):
        reason = invalid_pattern(pattern)
        if reason is not None:
            raise InvalidEventTypes(reason, field=f"event_types.{index}", location="body")
    return list(dict.fromkeys(patterns))


async def _vet_url(url: str, webhooks: WebhookRuntime) -> None:
    try:
        await vet(url, resolver=webhooks.resolver, allowed=webhooks.allowed, unresolved_ok=True)
    except UrlRefused as refused:
        raise WebhookUrlRefused(str(refused), field="url", location="body") from None


def _audit_state(endpoint: Endpoint) -> dict[str, Any]:
    """What the audit trail keeps of an endpoint: never its secrets."""
    return {
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
    }


async def register_endpoint(
    cmd: RegisterEndpoint, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> Endpoint:
    event_types = _check_event_types(cmd.event_types)
    await _vet_url(cmd.url, webhooks)
    now = webhooks.clock()
    endpoint = Endpoint(
        id=new_id(),
        tenant_id=cmd.tenant_id,
        url=cmd.url,
        event_types=event_types,
        description=cmd.description,
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    async with uow:
        await WebhookRepository(uow.connection).add_endpoint(endpoint)
        _audit(uow, cmd.actor, "webhook_endpoint.registered", endpoint, None, _audit_state(endpoint))
        await uow.commit()
    return endpoint


async def _endpoint(repository: WebhookRepository, tenant_id: str, endpoint_id: str) -> Endpoint:
    endpoint = await repository.endpoint(tenant_id=tenant_id, endpoint_id=endpoint_id, lock=True)
    if endpoint is None:
        raise WebhookEndpointNotFound(f"there is no webhook endpoint {endpoint_id}")
    return endpoint


async def change_endpoint(
    cmd: ChangeEndpoint, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> Endpoint:
    event_types = _check_event_types(cmd.event_types) if cmd.event_types is not None else None
    if cmd.url is not None:
        await _vet_url(cmd.url, webhooks)
    now = webhooks.clock()
    async with uow:
        repository = WebhookRepository(uow.connection)
        endpoint = await _endpoint(repository, cmd.tenant_id, cmd.endpoint_id)
        before = _audit_state(endpoint)
        if cmd.url is not None:
            endpoint.url = cmd.url
        if event_types is not None:
            endpoint.event_types = event_types
        if cmd.description is not None:
            endpoint.description = cmd.description
        if cmd.enabled is True and not endpoint.enabled:
            endpoint.enable(now)
        elif cmd.enabled is False and endpoint.enabled:
            endpoint.disable("disabled by the tenant", now)
        endpoint.updated_at = now
        await repository.save_endpoint(endpoint)
        after = _audit_state(endpoint)
        if after != before:
            _audit(uow, cmd.actor, "webhook_endpoint.changed", endpoint, before, after)
        await uow.commit()
    if endpoint.enabled:
        webhooks.wake()
    return endpoint


async def delete_endpoint(cmd: DeleteEndpoint, *, uow: IntegrationsUnitOfWork) -> None:
    async with uow:
        repository = WebhookRepository(uow.connection)
        endpoint = await _endpoint(repository, cmd.tenant_id, cmd.endpoint_id)
        await repository.delete_endpoint(endpoint)
        _audit(uow, cmd.actor, "webhook_endpoint.deleted", endpoint, _audit_state(endpoint), None)
        await uow.commit()


async def rotate_secret(
    cmd: RotateSecret, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> Endpoint:
    now = webhooks.clock()
    async with uow:
        repository = WebhookRepository(uow.connection)
        endpoint = await _endpoint(repository, cmd.tenant_id, cmd.endpoint_id)
        endpoint.rotate_secret(now)
        await repository.save_endpoint(endpoint)
        _audit(
            uow,
            cmd.actor,
            "webhook_endpoint.secret_rotated",
            endpoint,
            None,
            {"previous_secret_valid_until": endpoint.previous_secret_expires_at},
        )
        await uow.commit()
    return endpoint


async def replay_message(
    cmd: ReplayMessage, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> Message:
    now = webhooks.clock()
    async with uow:
        repository = WebhookRepository(uow.connection)
        endpoint = await _endpoint(repository, cmd.tenant_id, cmd.endpoint_id)
        message = await repository.message(message_id=cmd.message_id, lock=True)
        if message is None or message.endpoint_id != endpoint.id:
            raise WebhookMessageNotFound(f"there is no message {cmd.message_id} for this endpoint")
        before = {"state": message.state, "attempts": message.attempts}
        message.replay(now)
        await repository.save_message(message)
        _audit(uow, cmd.actor, "webhook_message.replayed", endpoint, before, {"message_id": message.id})
        await uow.commit()
    webhooks.wake()
    return message


async def replay_failed_since(
    cmd: ReplayFailedSince, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> list[Message]:
    now = webhooks.clock()
    async with uow:
        repository = WebhookRepository(uow.connection)
        endpoint = await _endpoint(repository, cmd.tenant_id, cmd.endpoint_id)
        messages = await repository.failed_since(endpoint_id=endpoint.id, since=cmd.since)
        for message in messages:
            message.replay(now)
            await repository.save_message(message)
        if messages:
            _audit(
                uow,
                cmd.actor,
                "webhook_messages.replayed",
                endpoint,
                None,
                {"since": cmd.since, "messages": len(messages)},
            )
        await uow.commit()
    webhooks.wake()
    return messages


async def send_test_message(
    cmd: SendTestMessage, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> Message:
    now = webhooks.clock()
    async with uow:
        repository = WebhookRepository(uow.connection)
        endpoint = await _endpoint(repository, cmd.tenant_id, cmd.endpoint_id)
        message = Message(
            id=new_id(),
            endpoint_id=endpoint.id,
            tenant_id=endpoint.tenant_id,
            event_id=new_id(),
            event_type=TEST_TYPE,
            subject=None,
            body=webhook_body(TEST_TYPE, timestamp=now, data={"endpoint_id": endpoint.id}),
            created_at=now,
            next_attempt_at=now,
        )
        await repository.add_messages([message])
        _audit(uow, cmd.actor, "webhook_endpoint.tested", endpoint, None, {"message_id": message.id})
        await uow.commit()
    webhooks.wake()
    return message


async def claim_due_messages(
    cmd: ClaimDueMessages, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> list[Delivery]:
    now = webhooks.clock()
    async with uow:
        claimed = await WebhookRepository(uow.connection).claim(
            now=now,
            lease_until=now + timedelta(seconds=cmd.lease_seconds),
            limit=cmd.limit,
            per_endpoint=cmd.per_endpoint,
            busy=cmd.busy,
            sending=cmd.sending,
        )
        await uow.commit()
    return [Delivery(message, endpoint) for message, endpoint in claimed]


async def record_outcome(
    cmd: RecordOutcome, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> Message:
    """Log the attempt, schedule the message's next one or settle it, and keep the endpoint's health."""
    [message] = await _record(
        (cmd,), uow=uow, webhooks=webhooks, missing=lambda message_id: f"there is no message {message_id}"
    )
    return message


async def record_outcomes(
    cmd: RecordOutcomes, *, uow: IntegrationsUnitOfWork, webhooks: WebhookRuntime
) -> list[Message]:
    """`record_outcome` for many attempts in one transaction: each message and endpoint is read once.

    A message that is gone (its endpoint deleted meanwhile) is skipped rather than failing the others.
    """
    return await _record(cmd.outcomes, uow=uow, webhooks=webhooks, missing=None)


async def _record(
    commands: Sequence[RecordOutcome],
    *,
    uow: IntegrationsUnitOfWork,
    webhooks: WebhookRuntime,
    missing: Callable[[str], str] | None,
) -> list[Message]:
    if not commands:
        return []
    now = webhooks.clock()
    async with uow:
        repository = WebhookRepository(uow.connection)
        messages = await repository.messages_by_id({cmd.message_id for cmd in commands}, lock=True)
        if missing is not None:
            for cmd in commands:
                if cmd.message_id not in messages:
                    raise WebhookMessageNotFound(missing(cmd.message_id))
        endpoints = await repository.endpoints_by_id(
            {message.endpoint_id for message in messages.values()}, lock=True
        )
        health = {endpoint.id: _health(endpoint) for endpoint in endpoints.values()}
        attempts: list[tuple[Attempt, Message]] = []
        recorded: dict[str, Message] = {}
        for cmd in commands:
            message = messages.get(cmd.message_id)
            if message is None:
                continue
            at = cmd.at or now
            outcome = Outcome(
                status=cmd.status,
                latency_ms=cmd.latency_ms,
                snippet=cmd.snippet,
                error=cmd.error,
                retry_after=timedelta(seconds=cmd.retry_after_seconds)
                if cmd.retry_after_seconds is not None
                else None,
            )
            attempts.append(
                (
                    Attempt(
                        new_id(),
                        message.id,
                        at,
                        outcome.status,
                        outcome.latency_ms,
                        outcome.snippet,
                        outcome.error,
                    ),
                    message,
                )
            )
            if message.state is MessageState.PENDING:
                message.record(outcome, at, random=webhooks.random)
            recorded[message.id] = message
            endpoint = endpoints.get(message.endpoint_id)
            if endpoint is not None and endpoint.enabled:
                if outcome.succeeded:
                    endpoint.succeeded(at)
                else:
                    endpoint.failed(at)
                if outcome.gone:
                    _disable(uow, endpoint, "the endpoint answered 410 Gone", at)
                elif endpoint.failing_too_long(at):
                    _disable(uow, endpoint, "every delivery failed for 5 days", at)
        await repository.add_attempts(attempts)
        await repository.settle_messages(list(recorded.values()))
        await repository.save_health(
            [endpoint for endpoint in endpoints.values() if _health(endpoint) != health[endpoint.id]]
        )
        await uow.commit()
    return [messages[cmd.message_id] for cmd in commands if cmd.message_id in messages]


def _health(endpoint: Endpoint) -> tuple[object, ...]:
    """What an outcome can change on an endpoint: it is written back only when this changed."""
    return (
        endpoint.enabled,
        endpoint.disabled_reason,
        endpoint.failing_since,
        endpoint.consecutive_failures,
        endpoint.circuit_open_until,
    )


def _disable(uow: IntegrationsUnitOfWork, endpoint: Endpoint, reason: str, now: datetime) -> None:
    endpoint.disable(reason, now)
    uow.emit(
        WebhookEndpointDisabled(endpoint_id=endpoint.id, url=endpoint.url, reason=reason),
        tenant_id=endpoint.tenant_id,
    )
    # Identity tells the tenant's admins (it knows who they are); a support ticket opens for it too.
    uow.audit(
        tenant_id=endpoint.tenant_id,
        actor="system",
        action="webhook_endpoint.disabled",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        before={"enabled": True},
        after={"enabled": False, "reason": reason},
    )


def _audit(
    uow: IntegrationsUnitOfWork,
    actor: str,
    action: str,
    endpoint: Endpoint,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    uow.audit(
        tenant_id=endpoint.tenant_id,
        actor=actor,
        action=action,
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        before=before,
        after=after,
    )


HANDLERS: dict[type[Command], Handler] = {
    StoreWebhookMessages: store_webhook_messages,
    RegisterEndpoint: register_endpoint,
    ChangeEndpoint: change_endpoint,
    DeleteEndpoint: delete_endpoint,
    RotateSecret: rotate_secret,
    ReplayMessage: replay_message,
    ReplayFailedSince: replay_failed_since,
    SendTestMessage: send_test_message,
    ClaimDueMessages: claim_due_messages,
    RecordOutcome: record_outcome,
    RecordOutcomes: record_outcomes,
}
