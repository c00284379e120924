"""Status webhooks on PostgreSQL: two dispatchers side by side deliver each message once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.integrations.outbound.receiver import running_receiver
from tests.integrations.outbound.test_status_webhooks_e2e import drain, register, webhook_platform
from tests.orders.integration.test_orders_api import move, order, place
from tests.platform import settings_for

from doorstep.integrations.outbound.dispatcher import Dispatcher
from doorstep.integrations.outbound.sender import WebhookSender

pytestmark = pytest.mark.integration


async def test_two_dispatchers_on_postgres_deliver_each_message_once_and_in_order(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = settings_for(
        tmp_path,
        database_url=postgres_url,
        webhooks_allowed_networks=["127.0.0.1/32"],
        webhooks_timeout_seconds=2,
    )
    async with running_receiver() as receiver:
        async for platform, first, _ in webhook_platform(settings):
            # Given a second dispatcher on the same database, as another instance would run
            second = Dispatcher(
                bus=first.bus,
                sender=WebhookSender(
                    timeout=2, resolver=first.runtime.resolver, allowed=first.runtime.allowed
                ),
                runtime=first.runtime,
                timeout=2,
            )
            tenant = await platform.new_tenant()
            await register(platform, tenant, f"{receiver.base_url}/hook")
            # And ten orders, each placed, accepted and being prepared
            ids = []
            for n in range(10):
                placed = await place(platform, tenant, order(external_id=f"PG-{n}"))
                ids.append(placed["id"])
                for status in ("accepted", "preparing"):
                    assert (await move(platform, tenant, placed["id"], status)).status_code == 200
            await platform.settle()

            # When both dispatchers deliver at once until nothing is due
            while sum(await asyncio.gather(first.run_once(), second.run_once())):
                pass
            await drain(first)
            await second.sender.close()

            # Then every message arrived exactly once, and each order's three in the order they happened
            received = receiver.at("/hook")
            assert len(received) == 30
            assert len({r.headers["webhook-id"] for r in received}) == 30
            for order_id in ids:
                events = [r.payload for r in received if r.key[1] == order_id]
                assert [(e["type"], e["data"].get("to_status")) for e in events] == [
                    ("order.created", None),
                    ("order.status_changed", "accepted"),
                    ("order.status_changed", "preparing"),
                ]
