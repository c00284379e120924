"""What the service's background senders share: a loop that claims due work and runs each piece in a
task of its own, and the route-less router whose lifespan runs such a worker with the app.

The status-webhook dispatcher and the status reporter differ in what they claim and how they send it;
claiming, the cap on work in flight, waking on news and polling otherwise are this one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

import structlog
from fastapi import APIRouter, FastAPI

log = structlog.get_logger()

Work = TypeVar("Work")


class ClaimLoop(Generic[Work]):
    """Claims up to the free slots with `claim(room)` and runs each piece with `run` in its own task,
    at most `concurrency` at once. A claim that comes back short (nothing else is due) or full slots
    make it wait until `wake()` or `poll_seconds`, whichever comes first."""

    def __init__(
        self,
        *,
        name: str,
        claim: Callable[[int], Awaitable[Sequence[Work]]],
        run: Callable[[Work], Coroutine[Any, Any, None]],
        concurrency: int,
        poll_seconds: float,
    ) -> None:
        self.name = name
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self._claim = claim
        self._run_one = run
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    @property
    def room(self) -> int:
        return self.concurrency - len(self._tasks)

    @property
    def full(self) -> bool:
        return self.room <= 0

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop claiming and wait for the work under way (each piece bounds its own time)."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            room = self.room
            try:
                claimed = await self._claim(room) if room > 0 else []
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claim_failed", worker=self.name)
                claimed = []
            for work in claimed:
                task = asyncio.create_task(self._run_one(work))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(claimed) < room or self.full:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_seconds)


class Worker(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


def lifespan_router(worker: Worker, *, state: str) -> APIRouter:
    """A router without routes whose lifespan runs `worker` while the app runs (after migrations), and
    keeps it as `app.state.<state>` for tests and tools."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setattr(app.state, state, worker)
        await worker.start()
        try:
            yield
        finally:
            await worker.close()

    return APIRouter(lifespan=lifespan)
