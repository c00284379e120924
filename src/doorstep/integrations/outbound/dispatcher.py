"""The background worker that delivers due webhook messages.

Each delivery runs in its own task, so a receiver that takes 15 s to time out holds only its own
slots: at most `per_endpoint` messages per endpoint are in flight, and its circuit breaker keeps it out
of the claims once it keeps failing. Leases make several instances safe side by side.

Outcomes are written behind: a delivery that finishes hands its outcome to the flusher, which stores
every outcome waiting at that moment in one transaction (at once when it is idle; the next batch
gathers while one is being written). Until then the message keeps its lease, so nothing claims it or
the next message of its order; should the process die first, the lease runs out and the message is
sent again (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import structlog
from fastapi import APIRouter

from doorstep.integrations.adapters.workers import ClaimLoop, lifespan_router
from doorstep.integrations.outbound.handlers import (
    ClaimDueMessages,
    Delivery,
    RecordOutcome,
    RecordOutcomes,
    WebhookRuntime,
)
from doorstep.integrations.outbound.sender import WebhookSender
from doorstep.integrations.outbound.ssrf import parse_networks
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.settings import Settings

log = structlog.get_logger()


class Dispatcher:
    def __init__(
        self,
        *,
        bus: MessageBus,
        sender: WebhookSender,
        runtime: WebhookRuntime,
        timeout: float,
        concurrency: int = 200,
        per_endpoint: int = 16,
        poll_seconds: float = 1.0,
        batch_size: int = 200,
    ) -> None:
        self.bus = bus
        self.sender = sender
        self.runtime = runtime
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self._lease_seconds = timeout + 60
        self._in_flight: Counter[str] = Counter()
        # Message id -> endpoint id, from the claim until its outcome is stored: a half-open circuit's
        # probe is still out until then, and no second probe is claimed.
        self._unsettled: dict[str, str] = {}
        self._loop = ClaimLoop(
            name="webhook-dispatcher",
            claim=self._claim,
            run=self._deliver,
            concurrency=concurrency,
            poll_seconds=poll_seconds,
        )
        self._outcomes: list[RecordOutcome] = []
        self._outcomes_waiting = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        runtime.wake = self.wake

    def wake(self) -> None:
        self._loop.wake()

    async def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_when_waiting(), name="webhook-outcomes")
        self._loop.start()

    async def stop(self) -> None:
        """Stop claiming, wait for the deliveries under way (each is bounded by the timeout) and store
        their outcomes."""
        await self._loop.stop()
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            async with self._flush_lock:  # a batch being written is finished, not cut off
                flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        await self.flush()

    async def close(self) -> None:
        await self.stop()
        await self.sender.close()

    async def run_once(self) -> int:
        """Claim what is due now and deliver it; returns how many were delivered (for tests and tools)."""
        deliveries = await self._claim(self._loop.room)
        if deliveries:
            await asyncio.gather(*(self._deliver(delivery) for delivery in deliveries))
        await self.flush()
        return len(deliveries)

    async def flush(self) -> int:
        """Store the outcomes waiting, `batch_size` per transaction; how many were stored."""
        stored = 0
        async with self._flush_lock:
            while self._outcomes:
                batch = self._outcomes[: self.batch_size]
                del self._outcomes[: self.batch_size]
                try:
                    await self.bus.handle(RecordOutcomes(outcomes=tuple(batch)))
                except Exception:
                    # Their leases run out and the messages are sent again: at least once, never lost.
                    log.exception("webhook_outcomes_not_recorded", messages=[o.message_id for o in batch])
                else:
                    stored += len(batch)
                for outcome in batch:
                    self._unsettled.pop(outcome.message_id, None)
                self._loop.wake()  # the next message of the same order may be due now
        return stored

    async def _flush_when_waiting(self) -> None:
        while True:
            await self._outcomes_waiting.wait()
            self._outcomes_waiting.clear()
            await asyncio.sleep(0)  # deliveries finishing in this same turn of the loop join the batch
            await self.flush()

    async def _claim(self, room: int) -> list[Delivery]:
        if room <= 0:
            return []
        busy = tuple(endpoint for endpoint, count in self._in_flight.items() if count >= self.per_endpoint)
        sending = tuple(set(self._unsettled.values()))
        deliveries: list[Delivery] = await self.bus.handle(
            ClaimDueMessages(
                limit=room,
                per_endpoint=self.per_endpoint,
                lease_seconds=self._lease_seconds,
                busy=busy,
                sending=sending,
            )
        )
        for delivery in deliveries:
            self._in_flight[delivery.endpoint.id] += 1
            self._unsettled[delivery.message.id] = delivery.endpoint.id
        return deliveries

    async def _deliver(self, delivery: Delivery) -> None:
        message, endpoint = delivery.message, delivery.endpoint
        try:
            now = self.runtime.clock()
            outcome = await self.sender.send(
                url=endpoint.url,
                message_id=message.id,
                body=message.body.encode(),
                secrets=endpoint.signing_secrets(now),
                now=now,
            )
            log.info(
                "webhook_attempt",
                endpoint_id=endpoint.id,
                message_id=message.id,
                status=outcome.status,
                latency_ms=outcome.latency_ms,
                error=outcome.error,
            )
            self._outcomes.append(
                RecordOutcome(
                    message_id=message.id,
                    status=outcome.status,
                    latency_ms=outcome.latency_ms,
                    snippet=outcome.snippet,
                    error=outcome.error,
                    retry_after_seconds=outcome.retry_after.total_seconds() if outcome.retry_after else None,
                    at=self.runtime.clock(),
                )
            )
            self._outcomes_waiting.set()
        except Exception:
            # The lease runs out and the message is tried again; nothing is lost.
            log.exception("webhook_delivery_failed", message_id=message.id)
            self._unsettled.pop(message.id, None)
        finally:
            # A freed slot matters to the claims only where the slots had run out; otherwise the flush
            # that follows wakes the claims (the order's next message may be due then), and an extra
            # claim here would take the one SQLite writer for nothing.
            slots_were_full = self._in_flight[endpoint.id] >= self.per_endpoint or self._loop.full
            self._in_flight[endpoint.id] -= 1
            if self._in_flight[endpoint.id] <= 0:
                del self._in_flight[endpoint.id]
            if slots_were_full:
                self._loop.wake()


def webhook_runtime(settings: Settings) -> WebhookRuntime:
    return WebhookRuntime(allowed=parse_networks(settings.webhooks_allowed_networks))


def worker(settings: Settings, bus: MessageBus, runtime: WebhookRuntime) -> APIRouter:
    sender = WebhookSender(
        timeout=settings.webhooks_timeout_seconds, resolver=runtime.resolver, allowed=runtime.allowed
    )
    dispatcher = Dispatcher(
        bus=bus, sender=sender, runtime=runtime, timeout=settings.webhooks_timeout_seconds
    )
    return lifespan_router(dispatcher, state="webhook_dispatcher")
