"""The distributed shape end to end: four processes, PostgreSQL and RabbitMQ, 2,000 orders over three
channels with redeliveries, and the orders process killed half-way. Every order must be stored exactly
once and every event handed on exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import io
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from tests.e2e.cluster import START_TIMEOUT, Cluster, Sandbox, cluster_on, sandbox_on

from doorstep.integrations.adapters.platforms.shopify import sign_shopify_payload

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SHOPIFY_FIXTURE = Path(__file__).parents[1] / "integrations" / "fixtures" / "shopify_orders_create.json"
ORDER_CREATED = "doorstep.orders.order.created.v1"

ORDERS = 2000
REDELIVERED = 0.10
CONCURRENCY = 16
CSV_FILE_ORDERS = 100
RETRYABLE = frozenset({502, 503, 504})

DOWNTIME_TIMEOUT = 30.0  # until the downtime has been seen by both kinds of traffic
DELIVERY_TIMEOUT = DOWNTIME_TIMEOUT + START_TIMEOUT + 30.0  # one request, retried while orders is down
# The consumers work through what queued up while orders was down: 10-40 s on a busy 2-core machine.
# Waiting stops early once nothing has moved for SETTLE_STALL, which is what a lost message looks like.
SETTLE_TIMEOUT = 90.0
SETTLE_STALL = 20.0

PICKUP: dict[str, Any] = {
    "name": "Bäckerei Morgenrot",
    "address": "Lychener Straße 41, 10437 Berlin",
    "phone": "+49 30 1234567",
    "location": {"lat": 52.5439061, "lon": 13.4138419},
}
CSV_COLUMNS = (
    "external_id",
    "pickup_name",
    "pickup_address",
    "pickup_lat",
    "pickup_lon",
    "dropoff_name",
    "dropoff_address",
    "dropoff_lat",
    "dropoff_lon",
    "customer_name",
    "item_name",
    "quantity",
    "unit_price",
    "currency",
)


# --- processes ----------------------------------------------------------------------------------------


@pytest.fixture
async def sandbox(postgres_server_url: str, rabbitmq_url: str) -> AsyncIterator[Sandbox]:
    async with sandbox_on(postgres_server_url, rabbitmq_url) as running:
        yield running


@pytest.fixture
def cluster(sandbox: Sandbox, tmp_path: Path) -> Iterator[Cluster]:
    """The processes, not started yet; stopped (SIGTERM, then SIGKILL) whatever happens."""
    # One API key and one partner address send all 2,000 orders within seconds: this test is about
    # exactly-once intake, not the gateway's rate limits (tests/gateway covers those).
    limits = {
        "DOORSTEP_RATE_LIMIT_PER_MINUTE": "1000000",
        "DOORSTEP_RATE_LIMIT_IP_PER_MINUTE": "1000000",
        "DOORSTEP_RATE_LIMIT_WEBHOOK_PER_MINUTE": "1000000",
    }
    with cluster_on(sandbox, tmp_path, limits) as running:
        yield running


# --- what is sent -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One HTTP request a client makes, and keeps making until it is accepted."""

    channel: str  # api, csv or shopify
    label: str
    method: str
    path: str
    accepted: frozenset[int]
    json_body: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] | None = None
    check: Callable[[httpx.Response], None] = lambda _response: None


def _dropoff(i: int) -> dict[str, Any]:
    return {
        "name": f"Kundin {i}",
        "address": f"Kastanienallee {i % 120 + 1}, 10435 Berlin",
        "location": {"lat": 52.52 + (i % 97) / 10_000, "lon": 13.40 + (i % 89) / 10_000},
    }


def api_job(external_id: str, i: int, api_key: str) -> Job:
    draft = {
        "external_id": external_id,
        "pickup": PICKUP,
        "dropoff": _dropoff(i),
        "customer": {"name": f"Kundin {i}", "email": f"kundin{i}@example.de"},
        "items": [
            {"name": "Roggenmischbrot", "sku": "BRT-ROG-750", "quantity": 1 + i % 3, "unit_price": 580}
        ],
        "currency": "EUR",
        "tip": 100 * (i % 4),
    }

    def check(response: httpx.Response) -> None:
        body = response.json()
        assert (body["source"], body["external_id"]) == ("api", external_id), body

    return Job(
        "api",
        f"POST /v1/orders {external_id}",
        "POST",
        "/v1/orders",
        frozenset({200, 201}),
        json_body=draft,
        headers={"Authorization": f"Bearer {api_key}"},
        check=check,
    )


