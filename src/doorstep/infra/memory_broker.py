"""The all-in-one broker: in-process fan-out, durable where it matters.

`publish` returns once every subscribed consumer has handled the event (or dead-lettered it), so the
outbox relay marks a row published only after its effects are committed: a crash loses nothing, the
relay sends the row again and the inboxes drop the repeat. Dead letters live in a SQLite table so the
`doorstep events` commands can list and replay them from another process.

Each consumer takes whatever waits in its queue as one delivery batch (`DeliveryBatch`): its handler is
still called once per event, in order, but a handler made with `handle_together` stores the rest of the
batch in the same transaction, instead of one transaction per event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from doorstep.infra.database import sqlite_engine
from doorstep.kernel.broker import DeadLetter, DeadLetterNotFound, EventHandler, retry_delay, topic_matches
from doorstep.kernel.clock import utcnow
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.unit_of_work import DeliveryBatch, delivery_batch

log = structlog.get_logger()

_metadata = MetaData()
dead_letters_table = Table(
    "dead_letters",
    _metadata,
    Column("id", String(36), primary_key=True),
    Column("consumer", String(100), primary_key=True),
    Column("envelope", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("dead_lettered_at", DateTime(timezone=True), nullable=False),
    Column("replay_requested_at", DateTime(timezone=True), nullable=True),
)


@dataclass
class _Subscription:
    consumer: str
    patterns: tuple[str, ...]
    handler: EventHandler
    queue: asyncio.Queue[tuple[CloudEvent, asyncio.Future[None]]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class MemoryBroker:
    def __init__(
        self,
        *,
        dead_letter_url: str,
        delivery_limit: int = 5,
        replay_poll_seconds: float = 1.0,
        retry_backoff: float = 0.1,
        max_batch: int = 500,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._max_batch = max_batch
        self._retry_backoff = retry_backoff
        self._dead_letter_url = dead_letter_url
        self._delivery_limit = delivery_limit
        self._replay_poll_seconds = replay_poll_seconds
        self._subscriptions: list[_Subscription] = []
        self._engine: AsyncEngine | None = None
        self._replayer: asyncio.Task[None] | None = None

    def subscribe(self, consumer: str, patterns: Sequence[str], handler: EventHandler) -> None:
        self._subscriptions.append(_Subscription(consumer, tuple(patterns), handler))

    async def start(self) -> None:
        engine = await self._store()
        del engine
        for subscription in self._subscriptions:
            subscription.task = asyncio.create_task(self._consume(subscription), name=subscription.consumer)
        if self._subscriptions:
            self._replayer = asyncio.create_task(self._replay_requested(), name="dead-letter-replayer")

    async def close(self) -> None:
        tasks = [s.task for s in self._subscriptions if s.task] + ([self._replayer] if self._replayer else [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in self._subscriptions:
            subscription.task = None
        self._replayer = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def ping(self) -> bool:
        return all(s.task is not None and not s.task.done() for s in self._subscriptions)

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        if self._subscriptions and any(s.task is None for s in self._subscriptions):
            raise RuntimeError("broker not started: its consumers would never take these events")
        waiting: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()
        for event in events:
            for subscription in self._subscriptions:
                if any(topic_matches(pattern, event.type) for pattern in subscription.patterns):
                    done: asyncio.Future[None] = loop.create_future()
                    subscription.queue.put_nowait((event, done))
                    waiting.append(done)
        if waiting:
            await asyncio.gather(*waiting)

    async def _consume(self, subscription: _Subscription) -> None:
        queue = subscription.queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            token = delivery_batch.set(DeliveryBatch([event for event, _ in batch]))
            try:
                for event, done in batch:
                    try:
                        await self._deliver(subscription, event)
                    except Exception as error:
                        if not done.done():
                            done.set_exception(error)
                    else:
                        if not done.done():
                            done.set_result(None)
            finally:
                delivery_batch.reset(token)

    async def _deliver(self, subscription: _Subscription, event: CloudEvent) -> None:
        for attempt in range(1, self._delivery_limit + 1):
            try:
                await subscription.handler(event)
                return
            except Exception as error:
                log.warning(
                    "event_handler_failed",
                    consumer=subscription.consumer,
                    event_id=event.id,
                    event_type=event.type,
                    attempt=attempt,
                    error=repr(error),
                )
                reason = repr(error)
                if attempt < self._delivery_limit:
                    await asyncio.sleep(retry_delay(self._retry_backoff, attempt))
        await self._dead_letter(subscription.consumer, event, reason[:2000], self._delivery_limit)

    async def _store(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = sqlite_engine(self._dead_letter_url, pool_size=1, immediate=True)
            async with self._engine.begin() as connection:
                await connection.run_sync(_metadata.create_all)
        return self._engine

    async def _dead_letter(self, consumer: str, event: CloudEvent, reason: str, attempts: int) -> None:
        engine = await self._store()
        table = dead_letters_table
        async with engine.begin() as connection:
            await connection.execute(
                delete(table).where(table.c.id == event.id, table.c.consumer == consumer)
            )
            await connection.execute(
                insert(table).values(
                    id=event.id,
                    consumer=consumer,
                    envelope=event.model_dump_json(),
                    reason=reason,
                    attempts=attempts,
                    dead_lettered_at=utcnow(),
                )
            )
        log.error("event_dead_lettered", consumer=consumer, event_id=event.id, event_type=event.type)

    async def dead_letters(self, consumer: str | None = None) -> list[DeadLetter]:
        engine = await self._store()
        table = dead_letters_table
        query = select(table).order_by(table.c.dead_lettered_at)
        if consumer is not None:
            query = query.where(table.c.consumer == consumer)
        async with engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            DeadLetter(
                id=row.id,
                consumer=row.consumer,
                event=CloudEvent.model_validate_json(row.envelope),
                reason=row.reason,
                attempts=row.attempts,
                dead_lettered_at=row.dead_lettered_at,
            )
            for row in rows
        ]

    async def replay_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """Mark for replay; the process that runs the consumer hands it back within a poll interval."""
        matches = [letter for letter in await self.dead_letters() if letter.id == dead_letter_id]
        if not matches:
            raise DeadLetterNotFound(dead_letter_id)
        engine = await self._store()
        table = dead_letters_table
        async with engine.begin() as connection:
            await connection.execute(
                update(table).where(table.c.id == dead_letter_id).values(replay_requested_at=utcnow())
            )
        return matches[0]

    async def _replay_requested(self) -> None:
        table = dead_letters_table
        by_consumer = {s.consumer: s for s in self._subscriptions}
        while True:
            try:
                engine = await self._store()
                async with engine.connect() as connection:
                    rows = (
                        await connection.execute(
                            select(table).where(table.c.replay_requested_at.is_not(None))
                        )
                    ).all()
                for row in rows:
                    subscription = by_consumer.get(row.consumer)
                    if subscription is None:
                        continue
                    handled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    subscription.queue.put_nowait((CloudEvent.model_validate_json(row.envelope), handled))
                    # Forget the dead letter only once its consumer is done with it: a crash before then
                    # leaves it marked, and it is replayed again on the next start. A consumer that fails
                    # again has rewritten the row without the mark, which this delete then leaves alone.
                    await handled
                    async with engine.begin() as connection:
                        await connection.execute(
                            delete(table).where(
                                table.c.id == row.id,
                                table.c.consumer == row.consumer,
                                table.c.replay_requested_at.is_not(None),
                            )
                        )
                    log.info("dead_letter_replayed", consumer=row.consumer, event_id=row.id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dead_letter_replay_failed")
            await asyncio.sleep(self._replay_poll_seconds)
