"""Endpoints, messages and attempts: rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.integrations.adapters.claims import LeasedQueue
from doorstep.integrations.outbound.domain import Attempt, Endpoint, Message, MessageState
from doorstep.integrations.outbound.tables import webhook_attempts, webhook_endpoints, webhook_messages

# Deliveries of one order (subject) to one endpoint keep their order.
QUEUE = LeasedQueue(webhook_messages, queue=("endpoint_id", "subject"))


class WebhookRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    # --- endpoints ---------------------------------------------------------------------------------
    async def add_endpoint(self, endpoint: Endpoint) -> None:
        await self.connection.execute(insert(webhook_endpoints).values(_endpoint_row(endpoint)))

    async def save_endpoint(self, endpoint: Endpoint) -> None:
        await self.connection.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint.id)
            .values(_endpoint_row(endpoint))
        )

    async def delete_endpoint(self, endpoint: Endpoint) -> None:
        await self.connection.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint.id))
        pending = webhook_messages.c.state == MessageState.PENDING.value
        await self.connection.execute(
            update(webhook_messages)
            .where(webhook_messages.c.endpoint_id == endpoint.id, pending)
            .values(state=MessageState.FAILED.value, last_error="the endpoint was deleted", lease_until=None)
        )

    async def endpoint(self, *, tenant_id: str, endpoint_id: str, lock: bool = False) -> Endpoint | None:
        query = select(webhook_endpoints).where(
            webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id
        )
        if lock:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        return endpoint_from_row(row) if row else None

    async def enabled_endpoints(self, tenant_ids: Collection[str]) -> list[Endpoint]:
        rows = await self.connection.execute(
            select(webhook_endpoints)
            .where(webhook_endpoints.c.tenant_id.in_(list(tenant_ids)), webhook_endpoints.c.enabled.is_(True))
            .order_by(webhook_endpoints.c.id)
        )
        return [endpoint_from_row(row) for row in rows]

    async def endpoints_by_id(
        self, endpoint_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Endpoint]:
        if not endpoint_ids:
            return {}
        # Locked in id order, so that two dispatchers locking overlapping sets cannot deadlock.
        query = (
            select(webhook_endpoints)
            .where(webhook_endpoints.c.id.in_(sorted(endpoint_ids)))
            .order_by(webhook_endpoints.c.id)
        )
        if lock:
            query = query.with_for_update()
        return {row.id: endpoint_from_row(row) for row in await self.connection.execute(query)}

    async def save_health(self, endpoints: Sequence[Endpoint]) -> None:
        """Write back what deliveries change on endpoints (their breaker, failures, enabled), all at once."""
        if not endpoints:
            return
        await self.connection.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.id == bindparam("endpoint_id")),
            [
                {
                    "endpoint_id": endpoint.id,
                    "enabled": endpoint.enabled,
                    "disabled_reason": endpoint.disabled_reason,
                    "failing_since": endpoint.failing_since,
                    "consecutive_failures": endpoint.consecutive_failures,
                    "circuit_open_until": endpoint.circuit_open_until,
                    "updated_at": endpoint.updated_at,
                }
                for endpoint in endpoints
            ],
        )

    # --- messages ----------------------------------------------------------------------------------
    async def stored_pairs(self, event_ids: Collection[str]) -> set[tuple[str, str]]:
        rows = await self.connection.execute(
            select(webhook_messages.c.endpoint_id, webhook_messages.c.event_id).where(
                webhook_messages.c.event_id.in_(list(event_ids))
            )
        )
        return {(row.endpoint_id, row.event_id) for row in rows}

    async def add_messages(self, messages: Sequence[Message]) -> None:
        if messages:
            await self.connection.execute(insert(webhook_messages), [_message_row(m) for m in messages])

    async def message(self, *, message_id: str, lock: bool = False) -> Message | None:
        query = select(webhook_messages).where(webhook_messages.c.id == message_id)
        if lock:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        return message_from_row(row) if row else None

    async def messages_by_id(self, message_ids: Collection[str], *, lock: bool = False) -> dict[str, Message]:
        if not message_ids:
            return {}
        query = (
            select(webhook_messages)
            .where(webhook_messages.c.id.in_(sorted(message_ids)))
            .order_by(webhook_messages.c.id)
        )
        if lock:
            query = query.with_for_update()
        return {row.id: message_from_row(row) for row in await self.connection.execute(query)}

    async def settle_messages(self, messages: Sequence[Message]) -> None:
        """Store what attempts changed on messages, and free their leases, in one statement."""
        await QUEUE.settle(
            self.connection,
            [
                {
                    "id": message.id,
                    "state": message.state.value,
                    "attempts": message.attempts,
                    "next_attempt_at": message.next_attempt_at,
                    "last_status": message.last_status,
                    "last_error": message.last_error,
                    "delivered_at": message.delivered_at,
                }
                for message in messages
            ],
        )

    async def save_message(self, message: Message, *, lease_until: datetime | None = None) -> None:
        await self.connection.execute(
            update(webhook_messages)
            .where(webhook_messages.c.id == message.id)
            .values(**_message_row(message), lease_until=lease_until)
        )

    async def failed_since(self, *, endpoint_id: str, since: datetime) -> list[Message]:
        rows = await self.connection.execute(
            select(webhook_messages)
            .where(
                webhook_messages.c.endpoint_id == endpoint_id,
                webhook_messages.c.state == MessageState.FAILED.value,
                webhook_messages.c.created_at >= since,
            )
            .order_by(webhook_messages.c.seq)
        )
        return [message_from_row(row) for row in rows]

    async def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        per_endpoint: int,
        busy: Iterable[str] = (),
        sending: Iterable[str] = (),
    ) -> list[tuple[Message, Endpoint]]:
        """Lease the due messages that head their (endpoint, order) queue, at most `per_endpoint` each.

        An endpoint whose circuit has been open and may now be tried (half-open) gets one message, a
        probe, and none while the caller is still `sending` to it: a dead receiver costs one attempt per
        open period, not one for each of its due messages.

        An earlier message of the same order to the same endpoint that is still pending (waiting for
        its retry, or being delivered) holds the later ones back, so each order's deliveries keep their
        order. On PostgreSQL `SKIP LOCKED` lets several dispatchers claim side by side.

        Earliest due first: `ix_webhook_messages_due` (state, next_attempt_at) gives the rows in that
        order, so the scan stops after `limit * 4` candidates instead of sorting every due message, and
        `ix_webhook_messages_queue` answers the check for an earlier one. The full rows are read only
        for the messages taken (as the lease is written), and each endpoint once.
        """
        candidates = QUEUE.locked(
            select(
                webhook_messages.c.seq,
                webhook_messages.c.id,
                webhook_messages.c.endpoint_id,
                webhook_endpoints.c.circuit_open_until,
            )
            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_messages.c.endpoint_id)
            .where(
                *QUEUE.due(now),
                webhook_endpoints.c.enabled.is_(True),
                or_(
                    webhook_endpoints.c.circuit_open_until.is_(None),
                    webhook_endpoints.c.circuit_open_until <= now,
                ),
            )
            .order_by(webhook_messages.c.next_attempt_at, webhook_messages.c.seq)
            .limit(limit * 4)
        )
        busy = set(busy)
        if busy:
            candidates = candidates.where(webhook_messages.c.endpoint_id.not_in(busy))
        # Only ids here: most candidates past the per-endpoint caps are left, so full rows would be
        # read and converted for nothing. Of the earliest due, the oldest messages go first.
        taken: list[str] = []
        counts: dict[str, int] = {}
        sending = set(sending)
        for _seq, message_id, endpoint_id, opened in sorted(
            await self.connection.execute(candidates), key=lambda row: int(row.seq)
        ):
            half_open = opened is not None
            cap = (0 if endpoint_id in sending else 1) if half_open else per_endpoint
            if counts.get(endpoint_id, 0) >= cap or len(taken) >= limit:
                continue
            counts[endpoint_id] = counts.get(endpoint_id, 0) + 1
            taken.append(message_id)
        if not taken:
            return []
        leased = await self.connection.execute(
            QUEUE.lease(taken, until=lease_until).returning(*webhook_messages.c)
        )
        messages = sorted(leased, key=lambda row: int(row.seq))
        endpoints = await self.endpoints_by_id(counts)
        return [
            (message_from_row(row), endpoints[row.endpoint_id])
            for row in messages
            if row.endpoint_id in endpoints
        ]

    # --- attempts ----------------------------------------------------------------------------------
    async def add_attempts(self, attempts: Sequence[tuple[Attempt, Message]]) -> None:
        if not attempts:
            return
        await self.connection.execute(
            insert(webhook_attempts),
            [
                {
                    "id": attempt.id,
                    "message_id": attempt.message_id,
                    "endpoint_id": message.endpoint_id,
                    "tenant_id": message.tenant_id,
                    "attempted_at": attempt.attempted_at,
                    "status": attempt.status,
                    "latency_ms": attempt.latency_ms,
                    "snippet": attempt.snippet,
                    "error": attempt.error,
                }
                for attempt, message in attempts
            ],
        )

    # --- retention ---------------------------------------------------------------------------------
    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete up to `limit` messages whose last attempt was due before `before`, with their attempts:
        delivered ones, failed ones, and pending ones that no enabled endpoint will take any more.
        How many messages went.

        `ix_webhook_messages_due` (state, next_attempt_at) finds them; rows a dispatcher holds are
        skipped, and checked again as they are deleted, so a message replayed meanwhile stays.
        """
        messages = webhook_messages.c
        taken_by_no_one = ~exists().where(
            webhook_endpoints.c.id == messages.endpoint_id, webhook_endpoints.c.enabled.is_(True)
        )
        done = (
            messages.state.in_([state.value for state in MessageState]),
            messages.next_attempt_at < before,
            or_(messages.state != MessageState.PENDING.value, taken_by_no_one),
        )
        batch = (
            select(messages.seq)
            .where(*done)
            .limit(limit)
            .with_for_update(skip_locked=True, of=webhook_messages)
            .scalar_subquery()
        )
        deleted = await self.connection.scalars(
            delete(webhook_messages).where(messages.seq.in_(batch), *done).returning(messages.id)
        )
        message_ids = list(deleted)
        if message_ids:
            await self.connection.execute(
                delete(webhook_attempts).where(webhook_attempts.c.message_id.in_(message_ids))
            )
        return len(message_ids)


