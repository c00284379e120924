"""The unit of work: one transaction that holds the state change, its outbox events and its inbox mark."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from pydantic_core import to_jsonable_python
from sqlalchemy import Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from doorstep.contracts.audit import AuditRecorded
from doorstep.kernel import context
from doorstep.kernel.aggregate import Aggregate
from doorstep.kernel.clock import utcnow
from doorstep.kernel.messages import CloudEvent, Event


class SqlUnitOfWork:
    """Open with `async with`; nothing is kept unless `commit()` is called inside the block.

    Subclasses add their repositories in `_open` and list them in `_tracked`.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        service: str,
        outbox: Table,
        inbox: Table,
        notify_channel: str | None = None,
        after_commit: Callable[[], None] = lambda: None,
        causing_message: CloudEvent | None = None,
    ) -> None:
        self._engine = engine
        self.service = service
        self._source = f"/doorstep/{service}"
        self._outbox = outbox
        self._inbox = inbox
        self._notify_channel = notify_channel
        self._after_commit = after_commit
        self.causing_message = causing_message
        self._pending: list[CloudEvent] = []
        self._also_handled: list[CloudEvent] = []
        self._connection: AsyncConnection | None = None

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._connection

    async def __aenter__(self) -> Self:
        # A Core connection, not an ORM session: repositories map rows themselves, and the session's
        # bookkeeping cost more CPU per order than the statements did.
        self._connection = await self._engine.connect()
        await self._connection.begin()
        self._pending = []
        self._also_handled = []
        self._open(self._connection)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        connection, self._connection = self.connection, None
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            await connection.close()

    def _open(self, connection: AsyncConnection) -> None:
        """Build repositories on the new connection."""

    def _tracked(self) -> Iterable[Aggregate]:
        """Aggregates loaded or added in this unit of work, whose events are collected at commit."""
        return ()

    def emit(self, event: Event, *, tenant_id: str) -> CloudEvent:
        """Queue an event for the outbox of this transaction."""
        causing = self.causing_message
        envelope = CloudEvent.wrap(
            event,
            source=self._source,
            tenant_id=tenant_id,
            correlation_id=context.correlation_id.get() or (causing.correlationid if causing else None),
            causation_id=causing.id if causing else context.causation_id.get(),
        )
        self._pending.append(envelope)
        return envelope

    def audit(
        self,
        *,
        tenant_id: str,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        """Record who changed what in the audit trail, in this transaction: no change, no entry."""
        causing = self.causing_message
        self.emit(
            audit_entry(
                service=self.service,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                before=before,
                after=after,
                request_id=context.correlation_id.get() or (causing.correlationid if causing else None),
            ),
            tenant_id=tenant_id,
        )

    async def already_handled(self) -> bool:
        """True when the causing message was handled before (its id is in the inbox)."""
        if self.causing_message is None:
            return False
        found = await self.connection.scalar(
            select(self._inbox.c.message_id).where(self._inbox.c.message_id == self.causing_message.id)
        )
        return found is not None

    async def handled_ids(self, message_ids: Collection[str]) -> set[str]:
        """Which of these message ids are in the inbox already: one read for a batch of messages."""
        if not message_ids:
            return set()
        found = await self.connection.scalars(
            select(self._inbox.c.message_id).where(self._inbox.c.message_id.in_(list(message_ids)))
        )
        return set(found)

    def mark_handled(self, messages: Iterable[CloudEvent]) -> None:
        """Record these messages in the inbox at commit, besides the causing message: for a consumer that
        handles several delivered messages in one transaction. Like the causing message's mark, a
        message that is in the inbox already fails the commit (IntegrityError) and nothing is kept; the
        consumer then tries again, leaving out what `handled_ids` finds."""
        self._also_handled.extend(messages)

    async def commit(self) -> list[CloudEvent]:
        for aggregate in self._tracked():
            while aggregate.events:
                self.emit(aggregate.events.pop(0), tenant_id=aggregate.tenant_id)
        connection = self.connection
        now = utcnow()
        handled = (
            self._also_handled
            if self.causing_message is None
            else [self.causing_message, *self._also_handled]
        )
        if handled:
            await connection.execute(
                insert(self._inbox),
                [
                    {
                        "message_id": message.id,
                        "type": message.type,
                        "tenant_id": message.tenantid,
                        "handled_at": now,
                    }
                    for message in handled
                ],
            )
        published = self._pending
        if published:
            await connection.execute(
                insert(self._outbox),
                [
                    {
                        "id": envelope.id,
                        "type": envelope.type,
                        "tenant_id": envelope.tenantid,
                        "envelope": envelope.model_dump_json(),
                        "created_at": now,
                    }
                    for envelope in published
                ],
            )
            if self._notify_channel is not None:
                # NOTIFY is transactional: the relay wakes only once these rows are visible.
                await connection.execute(
                    text("SELECT pg_notify(:channel, '')"), {"channel": self._notify_channel}
                )
        await connection.commit()
        self._pending = []
        self._also_handled = []
        if published:
            self._after_commit()
        return published

    async def rollback(self) -> None:
        self._pending = []
        self._also_handled = []
        await self.connection.rollback()


def audit_entry(
    *,
    service: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    request_id: str | None,
) -> AuditRecorded:
    """An audit event stamped with where the current request came from and the time now.

    `request_id` is the correlation id: the id of the request being answered or, for a consumer
    handling an event, of the request that started the chain. A consumer has no origin (no ip).
    """
    origin = context.origin.get()
    return AuditRecorded(
        service=service,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=_json_safe(before),
        after=_json_safe(after),
        ip=origin.ip if origin else None,
        user_agent=origin.user_agent if origin else None,
        request_id=request_id,
        occurred_at=utcnow(),
    )


def _json_safe(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    safe: dict[str, Any] = to_jsonable_python(dict(values))
    return safe


# --- Consumers that handle a delivery batch in one unit of work -------------------------------------------


@dataclass(eq=False, slots=True)
class DeliveryBatch:
    """Events a broker took from one consumer's queue together, in order. The broker sets it in
    `delivery_batch` while it calls the consumer's handler for each of them in turn (the all-in-one
    broker does), so that a handler made with `handle_together` can take the events after the current
    one into the same unit of work.
    """

    events: Sequence[CloudEvent]
    # Per `handle_together` handler: the ids it handled ahead of their turn, and whether one of its
    # batches failed, after which it handles the rest of this delivery one event at a time.
    handled: dict[object, set[str]] = field(default_factory=dict)
    one_by_one: set[object] = field(default_factory=set)
    _positions: dict[str, int] | None = None

    def ahead(
        self,
        envelope: CloudEvent,
        *,
        skip: Collection[str] = (),
        accepts: Callable[[CloudEvent], bool] | None = None,
    ) -> list[CloudEvent]:
        """`envelope` and the events after it that `accepts` (by default: of its type), each once, in
        the order delivered, leaving out the ids in `skip`."""
        if self._positions is None:
            self._positions = {}
            for index, event in enumerate(self.events):
                self._positions.setdefault(event.id, index)
        start = self._positions.get(envelope.id)
        if start is None:
            return [envelope]
        together: dict[str, CloudEvent] = {}
        for event in self.events[start:]:
            wanted = event.type == envelope.type if accepts is None else accepts(event)
            if wanted and event.id not in skip:
                together.setdefault(event.id, event)
        return list(together.values())


delivery_batch: ContextVar[DeliveryBatch | None] = ContextVar("delivery_batch", default=None)

BatchHandler = Callable[[Sequence[CloudEvent]], Awaitable[None]]


def handle_together(
    handle: BatchHandler, *, accepts: Callable[[CloudEvent], bool] | None = None
) -> Callable[[CloudEvent], Awaitable[None]]:
    """An event handler that hands `handle` the rest of its delivery batch at once.

    `handle(envelopes)` must handle all the envelopes it gets in one unit of work, each idempotently
    (by the inbox). Outside a `DeliveryBatch` it gets `[event]`. Within one it gets the event and the
    later events it has not handled yet that `accepts` (by default: those of the same type; a handler
    whose effects follow the order of several types accepts all of them), in the order delivered;
    when their turn comes, the handler
    returns at once. At-least-once is as before: each event's effect has committed before its own call
    returns. If a batch fails, the event is handled alone, and so is every later one of that delivery,
    so that the broker retries and dead-letters only an event that fails on its own.
    """
    return _Together(handle, accepts)


class _Together:
    def __init__(self, handle: BatchHandler, accepts: Callable[[CloudEvent], bool] | None) -> None:
        self._handle = handle
        self._accepts = accepts

    async def __call__(self, envelope: CloudEvent) -> None:
        batch = delivery_batch.get()
        if batch is None:
            await self._handle([envelope])
            return
        handled = batch.handled.setdefault(self, set())
        if envelope.id in handled:
            return
        if self not in batch.one_by_one:
            together = batch.ahead(envelope, skip=handled, accepts=self._accepts)
            if len(together) > 1:
                try:
                    await self._handle(together)
                except Exception:
                    batch.one_by_one.add(self)
                else:
                    handled.update(event.id for event in together)
                    return
        await self._handle([envelope])
        handled.add(envelope.id)
