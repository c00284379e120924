"""Outbound status webhooks: deliveries per second at saturation, and event-to-delivery delay at a fixed rate.

    .venv/bin/python bench/webhooks.py [--orders 500] [--endpoints 2] [--duration 10] [--json] [--write-docs]

Runs the all-in-one platform in this process (SQLite, memory broker, the real dispatcher) and a receiver
on 127.0.0.1 (aiohttp, answering 204 at once) allowed through DOORSTEP_WEBHOOKS_ALLOWED_NETWORKS. Orders
are placed through the API; every `order.created` goes to every endpoint. It measures:

- saturation: with the dispatcher paused, a burst of `--orders` orders is placed and its messages
  stored; then the dispatcher starts, and deliveries/s is the messages delivered (2xx) divided by the
  time from its start until the last one arrived;
- fixed rate: open loop, orders placed at a fixed rate for `--duration` seconds so that deliveries come
  at half the measured saturation rate; each order is placed at its due time whether or not earlier
  ones were answered, and each delay runs from the event's time (the payload's `timestamp`, set by the
  orders service when it stored the event) to its arrival at the receiver (no coordinated omission);
  deliveries still missing 15 s after the last order count as never delivered;
- CPU per delivery: this process's CPU time from /proc over each phase, divided by the deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from sqlalchemy import func, select

from doorstep.identity.domain.commands import CreateTenant
from doorstep.integrations.outbound.dispatcher import Dispatcher
from doorstep.integrations.outbound.tables import webhook_messages
from doorstep.kernel.logging import configure_logging
from doorstep.kernel.settings import Settings
from doorstep.runtime.app import build_app
from doorstep.runtime.services import build_services, make_broker
from intake import ORDER, CpuMeter, machine, percentile, say  # bench/intake.py: this folder is on sys.path
from report import replace_section

DRAIN_SECONDS = 15.0

WHERE_THE_TIME_GOES = """Where a delivery's time goes (py-spy and cProfile on this machine):

- **Before** (the code before write-behind, same command, two runs: dispatcher alone 82 and 107
  deliveries/s at 11.9 and 9.2 ms of CPU per delivery; burst 81 and 90/s, p50 6,530 and 5,880 ms):
  every outcome was its own transaction on the one SQLite writer (read the message, read the endpoint,
  insert the attempt, update the message, update the endpoint; each statement several hand-offs to
  aiosqlite's thread and back), 57% of the delivery path's samples; the httpx request with its vetting
  took 32%, a log line per attempt the rest. Every claim sorted all due messages by `seq` and read full
  rows (and the endpoint's) for four times what it took; at most 8 messages per endpoint were in flight.
- **Now**: outcomes are written behind: every outcome waiting is stored in one transaction (one read of
  the messages, one of their endpoints, one insert of the attempts, one update of the messages, one of
  the endpoints whose health changed), at once when the writer is free, so a batch gathers while the
  previous one is written. A claim walks `ix_webhook_messages_due` in due order (no sort), reads only
  ids for the candidates and full rows only for those it takes (`UPDATE ... RETURNING`), each endpoint
  once. The sender is aiohttp with a keep-alive pool per (scheme, host, port, vetted address), DNS
  answers kept for a second, the address vetted on every attempt. 16 per endpoint and 200 in all may be
  in flight (still 12.5 dead endpoints before the slots run out). What is left is mostly aiohttp on
  both sides of the loopback and SQLAlchemy around a few statements per batch.
- **With intake in the same process** the orders' own work (the API, the outbox relay, the integrations
  consumer) and the in-process httpx client placing the orders take most of the core. Open loop, one
  order at a time, nothing batches, and every statement's hand-off to aiosqlite's thread costs kernel
  time: CPU per delivery is about twice the burst's, so half the burst's rate keeps the core nearly
  busy and the delays include queueing. At 45.2 deliveries/s (`--rate 45.2`) the delay was p50 29.2 ms,
  p99 45.0 ms (16.9 / 26.7 ms of it from stored to delivered); the code before gave 51.2 / 136 ms
  (21.9 / 56.7 ms) at the same rate."""


class Receiver:
    def __init__(self) -> None:
        self.expect(0)

    def expect(self, count: int) -> None:
        self.delays: list[float] = []
        self.arrivals: list[float] = []
        self.seen: dict[str, tuple[float, float]] = {}  # webhook-id: (event time, arrival), wall clock
        self.expected = count
        self.done = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        sent = datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00"))
        arrived = time.time()
        self.delays.append(arrived - sent.timestamp())
        self.seen[request.headers["webhook-id"]] = (sent.timestamp(), arrived)
        self.arrivals.append(time.perf_counter())
        if len(self.arrivals) >= self.expected:
            self.done.set()
        return web.Response(status=204)


def sig3(value: float) -> str:
    """Three significant figures with thousands separators: 0.912, 8.83, 18.2, 301, 5,650."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else "no answer"
    digits = 2 - math.floor(math.log10(abs(value)))
    rounded = round(value, digits)
    return f"{rounded:,.{max(digits, 0)}f}"


def ms(seconds: float) -> str:
    return "never delivered" if not math.isfinite(seconds) else f"{sig3(seconds * 1000)} ms"


def cpu_ms_per_delivery(cpu: dict[str, Any], deliveries: int) -> float:
    return 1000 * cpu["servers_cpu_s"] / deliveries if deliveries else math.nan


async def stored_messages(services: dict[str, Any]) -> int:
    async with services["integrations"].database.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(webhook_messages)) or 0)


