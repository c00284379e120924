"""Publishes committed outbox rows to the broker, in order, at least once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import Row, Select, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.infra.database import Database
from doorstep.kernel.broker import Broker
from doorstep.kernel.clock import utcnow
from doorstep.kernel.messages import CloudEvent

log = structlog.get_logger()

_PRUNE_EVERY = timedelta(minutes=10)


class OutboxRelay:
    """Claims unpublished rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several relays may run),
    publishes them with confirms, then marks them. A crash in between republishes; inboxes dedupe."""

    def __init__(
        self,
        *,
        database: Database,
        outbox: Table,
        broker: Broker,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        retention: timedelta = timedelta(days=7),
        linger_seconds: float = 0.005,
    ) -> None:
        self._linger_seconds = linger_seconds
        self._database = database
        self._outbox = outbox
        self._broker = broker
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retention = retention
        self._wakeup = asyncio.Event()
        # The background loop and a caller's publish_pending (tests' settle, a shutdown flush) must not
        # read the same unpublished rows side by side: on SQLite both would publish them.
        self._publishing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._last_prune = utcnow() - _PRUNE_EVERY

    def wake(self) -> None:
        self._wakeup.set()

    async def publish_pending(self) -> int:
        """Publish everything unpublished now; returns how many events went out."""
        total = 0
        async with self._publishing:
            while True:
                count = await self._publish_batch()
                total += count
                if count < self._batch_size:
                    return total

    async def _publish_batch(self) -> int:
        if self._database.dialect == "postgresql":
            return await self._publish_claimed_batch()
        return await self._publish_read_batch()

    def _unpublished(self) -> Select[tuple[int, str]]:
        outbox = self._outbox
        return (
            select(outbox.c.seq, outbox.c.envelope)
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.seq)
            .limit(self._batch_size)
        )

    # Core connections, not ORM sessions: a session's bookkeeping costs CPU on every batch and buys nothing.
    async def _publish_claimed_batch(self) -> int:
        async with self._database.writer_engine.begin() as connection:
            rows = (await connection.execute(self._unpublished().with_for_update(skip_locked=True))).all()
            if rows:
                await self._publish(rows)
                await self._mark(connection, rows)
        return len(rows)

    async def _publish_read_batch(self) -> int:
        # SQLite has one writer: holding it while consumers (maybe of this very service) handle the
        # events would deadlock, so read, publish, and only then take the writer to mark. One relay
        # runs per SQLite file.
        async with self._database.reader_engine.connect() as connection:
            rows = (await connection.execute(self._unpublished())).all()
        if rows:
            await self._publish(rows)
            async with self._database.writer_engine.begin() as connection:
                await self._mark(connection, rows)
        return len(rows)

    async def _publish(self, rows: Sequence[Row[tuple[int, str]]]) -> None:
        await self._broker.publish([CloudEvent.model_validate_json(row.envelope) for row in rows])

    async def _mark(self, connection: AsyncConnection, rows: Sequence[Row[tuple[int, str]]]) -> None:
        await connection.execute(
            update(self._outbox)
            .where(self._outbox.c.seq.in_([row.seq for row in rows]))
            .values(published_at=utcnow())
        )

    async def prune(self) -> int:
        cutoff = utcnow() - self._retention
        async with self._database.writer_engine.begin() as connection:
            result = await connection.execute(
                delete(self._outbox).where(self._outbox.c.published_at < cutoff)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def start(self) -> None:
        if self._database.dialect == "postgresql":
            await self._listen()
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._database.service}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _run(self) -> None:
        while True:
            try:
                await self.publish_pending()
                if utcnow() - self._last_prune >= _PRUNE_EVERY:
                    self._last_prune = utcnow()
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox_relay_failed", service=self._database.service)
                await asyncio.sleep(self._poll_seconds)
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that lands as the wait ends (a
            # wake() just before stop()), and the relay then polls forever while stop() awaits it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wakeup.wait()
            self._wakeup.clear()
            # Under load, commits arrive every few milliseconds: waiting a moment turns many one-event
            # batches into one batch, at the cost of that moment of latency.
            await asyncio.sleep(self._linger_seconds)

    async def _listen(self) -> None:
        import asyncpg

        dsn = self._database.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            self._listener = await asyncpg.connect(dsn)
            await self._listener.add_listener(
                self._database.outbox_channel, lambda *_args: self._wakeup.set()
            )
        except Exception:
            # Polling still publishes everything; LISTEN only makes it prompt.
            log.warning("outbox_listen_unavailable", service=self._database.service, exc_info=True)
            self._listener = None
