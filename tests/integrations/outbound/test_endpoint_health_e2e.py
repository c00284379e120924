"""An endpoint's health end to end: five days of failures disable it (and everyone who must know is
told), and its circuit breaker opens, half-opens and closes against a real receiver on 127.0.0.1
while a healthy endpoint of the same tenant keeps receiving. A 410 disabling at once is proven in
test_status_webhooks_e2e.py."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.identity.integration.test_users import outbox_events, signed_in
from tests.integrations.outbound.receiver import HANG, Receiver, running_receiver
from tests.integrations.outbound.test_status_webhooks_e2e import (
    FakeClock,
    drain,
    messages,
    register,
    webhook_platform,
)
from tests.integrations.tickets.test_tickets_api import listed
from tests.orders.integration.test_orders_api import order, place
from tests.platform import LOCAL_NETWORKS, RunningPlatform, Tenant, settings_for

from doorstep.identity.tenant_notices import ENDPOINT_DISABLED
from doorstep.integrations.adapters.tables import outbox
from doorstep.integrations.outbound.dispatcher import Dispatcher
from doorstep.integrations.outbound.domain import RETRY_DELAYS
from doorstep.integrations.outbound.tables import webhook_attempts, webhook_endpoints, webhook_messages
from doorstep.kernel.permissions import Role

pytestmark = pytest.mark.integration

ENDPOINT_DISABLED_EVENT = "doorstep.integrations.webhook_endpoint.disabled.v1"
NOTIFICATION = "doorstep.notifications.requested.v1"
FIVE_DAYS = "every delivery failed for 5 days"
WAIT = 15.0  # seconds of real time for what the running dispatcher does in well under one


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
async def webhooks(tmp_path: Path) -> AsyncIterator[tuple[RunningPlatform, Dispatcher, FakeClock]]:
    """The all-in-one platform with its dispatcher stopped and a clock the test moves."""
    settings = settings_for(tmp_path, webhooks_allowed_networks=LOCAL_NETWORKS, webhooks_timeout_seconds=0.5)
    async for platform, dispatcher, clock in webhook_platform(settings):
        clock.now = clock.now.replace(microsecond=0)
        yield platform, dispatcher, clock


async def endpoint_out(platform: RunningPlatform, tenant: Tenant, endpoint_id: str) -> dict[str, Any]:
    response = await platform.client.get(
        f"/v1/integrations/webhook-endpoints/{endpoint_id}", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


async def breaker(platform: RunningPlatform, endpoint_id: str) -> tuple[int, datetime | None]:
    """The endpoint's consecutive failures and the end of its open period, as stored."""
    async with platform.services["integrations"].database.reader() as session:
        row = (
            await session.execute(
                select(
                    webhook_endpoints.c.consecutive_failures, webhook_endpoints.c.circuit_open_until
                ).where(webhook_endpoints.c.id == endpoint_id)
            )
        ).one()
    return row.consecutive_failures, _utc(row.circuit_open_until)


async def recorded_attempts(platform: RunningPlatform, endpoint_id: str, count: int) -> None:
    """Until `count` attempts of the endpoint are stored (the outcomes are written behind the sends)."""
    deadline = time.monotonic() + WAIT
    while True:
        async with platform.services["integrations"].database.reader() as session:
            stored = await session.scalar(
                select(func.count()).where(webhook_attempts.c.endpoint_id == endpoint_id)
            )
        if stored == count:
            return
        assert stored is not None
        assert stored < count, f"{stored} attempts stored, expected {count}"
        assert time.monotonic() < deadline, f"{stored} of {count} attempts stored within {WAIT} s"
        await asyncio.sleep(0.05)


def field(name: str, line: str) -> str | None:
    """A `name=value` field of a console log line."""
    found = re.search(rf"\b{name}=(\S+)", line)
    return found.group(1) if found else None


async def message_states(platform: RunningPlatform, endpoint_id: str) -> dict[str, int]:
    async with platform.services["integrations"].database.reader() as session:
        rows = await session.execute(
            select(webhook_messages.c.state, func.count().label("n"))
            .where(webhook_messages.c.endpoint_id == endpoint_id)
            .group_by(webhook_messages.c.state)
        )
        return {row.state: row.n for row in rows}