async def stages(services: dict[str, Any], receiver: Receiver) -> dict[str, float]:
    """Where the delay went: from the event to its message being stored (orders, relay, broker,
    consumer), and from there to the receiver (claim and send), p50 and p99 of each."""
    async with services["integrations"].database.reader() as session:
        rows = await session.execute(
            select(webhook_messages.c.id, webhook_messages.c.created_at).where(
                webhook_messages.c.id.in_(list(receiver.seen))
            )
        )
        stored = {row.id: row.created_at.replace(tzinfo=UTC).timestamp() for row in rows}
    to_store = [stored[key] - event for key, (event, _) in receiver.seen.items() if key in stored]
    to_send = [arrived - stored[key] for key, (_, arrived) in receiver.seen.items() if key in stored]
    return {
        "event_to_stored_p50_s": percentile(to_store, 0.5),
        "event_to_stored_p99_s": percentile(to_store, 0.99),
        "stored_to_delivered_p50_s": percentile(to_send, 0.5),
        "stored_to_delivered_p99_s": percentile(to_send, 0.99),
    }


async def place_orders(client: httpx.AsyncClient, headers: dict[str, str], prefix: str, count: int) -> None:
    queue = iter(range(count))

    async def place() -> None:
        for n in queue:
            answer = await client.post(
                "/v1/orders", json={**ORDER, "external_id": f"{prefix}-{n}"}, headers=headers
            )
            assert answer.status_code == 201, answer.text

    await asyncio.gather(*(place() for _ in range(16)))


async def saturation(
    receiver: Receiver,
    dispatcher: Dispatcher,
    services: dict[str, Any],
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    orders: int,
    endpoints: int,
) -> dict[str, Any]:
    expected = orders * endpoints
    await dispatcher.stop()
    say(f"saturation: placing {orders} orders with the dispatcher paused")
    await place_orders(client, headers, "BURST", orders)
    deadline = time.perf_counter() + 120
    while (stored := await stored_messages(services)) < expected:
        assert time.perf_counter() < deadline, f"only {stored} of {expected} messages stored"
        await asyncio.sleep(0.05)
    receiver.expect(expected)
    say(f"saturation: delivering {expected} messages")
    meter = CpuMeter({"platform": os.getpid()})
    started = time.perf_counter()
    await dispatcher.start()
    await asyncio.wait_for(receiver.done.wait(), timeout=300)
    elapsed = max(receiver.arrivals) - started
    cpu = meter.read()
    delivered = len(receiver.arrivals)
    return {
        "deliveries": delivered,
        "seconds": round(elapsed, 3),
        "deliveries_per_second": round(delivered / elapsed, 1),
        "cpu_ms_per_delivery": round(cpu_ms_per_delivery(cpu, delivered), 3),
        "cpu": cpu,
    }


async def burst(
    receiver: Receiver,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    orders: int,
    endpoints: int,
) -> dict[str, Any]:
    """The whole pipeline at saturation: orders placed 16 at a time while the dispatcher delivers."""
    expected = orders * endpoints
    receiver.expect(expected)
    say(f"burst: placing {orders} orders with the dispatcher running")
    meter = CpuMeter({"platform": os.getpid()})
    started = time.perf_counter()
    await place_orders(client, headers, "FLOW", orders)
    placed = time.perf_counter() - started
    await asyncio.wait_for(receiver.done.wait(), timeout=300)
    elapsed = max(receiver.arrivals) - started
    cpu = meter.read()
    delivered = len(receiver.arrivals)
    return {
        "deliveries": delivered,
        "orders_per_second": round(orders / placed, 1),
        "seconds": round(elapsed, 3),
        "deliveries_per_second": round(delivered / elapsed, 1),
        "p50_s": percentile(receiver.delays, 0.5),
        "p99_s": percentile(receiver.delays, 0.99),
        "cpu_ms_per_delivery": round(cpu_ms_per_delivery(cpu, delivered), 3),
        "cpu": cpu,
    }


