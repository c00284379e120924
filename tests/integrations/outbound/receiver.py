"""A real HTTP receiver on 127.0.0.1 for status-webhook tests: answers by script, records every request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HANG = -1  # answer nothing until the sender gives up


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    hanging: int  # requests hanging at the receiver when this one arrived
    peer: object = None  # the sender's address and port: the same for requests on one connection

    @property
    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded

    @property
    def key(self) -> tuple[str, str | None]:
        data = self.payload["data"]
        order_id = data.get("order_id") or (data.get("order") or {}).get("id")
        return self.payload["type"], order_id


@dataclass
class Receiver:
    base_url: str = ""
    # path -> status for every request, or path -> {(type, order id): [status, ...]} answered in turn
    always: dict[str, int] = field(default_factory=dict)
    scripts: dict[str, dict[tuple[str, str | None], list[int]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    hanging: int = 0
    arrival: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int) -> None:
        """Until `count` requests have arrived in all."""
        while len(self.received) < count:
            self.arrival.clear()
            await self.arrival.wait()

    async def wait_at(self, path: str, count: int, *, timeout: float = 15.0) -> None:
        """Until `count` requests have arrived at `path`; an AssertionError after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.at(path)) < count:
                    self.arrival.clear()
                    await self.arrival.wait()
        except TimeoutError:
            arrived = len(self.at(path))
            raise AssertionError(f"{arrived} of {count} requests at {path} within {timeout} s") from None

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        entry = Received(request.path, dict(request.headers), body, self.hanging, peer)
        self.received.append(entry)
        self.arrival.set()
        script = self.scripts.get(request.path, {}).get(entry.key)
        status = script.pop(0) if script else self.always.get(request.path, 204)
        if status == HANG:
            self.hanging += 1
            try:
                await asyncio.sleep(5)
            finally:
                self.hanging -= 1
            status = 204
        return web.Response(status=status, text="boom" if status >= 500 else "")


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.base_url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
