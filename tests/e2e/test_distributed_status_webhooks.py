"""Status webhooks in the distributed shape: identity, orders, integrations and the gateway as their own
processes, events over RabbitMQ, state in PostgreSQL, and every order's `order.*` webhooks arriving at
a receiver on 127.0.0.1 signed, once each and in the order they happened."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from tests.e2e.cluster import Cluster, Sandbox, cluster_on, sandbox_on
from tests.integrations.outbound.receiver import Receiver, running_receiver
from tests.orders.integration.test_orders_api import order
from tests.platform import LOCAL_NETWORKS

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ORDERS = 8
STATUSES = ("accepted", "preparing", "ready_for_pickup")
EXPECTED = [("order.created", None), *(("order.status_changed", status) for status in STATUSES)]
DELIVERY_TIMEOUT = 30.0  # from the last status change until every webhook is stored as delivered


@pytest.fixture
async def sandbox(postgres_server_url: str, rabbitmq_url: str) -> AsyncIterator[Sandbox]:
    async with sandbox_on(postgres_server_url, rabbitmq_url) as running:
        yield running


@pytest.fixture
def cluster(sandbox: Sandbox, tmp_path: Path) -> Iterator[Cluster]:
    settings = {
        "DOORSTEP_WEBHOOKS_ALLOWED_NETWORKS": json.dumps(LOCAL_NETWORKS),
        "DOORSTEP_WEBHOOKS_TIMEOUT_SECONDS": "5",
    }
    with cluster_on(sandbox, tmp_path, settings) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def test_each_orders_status_webhooks_arrive_signed_once_and_in_order(
    cluster: Cluster, sandbox: Sandbox, receiver: Receiver
) -> None:
    started = time.monotonic()
    try:
        await _run(cluster, sandbox, receiver)
    except BaseException:
        print(f"\n{cluster.report()}")
        raise
    print(f"\n{len(receiver.received)} webhooks in {time.monotonic() - started:.1f} s")


async def _run(cluster: Cluster, sandbox: Sandbox, receiver: Receiver) -> None:
    services = cluster.services
    async with httpx.AsyncClient(timeout=30.0) as probe:
        # Given identity, then orders, integrations and the gateway, each its own process
        services["identity"].start()
        await services["identity"].wait_healthy(probe)
        for name in ("orders", "integrations", "dispatch", "gateway"):
            services[name].start()
        # And a tenant, made with the CLI while the other services start
        tenant = await cluster.cli("tenant", "create", "Status Webhooks Bakery")
        for name in ("orders", "integrations", "dispatch", "gateway"):
            await services[name].wait_healthy(probe)

    headers = {"Authorization": f"Bearer {tenant['api_key']}"}
    async with httpx.AsyncClient(base_url=cluster.gateway.url, headers=headers, timeout=30.0) as client:
        # And an endpoint for every order event, registered through the gateway
        registered = await client.post(
            "/v1/integrations/webhook-endpoints",
            json={"url": f"{receiver.base_url}/hooks", "event_types": ["order.*"]},
        )
        assert registered.status_code == 201, registered.text
        endpoint: dict[str, Any] = registered.json()

        # When orders are placed over the API, side by side, and each goes through three statuses
        async def place_and_move(n: int) -> str:
            placed = await client.post("/v1/orders", json=order(external_id=f"SW-{n}"))
            assert placed.status_code == 201, placed.text
            order_id: str = placed.json()["id"]
            for status in STATUSES:
                moved = await client.post(f"/v1/orders/{order_id}/status", json={"status": status})
                assert moved.status_code == 200, moved.text
            return order_id

        order_ids = await asyncio.gather(*(place_and_move(n) for n in range(ORDERS)))

    # Then every message is stored as delivered, and the receiver got exactly as many requests
    expected = ORDERS * len(EXPECTED)
    await receiver.wait_at("/hooks", expected, timeout=DELIVERY_TIMEOUT)
    messages = await delivered_messages(sandbox, endpoint["id"], expected)
    received = receiver.at("/hooks")
    assert len(received) == expected
    # And each event arrived once: one request per message, with the message's id as webhook-id
    assert sorted(r.headers["webhook-id"] for r in received) == sorted(m["id"] for m in messages)
    assert {m["attempts"] for m in messages} == {1}
    # And each is signed with the endpoint's secret, as the Standard Webhooks library checks it
    verifier = Webhook(endpoint["secret"])
    for request in received:
        verifier.verify(request.body, request.headers)
    # And each order's webhooks came in the order they happened
    for order_id in order_ids:
        events = [r.payload for r in received if r.key[1] == order_id]
        assert [(e["type"], e["data"].get("to_status")) for e in events] == EXPECTED, order_id
    assert {r.key[1] for r in received} == set(order_ids)


async def delivered_messages(sandbox: Sandbox, endpoint_id: str, count: int) -> list[dict[str, Any]]:
    """The endpoint's messages once `count` of them are stored as delivered."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    database = await asyncpg.connect(sandbox.dsn)
    try:
        while True:
            rows = await database.fetch(
                "SELECT id, state, attempts FROM integrations.webhook_messages WHERE endpoint_id = $1",
                endpoint_id,
            )
            states = [row["state"] for row in rows]
            if states.count("delivered") >= count:
                return [dict(row) for row in rows]
            assert time.monotonic() < deadline, f"{states.count('delivered')} of {count} delivered: {states}"
            await asyncio.sleep(0.2)
    finally:
        await database.close()