async def test_five_days_of_failures_disable_the_endpoint_tell_the_tenant_and_stop_the_deliveries(
    webhooks: tuple[RunningPlatform, Dispatcher, FakeClock],
    receiver: Receiver,
    capfd: pytest.CaptureFixture[str],
) -> None:
    platform, dispatcher, clock = webhooks
    # Given a tenant with an admin, and an endpoint whose receiver answers every delivery 500
    tenant = await platform.new_tenant()
    await signed_in(platform, tenant, "ada@t.test", [Role.TENANT_ADMIN.value])
    down = await register(platform, tenant, f"{receiver.base_url}/down")
    receiver.always["/down"] = 500
    start = clock.now

    # When an order's creation is tried on the whole retry schedule (about 28 hours)
    first = await place(platform, tenant, order(external_id="D-1"))
    await platform.settle()
    assert await drain(dispatcher) == 1
    for delay in RETRY_DELAYS:
        clock.advance(seconds=delay)
        assert await drain(dispatcher) == 1

    # Then its message has failed after eight attempts, and the endpoint is enabled, failing since the start
    [failed] = await messages(platform, tenant, down["id"])
    assert (failed["subject"], failed["state"], failed["attempts"]) == (first["id"], "failed", 8)
    got = await endpoint_out(platform, tenant, down["id"])
    assert (got["enabled"], datetime.fromisoformat(got["failing_since"])) == (True, start)

    # When another order's creation fails 4 days and 23 hours after the first failure
    second = await place(platform, tenant, order(external_id="D-2"))
    await platform.settle()
    clock.now = start + timedelta(days=4, hours=23)
    assert await drain(dispatcher) == 1
    # Then the endpoint is still enabled
    got = await endpoint_out(platform, tenant, down["id"])
    assert (got["enabled"], got["disabled_reason"]) == (True, None)

    # When its retry fails 5 days after the first failure
    clock.now = start + timedelta(days=5)
    assert await drain(dispatcher) == 1
    await platform.settle()

    # Then the endpoint is disabled with the reason
    got = await endpoint_out(platform, tenant, down["id"])
    assert (got["enabled"], got["disabled_reason"]) == (False, FIVE_DAYS)
    # And `WebhookEndpointDisabled` was published once, naming it
    async with platform.services["integrations"].database.reader() as session:
        types = list(
            await session.scalars(select(outbox.c.type).where(outbox.c.tenant_id == tenant.tenant_id))
        )
    assert types.count(ENDPOINT_DISABLED_EVENT) == 1
    # And identity asked for one email to the tenant admin, which the all-in-one process wrote to its log
    notices = [n for n in await outbox_events(platform, NOTIFICATION) if n["template"] == ENDPOINT_DISABLED]
    assert [(n["channel"], n["to"], n["params"]) for n in notices] == [
        ("email", "ada@t.test", {"endpoint_id": down["id"], "url": down["url"], "reason": FIVE_DAYS})
    ]
    # (the log stub keeps no inbox: an event published twice, as the test's settle() beside the relay
    # can, is logged twice; identity's outbox above is where "once" is kept)
    captured = capfd.readouterr()
    sent_to_log = {
        (field("to", line), field("endpoint_id", line))
        for line in (captured.out + captured.err).splitlines()
        if "notification_sent_to_log" in line and ENDPOINT_DISABLED in line
    }
    assert sent_to_log == {("ada@t.test", down["id"])}
    # And an urgent support ticket was opened on the endpoint
    [ticket] = await listed(platform, tenant.headers, subject_type="webhook_endpoint")
    assert (
        ticket["subject_id"],
        ticket["origin"],
        ticket["priority"],
        ticket["status"],
        ticket["title"],
    ) == (
        down["id"],
        "automatic",
        "urgent",
        "open",
        f"Status webhooks to {down['url']} are disabled",
    )

    # When a third order is placed and the second one's next retry comes due
    await place(platform, tenant, order(external_id="D-3"))
    await platform.settle()
    clock.advance(hours=1)

    # Then nothing more is sent to the endpoint: the third order made no message, the retry is not tried
    assert await drain(dispatcher) == 0
    assert len(receiver.at("/down")) == len(RETRY_DELAYS) + 1 + 2
    assert [
        (m["subject"], m["state"], m["attempts"]) for m in await messages(platform, tenant, down["id"])
    ] == [
        (second["id"], "pending", 2),
        (first["id"], "failed", 8),
    ]