def _endpoint_row(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "tenant_id": endpoint.tenant_id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "description": endpoint.description,
        "secret": endpoint.secret,
        "previous_secret": endpoint.previous_secret,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "consecutive_failures": endpoint.consecutive_failures,
        "circuit_open_until": endpoint.circuit_open_until,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def endpoint_from_row(row: Row[Any]) -> Endpoint:
    return Endpoint(
        id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        event_types=list(row.event_types),
        description=row.description,
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_secret_expires_at=_aware(row.previous_secret_expires_at),
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        failing_since=_aware(row.failing_since),
        consecutive_failures=row.consecutive_failures,
        circuit_open_until=_aware(row.circuit_open_until),
        created_at=_required(row.created_at),
        updated_at=_required(row.updated_at),
    )


def _message_row(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "endpoint_id": message.endpoint_id,
        "tenant_id": message.tenant_id,
        "event_id": message.event_id,
        "event_type": message.event_type,
        "subject": message.subject,
        "body": message.body,
        "created_at": message.created_at,
        "next_attempt_at": message.next_attempt_at,
        "state": message.state.value,
        "attempts": message.attempts,
        "last_status": message.last_status,
        "last_error": message.last_error,
        "delivered_at": message.delivered_at,
    }


def message_from_row(row: Row[Any]) -> Message:
    return Message(
        id=row.id,
        endpoint_id=row.endpoint_id,
        tenant_id=row.tenant_id,
        event_id=row.event_id,
        event_type=row.event_type,
        subject=row.subject,
        body=row.body,
        created_at=_required(row.created_at),
        next_attempt_at=_required(row.next_attempt_at),
        state=MessageState(row.state),
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        delivered_at=_aware(row.delivered_at),
    )


def attempt_from_row(row: Row[Any]) -> Attempt:
    return Attempt(
        id=row.id,
        message_id=row.message_id,
        attempted_at=_required(row.attempted_at),
        status=row.status,
        latency_ms=row.latency_ms,
        snippet=row.snippet,
        error=row.error,
    )


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _required(value: datetime) -> datetime:
    aware = _aware(value)
    assert aware is not None
    return aware