def csv_row(external_id: str, i: int) -> dict[str, Any]:
    dropoff = _dropoff(i)
    return {
        "external_id": external_id,
        "pickup_name": PICKUP["name"],
        "pickup_address": PICKUP["address"],
        "pickup_lat": PICKUP["location"]["lat"],
        "pickup_lon": PICKUP["location"]["lon"],
        "dropoff_name": dropoff["name"],
        "dropoff_address": dropoff["address"],
        "dropoff_lat": dropoff["location"]["lat"],
        "dropoff_lon": dropoff["location"]["lon"],
        "customer_name": dropoff["name"],
        "item_name": "Franzbrötchen",
        "quantity": 1 + i % 6,
        "unit_price": 230,
        "currency": "EUR",
    }


def csv_job(number: int, rows: list[dict[str, Any]], api_key: str) -> Job:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    name = f"orders-{number:02d}.csv"

    def check(response: httpx.Response) -> None:
        report = response.json()
        assert report["errors_total"] == 0, f"{name}: {report}"
        assert report["created"] + report["duplicates"] == len(rows), f"{name}: {report}"

    return Job(
        "csv",
        f"POST /v1/orders/import {name}",
        "POST",
        "/v1/orders/import",
        frozenset({200}),
        files={"file": (name, buffer.getvalue().encode(), "text/csv")},
        headers={"Authorization": f"Bearer {api_key}"},
        check=check,
    )


def shopify_job(payload: bytes, webhook_id: str, path: str, secret: str) -> Job:
    # Whether a receipt says `duplicate` depends on which of two concurrent copies came first, so the
    # inbound log is checked in the database instead.
    def check(response: httpx.Response) -> None:
        receipt = response.json()
        assert receipt["status"] == "mapped", receipt

    return Job(
        "shopify",
        f"Shopify webhook {webhook_id}",
        "POST",
        path,
        frozenset({202}),
        content=payload,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Shop-Domain": "baeckerei-morgenrot.myshopify.com",
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Hmac-Sha256": sign_shopify_payload(payload, secret),
        },
        check=check,
    )


@dataclass
class Workload:
    jobs: list[Job]
    expected: dict[str, set[str]]  # source -> external ids
    webhook_ids: set[str]


