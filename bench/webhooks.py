"""Outbound status webhooks: deliveries per second to a local receiver, and the delay from event to delivery.

    .venv/bin/python bench/webhooks.py [--orders 500] [--endpoints 2] [--json] [--write-docs]

Runs the all-in-one platform in this process (SQLite, memory broker, the real dispatcher in the
background) and a receiver on 127.0.0.1 (aiohttp) allowed through DOORSTEP_WEBHOOKS_ALLOWED_NETWORKS.
Orders are placed through the API; every `order.created` goes to every endpoint. It reports:

- deliveries/s: messages delivered (2xx) per second, from the first order placed to the last delivery;
- event to delivery: from the event's time (the payload's `timestamp`, set when the orders service
  committed it) to its arrival at the receiver, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from doorstep.identity.domain.commands import CreateTenant
from doorstep.kernel.settings import Settings
from doorstep.runtime.app import build_app
from doorstep.runtime.services import build_services, make_broker
from intake import ORDER, machine, ms, percentile, say  # bench/intake.py: this folder is on sys.path
from report import replace_section


class Receiver:
    def __init__(self, expected: int) -> None:
        self.delays: list[float] = []
        self.arrivals: list[float] = []
        self.expected = expected
        self.done = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        sent = datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00"))
        self.delays.append(time.time() - sent.timestamp())
        self.arrivals.append(time.perf_counter())
        if len(self.arrivals) >= self.expected:
            self.done.set()
        return web.Response(status=204)


async def measure(orders: int, endpoints: int, concurrency: int) -> dict[str, Any]:
    receiver = Receiver(orders * endpoints)
    runner = web.AppRunner(web.Application(), access_log=None)
    runner.app.router.add_post("/{tail:.*}", receiver.handle)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory(prefix="doorstep-webhooks-bench-") as scratch:
        settings = Settings(
            data_dir=Path(scratch),
            public_url="http://testserver",
            log_level="WARNING",
            webhooks_allowed_networks=["127.0.0.1/32"],
            rate_limit_per_minute=10_000_000,  # measured is the webhook path, not the gateway's limits
            rate_limit_burst=1_000_000,
        )
        app = build_app(
            settings, build_services(settings, ("identity", "orders", "integrations")), make_broker(settings)
        )
        try:
            async with app.router.lifespan_context(app):
                services = app.state.services
                _, issued = await services["identity"].bus.handle(CreateTenant(name="Bench"))
                headers = {"Authorization": f"Bearer {issued.plaintext}"}
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                    for n in range(endpoints):
                        response = await client.post(
                            "/v1/integrations/webhook-endpoints",
                            json={
                                "url": f"http://127.0.0.1:{port}/hook/{n}",
                                "event_types": ["order.created"],
                            },
                            headers=headers,
                        )
                        assert response.status_code == 201, response.text
                    say(f"placing {orders} orders, {endpoints} endpoint(s)")
                    started = time.perf_counter()
                    queue = iter(range(orders))

                    async def place() -> None:
                        for n in queue:
                            body = {**ORDER, "external_id": f"WH-{n}"}
                            answer = await client.post("/v1/orders", json=body, headers=headers)
                            assert answer.status_code == 201, answer.text

                    await asyncio.gather(*(place() for _ in range(concurrency)))
                    await asyncio.wait_for(receiver.done.wait(), timeout=300)
                    elapsed = max(receiver.arrivals) - started
        finally:
            await runner.cleanup()
    delivered = len(receiver.arrivals)
    return {
        "orders": orders,
        "endpoints": endpoints,
        "delivered": delivered,
        "seconds": round(elapsed, 2),
        "deliveries_per_second": round(delivered / elapsed),
        "event_to_delivery_ms": {
            "p50": ms(percentile(receiver.delays, 0.5)),
            "p99": ms(percentile(receiver.delays, 0.99)),
        },
    }


def markdown(result: dict[str, Any], box: dict[str, Any]) -> str:
    delay = result["event_to_delivery_ms"]
    return f"""Command: `.venv/bin/python bench/webhooks.py --orders {result["orders"]} --endpoints {result["endpoints"]} --write-docs`

Machine: {box["cpu_model"]}, {box["cpu_count"]} CPUs, {box["python"]}. All-in-one shape (SQLite, memory
broker) in one process with the receiver (aiohttp on 127.0.0.1), which answers 204 at once.

| orders | endpoints | deliveries | deliveries/s | event → delivery p50 | p99 |
|---:|---:|---:|---:|---:|---:|
| {result["orders"]} | {result["endpoints"]} | {result["delivered"]} | {result["deliveries_per_second"]} | {delay["p50"]} ms | {delay["p99"]} ms |
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--endpoints", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.orders, args.endpoints, args.concurrency))
    box = machine()
    if args.json:
        print(json.dumps({"result": result, "machine": box}, indent=2))
    else:
        print(markdown(result, box))
    if args.write_docs:
        replace_section("## Status webhooks", markdown(result, box))
    return 0


if __name__ == "__main__":
    sys.exit(main())