async def fixed_rate(
    receiver: Receiver,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    deliveries_per_second: float,
    endpoints: int,
    duration: float,
) -> dict[str, Any]:
    order_rate = deliveries_per_second / endpoints
    orders = max(1, round(order_rate * duration))
    expected = orders * endpoints
    receiver.expect(expected)
    say(f"fixed rate: {orders} orders at {order_rate:.1f}/s ({deliveries_per_second:.1f} deliveries/s)")
    failures: list[str] = []
    tasks: set[asyncio.Task[None]] = set()

    async def place(n: int) -> None:
        answer = await client.post("/v1/orders", json={**ORDER, "external_id": f"RATE-{n}"}, headers=headers)
        if answer.status_code != 201:
            failures.append(str(answer.status_code))

    meter = CpuMeter({"platform": os.getpid()})
    start = time.perf_counter() + 0.05
    for n in range(orders):
        delay = start + n / order_rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(place(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    last_due = start + (orders - 1) / order_rate
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            receiver.done.wait(), timeout=max(0.1, last_due + DRAIN_SECONDS - time.perf_counter())
        )
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu = meter.read()
    delivered = len(receiver.arrivals)
    delays = receiver.delays + [math.inf] * (expected - delivered)
    return {
        "orders": orders,
        "orders_per_second": round(order_rate, 2),
        "deliveries_per_second": round(deliveries_per_second, 1),
        "deliveries": delivered,
        "never_delivered": expected - delivered,
        "order_failures": failures,
        "p50_s": percentile(delays, 0.5),
        "p99_s": percentile(delays, 0.99),
        "max_s": max(delays),
        "cpu_ms_per_delivery": round(cpu_ms_per_delivery(cpu, delivered), 3),
        "cpu": cpu,
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    receiver = Receiver()
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
        configure_logging(level=settings.log_level, fmt="console")  # as `doorstep serve` does
        services = build_services(settings, ("identity", "orders", "integrations"))
        app = build_app(settings, services, make_broker(settings))
        try:
            async with app.router.lifespan_context(app):
                dispatcher: Dispatcher = app.state.webhook_dispatcher
                _, issued = await app.state.services["identity"].bus.handle(CreateTenant(name="Bench"))
                headers = {"Authorization": f"Bearer {issued.plaintext}"}
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                    for n in range(args.endpoints):
                        response = await client.post(
                            "/v1/integrations/webhook-endpoints",
                            json={
                                "url": f"http://127.0.0.1:{port}/hook/{n}",
                                "event_types": ["order.created"],
                            },
                            headers=headers,
                        )
                        assert response.status_code == 201, response.text
                    drain = await saturation(
                        receiver,
                        dispatcher,
                        app.state.services,
                        client,
                        headers,
                        orders=args.orders,
                        endpoints=args.endpoints,
                    )
                    await asyncio.sleep(1)  # idle again before the next phase
                    flow = await burst(
                        receiver, client, headers, orders=args.orders, endpoints=args.endpoints
                    )
                    await asyncio.sleep(1)
                    rate = await fixed_rate(
                        receiver,
                        client,
                        headers,
                        deliveries_per_second=args.rate or flow["deliveries_per_second"] / 2,
                        endpoints=args.endpoints,
                        duration=args.duration,
                    )
                    rate.update(await stages(app.state.services, receiver))
        finally:
            await runner.cleanup()
    return {
        "orders": args.orders,
        "endpoints": args.endpoints,
        "saturation": drain,
        "burst": flow,
        "fixed_rate": rate,
        "rate_given": args.rate is not None,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    drain, flow, rate = result["saturation"], result["burst"], result["fixed_rate"]
    failures = ", ".join(rate["order_failures"]) or "none"
    return [
        (
            "Saturation, dispatcher alone (a stored backlog): deliveries/s",
            f"{drain['deliveries_per_second']:,.0f}",
        ),
        (
            f"Saturation, dispatcher alone: all {drain['deliveries']:,} delivered after",
            f"{sig3(drain['seconds'])} s",
        ),
        (
            "Saturation, burst (orders placed 16 at a time while it delivers): deliveries/s; orders/s",
            f"{flow['deliveries_per_second']:,.0f}; {flow['orders_per_second']:,.0f}",
        ),
        (
            f"Burst: all {flow['deliveries']:,} delivered after (from the first order)",
            f"{sig3(flow['seconds'])} s",
        ),
        ("Burst: event → delivery p50 / p99", f"{ms(flow['p50_s'])} / {ms(flow['p99_s'])}"),
        (
            "Fixed rate: deliveries/s"
            + ("" if result["rate_given"] else " (half the burst's)")
            + "; orders/s",
            f"{sig3(rate['deliveries_per_second'])}; {sig3(rate['orders_per_second'])}",
        ),
        ("Fixed rate: event → delivery p50 / p99", f"{ms(rate['p50_s'])} / {ms(rate['p99_s'])}"),
        ("Fixed rate: event → delivery max", ms(rate["max_s"])),
        (
            "Fixed rate: event → message stored p50 / p99 (orders, relay, broker, consumer)",
            f"{ms(rate['event_to_stored_p50_s'])} / {ms(rate['event_to_stored_p99_s'])}",
        ),
        (
            "Fixed rate: message stored → delivered p50 / p99 (claim, send)",
            f"{ms(rate['stored_to_delivered_p50_s'])} / {ms(rate['stored_to_delivered_p99_s'])}",
        ),
        (
            "Fixed rate: delivered; never delivered; order failures",
            f"{rate['deliveries']:,}; {rate['never_delivered']:,}; {failures}",
        ),
        ("CPU per delivery, dispatcher alone (ms; receiver included)", sig3(drain["cpu_ms_per_delivery"])),
        ("CPU per delivery, burst (ms; intake and receiver included)", sig3(flow["cpu_ms_per_delivery"])),
        (
            "CPU per delivery, fixed rate (ms; intake and receiver included)",
            sig3(rate["cpu_ms_per_delivery"]),
        ),
        (
            "CPU during the dispatcher alone / burst / fixed rate: this process (100% = one core)",
            " / ".join(f"{phase['cpu']['servers_core_pct']:.0f}%" for phase in (drain, flow, rate)),
        ),
        (
            "Machine busy (100% = all cores, other work included) in those phases",
            " / ".join(f"{phase['cpu']['machine_pct']:.0f}%" for phase in (drain, flow, rate)),
        ),
    ]


def markdown(result: dict[str, Any], argv: list[str], started: datetime, host: dict[str, Any]) -> str:
    command = shlex.join([".venv/bin/python", "bench/webhooks.py", *argv])
    lines = [
        "Command (from the repository root):",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Run on {started:%Y-%m-%d %H:%M} UTC, on {host['cpu_count']} CPUs ({host['cpu_model']}), "
        f"{host['memory_gib']} GiB RAM, {host['platform']}; {host['python']}, SQLite {host['sqlite']}. "
        f"The machine is shared: load average {host['load_average_at_start'][0]} at the start. "
        f"All-in-one shape (SQLite, memory broker, the real dispatcher) in one process with the receiver "
        f"(aiohttp on 127.0.0.1, answering 204 at once); {result['orders']:,} orders x "
        f"{result['endpoints']} endpoints.",
        "",
        "| | all-in-one |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in rows(result)),
        "",
        "How each number is taken:",
        "",
        "- **Dispatcher alone**: with the dispatcher paused, the orders are placed through the API (16 at a "
        "time) and their messages stored; then the dispatcher starts. Deliveries/s is the 2xx deliveries "
        "divided by the time from its start until the last one arrived at the receiver.",
        "- **Burst**: the same number of new orders placed 16 at a time with the dispatcher running, as "
        "intake and delivery share the process (and its one SQLite writer) in this shape; deliveries/s "
        "counts from the first order placed to the last delivery.",
        "- **Fixed rate**: open loop; order *i* is placed at *i / rate* whether or not earlier ones were "
        "answered, at a rate that makes "
        + (
            "the deliveries/s given with `--rate`"
            if result["rate_given"]
            else "half the burst's deliveries/s"
        )
        + ". Each delay runs from the event's "
        "time (the payload's `timestamp`, set by the orders service with the event it stored) to the "
        "delivery's arrival, so a stalled dispatcher cannot hide its stalls (no coordinated omission). "
        f"Deliveries still missing {DRAIN_SECONDS:g} s after the last order count as never delivered. "
        "The two parts of the delay are split at the message's `created_at` (when the integrations "
        "consumer stored it).",
        "- **CPU**: this process's CPU time from `/proc` over each phase divided by the deliveries. The "
        "receiver runs in the same process and is in it; in the burst and at the fixed rate, so are the "
        "intake and the in-process `httpx` client placing the orders.",
        "",
        WHERE_THE_TIME_GOES,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--endpoints", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the fixed-rate phase")
    parser.add_argument(
        "--rate", type=float, help="deliveries/s of the fixed-rate phase (default: half the burst's)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    host = machine()
    result = asyncio.run(measure(args))
    if args.json:
        print(json.dumps({"result": result, "machine": host}, indent=2, default=str))
    else:
        print(markdown(result, argv, started, host))
    if args.write_docs:
        replace_section("## Status webhooks", markdown(result, argv, started, host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