def build_workload(api_key: str, webhook_path: str, secret: str, rng: random.Random) -> Workload:
    """Three channels of ~ORDERS/3 orders each; 10% of each channel is sent twice, always later."""
    per_channel = {"api": ORDERS - 2 * (ORDERS // 3), "csv": ORDERS // 3, "shopify": ORDERS // 3}
    expected: dict[str, set[str]] = {channel: set() for channel in per_channel}
    originals: list[Job] = []
    redeliveries: list[tuple[Job, Job]] = []  # (redelivery, the original it must follow)

    for i in range(per_channel["api"]):
        external_id = f"api-{i:05d}"
        expected["api"].add(external_id)
        originals.append(api_job(external_id, i, api_key))
    for original in rng.sample(originals, round(per_channel["api"] * REDELIVERED)):
        redeliveries.append((original, original))  # the very same request again

    fixture = json.loads(SHOPIFY_FIXTURE.read_text())
    shopify_originals: list[tuple[Job, bytes]] = []
    for i in range(per_channel["shopify"]):
        payload = copy.deepcopy(fixture)
        payload["id"] = 7_000_000_000_000 + i
        payload["name"] = payload["confirmation_number"] = f"#{10_000 + i}"
        payload["order_number"] = 10_000 + i
        payload["shipping_address"]["latitude"] = 52.5 + (i % 101) / 10_000
        body = json.dumps(payload).encode()
        expected["shopify"].add(str(payload["id"]))
        shopify_originals.append((shopify_job(body, str(uuid.uuid4()), webhook_path, secret), body))
    originals.extend(job for job, _ in shopify_originals)
    chosen = rng.sample(shopify_originals, round(per_channel["shopify"] * REDELIVERED))
    for n, (original, body) in enumerate(chosen):
        if n % 2 == 0:  # Shopify retrying one delivery: same webhook id
            webhook_id = original.headers["X-Shopify-Webhook-Id"]
            again = shopify_job(body, webhook_id, webhook_path, secret)
        else:  # Shopify sending the same order in a new delivery
            again = shopify_job(body, str(uuid.uuid4()), webhook_path, secret)
        redeliveries.append((again, original))

    # CSV: files of CSV_FILE_ORDERS new orders; each repeated row goes into a later file than its first.
    csv_ids = [f"csv-{i:05d}" for i in range(per_channel["csv"])]
    expected["csv"].update(csv_ids)
    files: list[list[dict[str, Any]]] = [
        [
            csv_row(external_id, int(external_id[4:]))
            for external_id in csv_ids[start : start + CSV_FILE_ORDERS]
        ]
        for start in range(0, len(csv_ids), CSV_FILE_ORDERS)
    ]
    repeatable = [(number, row) for number, rows in enumerate(files[:-1]) for row in rows]
    for number, row in rng.sample(repeatable, round(per_channel["csv"] * REDELIVERED)):
        files[rng.randrange(number + 1, len(files))].append(row)
    csv_jobs = [csv_job(number, rows, api_key) for number, rows in enumerate(files)]
    originals.extend(csv_jobs)

    rng.shuffle(originals)
    # CSV files go out in their own order, so that repeated rows come in a later file.
    csv_slots = sorted(i for i, job in enumerate(originals) if job.channel == "csv")
    for slot, job in zip(csv_slots, csv_jobs, strict=True):
        originals[slot] = job
    jobs = originals
    for again, original in redeliveries:
        after = next(i for i, job in enumerate(jobs) if job is original)
        jobs.insert(rng.randrange(after + 1, len(jobs) + 1), again)

    webhook_ids = {job.headers["X-Shopify-Webhook-Id"] for job in jobs if job.channel == "shopify"}
    return Workload(jobs, expected, webhook_ids)


# --- sending ------------------------------------------------------------------------------------------


@dataclass
class Traffic:
    """Sends jobs with bounded concurrency, retrying what the gateway could not hand on."""

    client: httpx.AsyncClient
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENCY))
    orders_down: bool = False
    done: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    refused_while_down: int = 0
    webhooks_while_down: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, job: Job) -> None:
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        delay = 0.05
        while True:
            async with self.slots:
                try:
                    response = await self.client.request(
                        job.method,
                        job.path,
                        json=job.json_body,
                        content=job.content,
                        files=job.files,
                        headers=job.headers,
                    )
                except httpx.TransportError as error:
                    outcome = f"{type(error).__name__}: {error}"
                else:
                    if response.status_code in job.accepted:
                        job.check(response)
                        self._accepted(job)
                        return
                    if response.status_code not in RETRYABLE:
                        raise AssertionError(
                            f"{job.label} answered {response.status_code}: {response.text[:1000]}"
                        )
                    outcome = f"{response.status_code}: {response.text[:300]}"
            self.retries[job.channel] += 1
            if self.orders_down:
                self.refused_while_down += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{job.label} not accepted within {DELIVERY_TIMEOUT} s; last: {outcome}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _accepted(self, job: Job) -> None:
        self.done += 1
        self.accepted[job.channel] += 1
        if self.orders_down and job.channel == "shopify":
            self.webhooks_while_down += 1
        self.progress.set()

    async def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{what} not within {timeout} s")
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), timeout=min(remaining, 0.2))


# --- the database -------------------------------------------------------------------------------------