async def test_the_breaker_holds_back_a_dead_receiver_while_a_healthy_one_keeps_receiving(
    webhooks: tuple[RunningPlatform, Dispatcher, FakeClock], receiver: Receiver
) -> None:
    platform, dispatcher, clock = webhooks
    # Given a tenant with two endpoints, one whose receiver hangs past the 0.5 s timeout
    tenant = await platform.new_tenant()
    dead = await register(platform, tenant, f"{receiver.base_url}/dead")
    await register(platform, tenant, f"{receiver.base_url}/healthy")
    receiver.always["/dead"] = HANG
    # And eight orders placed while the dispatcher was stopped
    placed = [await place(platform, tenant, order(external_id=f"B-{n}")) for n in range(8)]
    await platform.settle()
    t0 = clock.now

    # When the dispatcher runs
    await dispatcher.start()

    # Then the healthy receiver gets the eight creations, and the dead one eight attempts that time out
    await receiver.wait_at("/healthy", 8, timeout=WAIT)
    await receiver.wait_at("/dead", 8, timeout=WAIT)
    await recorded_attempts(platform, dead["id"], 8)
    assert sorted(r.key for r in receiver.at("/healthy")) == sorted(
        ("order.created", p["id"]) for p in placed
    )
    # And the circuit opened at the fifth failure, for the first step of 30 s: the failures of attempts
    # that were under way when it opened do not lengthen it
    assert await breaker(platform, dead["id"]) == (5, t0 + timedelta(seconds=30))

    # When 10 s pass (the dead endpoint's retries are due) and five more orders arrive
    clock.advance(seconds=10)
    placed += [await place(platform, tenant, order(external_id=f"B-{n}")) for n in range(8, 13)]
    await platform.settle()

    # Then the healthy endpoint gets them, and the dead one nothing while its circuit is open
    await receiver.wait_at("/healthy", 13, timeout=WAIT)
    assert await dispatcher.run_once() == 0  # all that is due is the dead endpoint's
    assert len(receiver.at("/dead")) == 8

    # When the open period is over and the receiver answers 500 instead of hanging
    receiver.always["/dead"] = 500
    clock.now = half_open = t0 + timedelta(seconds=31)
    dispatcher.wake()

    # Then one of its 13 due messages is tried, a probe, and the circuit opens again for twice as long
    await receiver.wait_at("/dead", 8 + 1, timeout=WAIT)
    await recorded_attempts(platform, dead["id"], 8 + 1)
    assert await breaker(platform, dead["id"]) == (6, half_open + timedelta(seconds=60))
    assert await dispatcher.run_once() == 0
    # And an order placed meanwhile goes to the healthy endpoint only
    placed.append(await place(platform, tenant, order(external_id="B-13")))
    await platform.settle()
    await receiver.wait_at("/healthy", 14, timeout=WAIT)
    assert await dispatcher.run_once() == 0
    assert len(receiver.at("/dead")) == 8 + 1

    # When the receiver recovers and every retry is due (the probe's second retry waits 5 minutes)
    del receiver.always["/dead"]
    clock.now = half_open + timedelta(seconds=301)
    dispatcher.wake()

    # Then a probe succeeds, the circuit closes, and all 14 messages are delivered, each once more
    await receiver.wait_at("/dead", 8 + 1 + 14, timeout=WAIT)
    await recorded_attempts(platform, dead["id"], 8 + 1 + 14)
    assert await breaker(platform, dead["id"]) == (0, None)
    assert await message_states(platform, dead["id"]) == {"delivered": 14}
    assert len({r.headers["webhook-id"] for r in receiver.at("/dead")}) == 14
    # And the next order reaches both endpoints without the clock moving
    placed.append(await place(platform, tenant, order(external_id="B-14")))
    await platform.settle()
    await receiver.wait_at("/dead", 8 + 1 + 14 + 1, timeout=WAIT)
    await receiver.wait_at("/healthy", 15, timeout=WAIT)
    assert [r.key for r in receiver.at("/dead")][-1] == ("order.created", placed[-1]["id"])
    assert sorted(r.key for r in receiver.at("/healthy")) == sorted(
        ("order.created", p["id"]) for p in placed
    )
