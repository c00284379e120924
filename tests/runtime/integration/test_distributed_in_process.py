"""The distributed shape in one test process: every service on PostgreSQL schemas, events over RabbitMQ.

Each test gets a scratch database and its own exchange and queue prefix, removed afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest
from sqlalchemy import Row, Table, select
from tests.platform import RunningPlatform, Tenant, running_platform, settings_for

from doorstep.contracts.integrations import OrderReceived
from doorstep.contracts.orders import Customer, GeoPoint, Item, OrderCreated, OrderDraft, Stop
from doorstep.infra.service import Service
from doorstep.integrations.adapters.platforms.shopify import sign_shopify_payload
from doorstep.integrations.adapters.tables import inbox as integrations_inbox
from doorstep.integrations.adapters.tables import outbox as integrations_outbox
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.settings import SERVICES
from doorstep.orders.adapters.tables import inbox as orders_inbox
from doorstep.orders.adapters.tables import outbox as orders_outbox

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[2] / "integrations" / "fixtures"
SHOPIFY_ORDER = FIXTURES / "shopify_orders_create.json"
SHOPIFY_ORDER_ID = "5981237460291"
PICKUP: dict[str, Any] = {
    "name": "Bäckerei Morgenrot",
    "address": "Kastanienallee 12, 10435 Berlin, Germany",
    "phone": "+49 30 4401234",
    "location": {"lat": 52.5376, "lon": 13.4083},
}
DRAFT = OrderDraft(
    pickup=Stop(
        name="Curry Corner", address="Oranienstraße 12, Berlin", location=GeoPoint(lat=52.5, lon=13.41)
    ),
    dropoff=Stop(name="Lena", address="Skalitzer Straße 3, Berlin", location=GeoPoint(lat=52.49, lon=13.43)),
    customer=Customer(name="Lena Müller"),
    items=[Item(name="Currywurst", quantity=2, unit_price=450)],
    currency="EUR",
)
DELIVERY_LIMIT = 2


async def delete_broker_objects(rabbitmq_url: str, name: str) -> None:
    """Remove the exchanges and the queues `running_platform` declared under `name`."""
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        for consumer in SERVICES:
            await channel.queue_delete(f"{name}.{consumer}", if_unused=False, if_empty=False)
            await channel.queue_delete(f"{name}.{consumer}.dead", if_unused=False, if_empty=False)
        await channel.exchange_delete(name)
        await channel.exchange_delete(f"{name}.dlx")


@pytest.fixture
async def distributed(postgres_url: str, rabbitmq_url: str, tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """All services in this process, as the distributed shape wires them: PostgreSQL and RabbitMQ."""
    name = f"test.{uuid.uuid4().hex}"
    settings = settings_for(
        tmp_path,
        database_url=postgres_url,
        broker_url=rabbitmq_url,
        broker_exchange=name,
        broker_queue_prefix=name,
        broker_delivery_limit=DELIVERY_LIMIT,
    )
    try:
        async with running_platform(settings) as running:
            yield running
    finally:
        await delete_broker_objects(rabbitmq_url, name)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.1)


async def rows(service: Service, table: Table, **equal: str) -> list[Row[Any]]:
    query = select(table).where(*(table.c[column] == value for column, value in equal.items()))
    async with service.database.reader() as session:
        return list((await session.execute(query)).all())


async def orders_from(platform: RunningPlatform, tenant: Tenant, source: str) -> list[dict[str, Any]]:
    response = await platform.client.get("/v1/orders", params={"source": source}, headers=tenant.headers)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_signed_shopify_webhook_becomes_one_order_across_postgres_and_rabbitmq(
    distributed: RunningPlatform,
) -> None:
    platform = distributed
    services = platform.services
    # Given a tenant with a Shopify connection
    tenant = await platform.new_tenant()
    opened = await platform.client.post(
        "/v1/integrations/connections",
        json={"platform": "shopify", "settings": {"pickup": PICKUP}},
        headers=tenant.headers,
    )
    assert opened.status_code == 201
    connection = opened.json()

    # When Shopify delivers a signed orders/create webhook
    body = SHOPIFY_ORDER.read_bytes()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Hmac-Sha256": sign_shopify_payload(body, connection["secret"]),
    }
    path = urlsplit(connection["webhook_url"]).path
    received = await platform.client.post(path, content=body, headers=headers)

    # Then it is accepted and mapped, and the order appears in the orders service (via the broker)
    assert received.status_code == 202
    receipt = received.json()
    assert (receipt["status"], receipt["duplicate"]) == ("mapped", False)

    async def shopify_orders() -> list[dict[str, Any]]:
        return await orders_from(platform, tenant, "shopify")

    [order] = await eventually(shopify_orders)
    assert (order["source"], order["external_id"]) == ("shopify", SHOPIFY_ORDER_ID)

    # And the orders inbox holds the integrations service's OrderReceived event
    [sent] = await rows(services["integrations"], integrations_outbox, type=OrderReceived.event_type)
    [handled] = await rows(services["orders"], orders_inbox, type=OrderReceived.event_type)
    assert (handled.message_id, handled.tenant_id) == (sent.id, tenant.tenant_id)

    # And the integrations inbox got the orders service's OrderCreated event
    async def created_handled_by_integrations() -> list[Row[Any]]:
        return await rows(services["integrations"], integrations_inbox, type=OrderCreated.event_type)

    [linked] = await eventually(created_handled_by_integrations)
    [created] = await rows(services["orders"], orders_outbox, type=OrderCreated.event_type)
    assert (linked.message_id, linked.tenant_id) == (created.id, tenant.tenant_id)
    assert CloudEvent.model_validate_json(created.envelope).subject == order["id"]

    # And Shopify retrying the same delivery is answered as a duplicate, still one order
    again = await platform.client.post(path, content=body, headers=headers)
    assert again.status_code == 202
    assert again.json() == {**receipt, "duplicate": True}
    assert [found["id"] for found in await shopify_orders()] == [order["id"]]

    # And the platform reports itself ready, broker included
    ready = await platform.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {
            "identity_database": True,
            "orders_database": True,
            "integrations_database": True,
            "dispatch_database": True,
            "broker": True,
        },
    }


async def test_an_event_that_breaks_its_contract_is_dead_lettered_and_does_not_block_the_next(
    distributed: RunningPlatform,
) -> None:
    platform = distributed
    broker = platform.app.state.broker
    # Given a tenant, an OrderReceived event whose data breaks the contract, and a valid one after it
    tenant = await platform.new_tenant()
    invalid = CloudEvent(
        source="/doorstep/integrations",
        type=OrderReceived.event_type,
        tenantid=tenant.tenant_id,
        data={"connection_id": new_id(), "platform": "shopify"},
    )
    valid = CloudEvent.wrap(
        OrderReceived(
            connection_id=new_id(),
            platform="shopify",
            delivery_id=new_id(),
            external_id="dead-letter-neighbour",
            draft=DRAFT,
        ),
        source="/doorstep/integrations",
        tenant_id=tenant.tenant_id,
    )

    # When both are published on the broker, the invalid one first
    await broker.publish([invalid])
    await broker.publish([valid])

    # Then the valid one becomes an order
    async def shopify_orders() -> list[dict[str, Any]]:
        return await orders_from(platform, tenant, "shopify")

    [order] = await eventually(shopify_orders)
    assert order["external_id"] == "dead-letter-neighbour"

    # And the invalid one ends up as the orders consumer's only dead letter, after its delivery limit
    async def dead_letters() -> list[Any]:
        letters: list[Any] = await broker.dead_letters("orders")
        return letters

    [letter] = await eventually(dead_letters)
    assert (letter.id, letter.consumer, letter.attempts) == (invalid.id, "orders", DELIVERY_LIMIT)
    assert letter.event == invalid
    assert letter.reason.startswith("ValidationError: ")
    assert "OrderReceived" in letter.reason
    # And no other consumer dead-lettered anything
    assert await broker.dead_letters("integrations") == []