@dataclass
class Settlement:
    stored: dict[str, Counter[str]]  # source -> external id -> rows
    created_events: int
    created_events_handled: int
    integrations_inbox_created: int
    orders_unpublished: int
    integrations_unpublished: int
    deliveries: int
    shopify_links: int

    def __str__(self) -> str:
        stored = {source: sum(ids.values()) for source, ids in sorted(self.stored.items())}
        return (
            f"orders {stored}, order.created {self.created_events_handled}/{self.created_events} handled, "
            f"unpublished {self.orders_unpublished} (orders) {self.integrations_unpublished} (integrations), "
            f"{self.deliveries} webhook deliveries"
        )

    def settled(self, workload: Workload) -> bool:
        return (
            {source: set(ids) for source, ids in self.stored.items()} == workload.expected
            and self.created_events == ORDERS
            and self.created_events_handled == ORDERS
            and self.orders_unpublished == 0
            and self.integrations_unpublished == 0
        )


async def read_settlement(database: asyncpg.Connection) -> Settlement:
    stored: dict[str, Counter[str]] = {}
    for row in await database.fetch(
        "SELECT source, external_id, count(*) AS n FROM orders.orders GROUP BY source, external_id"
    ):
        stored.setdefault(row["source"], Counter())[row["external_id"]] = row["n"]
    created = await database.fetchval("SELECT count(*) FROM orders.outbox WHERE type = $1", ORDER_CREATED)
    handled = await database.fetchval(
        "SELECT count(*) FROM orders.outbox o JOIN integrations.inbox i ON i.message_id = o.id WHERE o.type = $1",
        ORDER_CREATED,
    )
    inbox = await database.fetchval("SELECT count(*) FROM integrations.inbox WHERE type = $1", ORDER_CREATED)
    return Settlement(
        stored=stored,
        created_events=created,
        created_events_handled=handled,
        integrations_inbox_created=inbox,
        orders_unpublished=await database.fetchval(
            "SELECT count(*) FROM orders.outbox WHERE published_at IS NULL"
        ),
        integrations_unpublished=await database.fetchval(
            "SELECT count(*) FROM integrations.outbox WHERE published_at IS NULL"
        ),
        deliveries=await database.fetchval("SELECT count(*) FROM integrations.inbound_deliveries"),
        shopify_links=await database.fetchval(
            "SELECT count(*) FROM integrations.order_links WHERE source = 'shopify'"
        ),
    )


# --- the test -----------------------------------------------------------------------------------------


class Stopwatch:
    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.laps: list[tuple[str, float]] = []

    def lap(self, what: str) -> None:
        now = time.monotonic()
        self.laps.append((what, now - self.last))
        self.last = now

    def __str__(self) -> str:
        laps = ", ".join(f"{what} {seconds:.1f} s" for what, seconds in self.laps)
        return f"{laps}; total {time.monotonic() - self.started:.1f} s"


async def test_orders_from_three_channels_survive_a_killed_orders_process(
    cluster: Cluster, sandbox: Sandbox
) -> None:
    clock = Stopwatch()
    try:
        await _run(cluster, sandbox, clock)
    except BaseException:
        print(f"\n{cluster.report()}\ntimings: {clock}")
        raise
    print(f"\ntimings: {clock}")


