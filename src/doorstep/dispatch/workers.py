"""Background work of the dispatch service while the app runs: offers that time out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI

from doorstep.dispatch.domain.job_commands import ExpireOffers
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.clock import utcnow

log = structlog.get_logger()

SWEEP_SECONDS = 2.0
BATCH = 100


class OfferExpiry:
    """Every `every` seconds, times out the offers whose time is up (a batch at a time until none is
    left), so the job waits for the next driver; a failed sweep is logged and tried at the next one."""

    def __init__(self, bus: MessageBus, *, every: float = SWEEP_SECONDS, batch: int = BATCH) -> None:
        self.bus = bus
        self.every = every
        self.batch = batch
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """Expire everything due now; how many jobs changed."""
        total = 0
        while True:
            changed: int = await self.bus.handle(ExpireOffers(now=utcnow(), limit=self.batch))
            total += changed
            if changed < self.batch:
                return total

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dispatch-offer-expiry")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                expired = await self.sweep()
                if expired:
                    log.info("offers_expired", jobs=expired)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("offer_expiry_failed")
            await asyncio.sleep(self.every)


def offer_expiry(bus: MessageBus, *, every: float = SWEEP_SECONDS) -> APIRouter:
    """A router without routes whose lifespan runs the offer expiry (as `app.state.offer_expiry`)."""
    expiry = OfferExpiry(bus, every=every)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.offer_expiry = expiry
        await expiry.start()
        try:
            yield
        finally:
            await expiry.close()

    return APIRouter(lifespan=lifespan)
