"""Between AMQP messages and Doorstep's CloudEvents and dead letters: bodies, ids, headers, reasons."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, HeadersType
from pydantic import ValidationError

from doorstep.kernel.broker import DeadLetter
from doorstep.kernel.clock import utcnow
from doorstep.kernel.messages import CloudEvent

CONTENT_TYPE = "application/cloudevents+json"
# A dead letter whose body is not a CloudEvent still has to be listable, so it is shown wrapped in this type.
UNREADABLE_EVENT_TYPE = "doorstep.broker.unreadable.v1"

ERROR_HEADER = "x-doorstep-error"
ATTEMPTS_HEADER = "x-doorstep-attempts"
CONSUMER_HEADER = "x-doorstep-consumer"
DEAD_LETTERED_AT_HEADER = "x-doorstep-dead-lettered-at"
ROUTING_KEY_HEADER = "x-doorstep-routing-key"
_MAX_ERROR_LENGTH = 500


def outgoing_message(event: CloudEvent) -> aio_pika.Message:
    return aio_pika.Message(
        event.model_dump_json().encode(),
        content_type=CONTENT_TYPE,
        message_id=event.id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=event.time,
        type=event.type,
        correlation_id=event.correlationid,
    )


def copy_message(message: AbstractIncomingMessage, headers: HeadersType) -> aio_pika.Message:
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        message_id=message_key(message),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=message.timestamp,
        type=message.type,
        correlation_id=message.correlation_id,
        app_id=message.app_id,
    )


def delivery_attempt(message: AbstractIncomingMessage) -> int:
    count = (message.headers or {}).get("x-delivery-count")
    return count + 1 if isinstance(count, int) else 1


def message_key(message: AbstractIncomingMessage) -> str:
    # A message published without an id still needs a stable handle for listing and replay.
    if message.message_id:
        return message.message_id
    return "sha256:" + hashlib.sha256(message.body).hexdigest()[:32]


def without_delivery_history(headers: HeadersType | None) -> HeadersType:
    """Drop the headers that count or explain past deliveries, so a copy starts afresh; keep where it came from."""
    return {
        name: value
        for name, value in (headers or {}).items()
        if name not in {"x-delivery-count", "x-death"}
        and not name.startswith(("x-first-death-", "x-last-death-", "x-doorstep-"))
    } | routing_key_header(headers)


def routing_key_header(headers: HeadersType | None) -> HeadersType:
    routing_key = (headers or {}).get(ROUTING_KEY_HEADER)
    return {ROUTING_KEY_HEADER: routing_key} if isinstance(routing_key, str) else {}


def original_routing_key(message: AbstractIncomingMessage) -> str:
    recorded = (message.headers or {}).get(ROUTING_KEY_HEADER)
    return recorded if isinstance(recorded, str) else message.routing_key or ""


def latest_death(headers: HeadersType) -> dict[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return deaths[0]
    return {}


def dead_lettered_at(
    headers: HeadersType, death: dict[str, Any], message: AbstractIncomingMessage
) -> datetime:
    recorded = headers.get(DEAD_LETTERED_AT_HEADER)
    if isinstance(recorded, str):
        try:
            return datetime.fromisoformat(recorded)
        except ValueError:
            pass
    died = death.get("time")
    if isinstance(died, datetime):
        return died
    if isinstance(message.timestamp, datetime):
        return message.timestamp
    return utcnow()


def event_or_placeholder(key: str, message: AbstractIncomingMessage) -> CloudEvent:
    try:
        return CloudEvent.model_validate_json(message.body)
    except ValidationError:
        routing_key = (message.headers or {}).get(ROUTING_KEY_HEADER)
        return CloudEvent(
            id=key,
            source="urn:doorstep:broker",
            type=UNREADABLE_EVENT_TYPE,
            tenantid="",
            data={
                "routing_key": routing_key if isinstance(routing_key, str) else None,
                "body": message.body.decode("utf-8", errors="replace"),
            },
        )


def describe_invalid(error: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)
    )
    return _truncate(f"malformed CloudEvent: {problems}")


def describe_error(error: BaseException) -> str:
    return _truncate(f"{type(error).__name__}: {error}")


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_LENGTH else text[: _MAX_ERROR_LENGTH - 1] + "…"


def to_dead_letter(consumer: str, message: AbstractIncomingMessage, *, delivery_limit: int) -> DeadLetter:
    """Read a message of a dead-letter queue, whether this code or the broker's delivery limit put it there."""
    headers = message.headers or {}
    death = latest_death(headers)
    key = message_key(message)
    reason = str(
        headers.get(ERROR_HEADER) or death.get("reason") or headers.get("x-first-death-reason") or "unknown"
    )
    recorded = headers.get(ATTEMPTS_HEADER)
    if isinstance(recorded, int):
        attempts = recorded
    elif reason == "delivery_limit":
        # A quorum queue dead-letters once the delivery count exceeds the limit: limit + 1 deliveries.
        attempts = delivery_limit + 1
    else:
        attempts = 0
    return DeadLetter(
        id=key,
        consumer=consumer,
        event=event_or_placeholder(key, message),
        reason=reason,
        attempts=attempts,
        dead_lettered_at=dead_lettered_at(headers, death, message),
    )