async def _run(cluster: Cluster, sandbox: Sandbox, clock: Stopwatch) -> None:
    services = cluster.services
    async with httpx.AsyncClient() as probe:
        # Given identity, then orders, integrations and the gateway, each its own process
        services["identity"].start()
        await services["identity"].wait_healthy(probe)
        for name in ("orders", "integrations", "dispatch", "gateway"):
            services[name].start()
        # And a tenant, made with the CLI while the other services start
        tenant = await cluster.cli("tenant", "create", "E2E Bakery")
        for name in ("orders", "integrations", "dispatch", "gateway"):
            await services[name].wait_healthy(probe)
        clock.lap("start")

        # And a Shopify connection, made with the CLI
        connection = await cluster.cli(
            "connection",
            "create",
            "--tenant",
            tenant["tenant_id"],
            "--platform",
            "shopify",
            "--settings",
            json.dumps({"pickup": PICKUP, "merchant_id": "morgenrot"}),
        )
        webhook_url = connection["webhook_url"]
        assert webhook_url.startswith(cluster.gateway.url), webhook_url
        clock.lap("cli")

    workload = build_workload(
        tenant["api_key"], urlsplit(webhook_url).path, connection["secret"], random.Random(20_241_108)
    )
    orders = services["orders"]
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=cluster.gateway.url, timeout=60.0, limits=limits) as client:
        traffic = Traffic(client)

        async def crash_and_recover() -> None:
            half = len(workload.jobs) // 2
            await traffic.wait_for(lambda: traffic.done >= half, DELIVERY_TIMEOUT, "half of the requests")
            # When the orders process is killed half-way, with requests in flight
            orders.kill()
            traffic.orders_down = True
            killed, accepted_before = time.monotonic(), traffic.done
            # Then the gateway refuses its requests while webhooks are still accepted
            await traffic.wait_for(
                lambda: traffic.refused_while_down >= CONCURRENCY and traffic.webhooks_while_down >= 20,
                DOWNTIME_TIMEOUT,
                "refused orders requests and accepted webhooks while orders is down",
            )
            # And orders comes back on the same port
            restarted = time.monotonic()
            orders.start()
            await orders.wait_healthy(client)
            traffic.orders_down = False
            print(
                f"\norders killed after {accepted_before} accepted requests; down "
                f"{time.monotonic() - killed:.1f} s (restart {time.monotonic() - restarted:.1f} s): "
                f"{traffic.refused_while_down} requests refused, {traffic.webhooks_while_down} webhooks accepted"
            )

        tasks = [asyncio.create_task(crash_and_recover())]
        tasks += [asyncio.create_task(traffic.send(job)) for job in workload.jobs]
        try:
            await asyncio.gather(*tasks)
        finally:  # on the first failure, stop sending rather than leave tasks behind
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        clock.lap(f"send {len(workload.jobs)} requests")
        print(f"accepted {dict(traffic.accepted)}, retried {dict(traffic.retries)}")
        assert orders.starts == 2

    # Then the database settles: every order stored once, every event handed on once
    database = await asyncpg.connect(sandbox.dsn)
    try:
        started = moved = shown = time.monotonic()
        last = ""
        while not (settlement := await read_settlement(database)).settled(workload):
            now = time.monotonic()
            if str(settlement) != last:
                last, moved = str(settlement), now
            if now - started > SETTLE_TIMEOUT or now - moved > SETTLE_STALL:
                print(f"not settled after {now - started:.1f} s, {now - moved:.1f} s without change: {last}")
                break
            if now - shown > 5:
                shown = now
                print(f"settling: {settlement}")
            await asyncio.sleep(0.25)
    finally:
        await database.close()
    clock.lap("settle")

    for source, ids in workload.expected.items():
        stored = settlement.stored.get(source, Counter())
        missing = ids - set(stored)
        unexpected = set(stored) - ids
        duplicated = {external_id: n for external_id, n in stored.items() if n > 1}
        assert not missing, f"{len(missing)} {source} orders missing, e.g. {sorted(missing)[:5]}"
        assert not unexpected, f"{len(unexpected)} unexpected {source} orders, e.g. {sorted(unexpected)[:5]}"
        assert not duplicated, f"{source} orders stored more than once: {duplicated}"
    assert set(settlement.stored) == set(workload.expected)
    assert settlement.created_events == ORDERS
    assert settlement.created_events_handled == ORDERS, "order.created events missing in integrations' inbox"
    assert settlement.integrations_inbox_created == ORDERS
    assert settlement.orders_unpublished == 0
    assert settlement.integrations_unpublished == 0
    # Shopify's retries of one delivery are logged once; a new delivery of the same order is logged anew
    assert settlement.deliveries == len(workload.webhook_ids)
    assert settlement.shopify_links == len(workload.expected["shopify"])

    # And nothing was given up on
    dead = await cluster.cli("events", "dead-letters")
    assert dead == {"items": []}
    clock.lap("dead letters")
    for name, service in services.items():
        assert service.process is not None
        assert service.process.poll() is None, f"{name} died"
