"""Outcomes written behind: deliveries that finish together are stored in one transaction, and a
delivery whose outcome never reached the database is sent again once its lease runs out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.integrations.outbound.receiver import Receiver, running_receiver
from tests.integrations.outbound.test_status_webhooks_e2e import (
    FakeClock,
    drain,
    messages,
    register,
    webhook_platform,
)
from tests.orders.integration.test_orders_api import move, order, place
from tests.platform import RunningPlatform, settings_for

from doorstep.integrations.outbound.dispatcher import Dispatcher
from doorstep.integrations.outbound.handlers import RecordOutcome, RecordOutcomes
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import Command

pytestmark = pytest.mark.integration

TIMEOUT = 0.5
LEASE_SECONDS = TIMEOUT + 60


class RecordingBus:
    """The dispatcher's bus, keeping every command it was handed; `fail` makes those types raise."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.commands: list[Command] = []
        self.fail: tuple[type[Command], ...] = ()

    async def handle(self, command: Command) -> Any:
        self.commands.append(command)
        if isinstance(command, self.fail):
            raise ConnectionError("the process died before its outcomes were stored")
        return await self.bus.handle(command)

    def outcomes(self) -> list[list[str]]:
        return [[o.message_id for o in c.outcomes] for c in self.commands if isinstance(c, RecordOutcomes)]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
async def webhooks(
    tmp_path: Path,
) -> AsyncIterator[tuple[RunningPlatform, Dispatcher, FakeClock, RecordingBus]]:
    settings = settings_for(
        tmp_path, webhooks_allowed_networks=["127.0.0.1/32"], webhooks_timeout_seconds=TIMEOUT
    )
    async for platform, dispatcher, clock in webhook_platform(settings):
        recording = RecordingBus(dispatcher.bus)
        dispatcher.bus = recording  # type: ignore[assignment]
        yield platform, dispatcher, clock, recording


async def test_the_outcomes_of_deliveries_that_finish_together_are_stored_in_one_transaction(
    webhooks: tuple[RunningPlatform, Dispatcher, FakeClock, RecordingBus], receiver: Receiver
) -> None:
    platform, dispatcher, _, bus = webhooks
    tenant = await platform.new_tenant()
    # Given two endpoints and three orders: six messages due
    endpoints = [
        await register(platform, tenant, f"{receiver.base_url}/{n}", ["order.created"]) for n in (1, 2)
    ]
    for n in range(3):
        await place(platform, tenant, order(external_id=f"B-{n}"))
    await platform.settle()

    # When the dispatcher delivers what is due
    assert await dispatcher.run_once() == 6

    # Then one claim and one write of all six outcomes were made, nothing per message
    assert [type(c).__name__ for c in bus.commands] == ["ClaimDueMessages", "RecordOutcomes"]
    delivered = sorted(r.headers["webhook-id"] for r in receiver.received)
    assert sorted(bus.outcomes()[0]) == delivered
    assert len(delivered) == 6
    # And every message is delivered with its one attempt logged
    for endpoint in endpoints:
        logged = await messages(platform, tenant, endpoint["id"])
        assert [(m["state"], [a["status"] for a in m["attempt_log"]]) for m in logged] == [
            ("delivered", [204])
        ] * 3


async def test_a_delivery_whose_outcome_was_never_stored_is_sent_again_after_its_lease(
    webhooks: tuple[RunningPlatform, Dispatcher, FakeClock, RecordingBus], receiver: Receiver
) -> None:
    platform, dispatcher, clock, bus = webhooks
    tenant = await platform.new_tenant()
    endpoint = await register(platform, tenant, f"{receiver.base_url}/hook", ["order.*"])
    # Given an order placed and accepted: two messages, the second waiting behind the first
    placed = await place(platform, tenant, order(external_id="C-1"))
    assert (await move(platform, tenant, placed["id"], "accepted")).status_code == 200
    await platform.settle()
    # And a dispatcher that dies between sending and storing the outcome
    bus.fail = (RecordOutcomes,)

    # When it delivers the first message
    assert await dispatcher.run_once() == 1
    [first] = receiver.received
    assert first.key == ("order.created", placed["id"])

    # Then the message is still pending and leased: nothing is sent again, and the order's next message
    # still waits, until the lease runs out
    [logged, _] = await messages(platform, tenant, endpoint["id"])
    assert (logged["state"], logged["attempt_log"]) == ("pending", [])
    clock.advance(seconds=LEASE_SECONDS - 1)
    assert await drain(dispatcher) == 0
    assert len(receiver.received) == 1

    # When the lease has run out and a dispatcher that stores its outcomes runs
    bus.fail = ()
    clock.advance(seconds=2)
    assert await drain(dispatcher) == 2

    # Then the first message went out again with the same webhook-id (at least once, never lost), and
    # the status change followed it
    assert [(r.key, r.headers["webhook-id"]) for r in receiver.received] == [
        (("order.created", placed["id"]), first.headers["webhook-id"]),
        (("order.created", placed["id"]), first.headers["webhook-id"]),
        (("order.status_changed", placed["id"]), receiver.received[2].headers["webhook-id"]),
    ]
    logged_after = await messages(platform, tenant, endpoint["id"])
    assert sorted((m["event_type"], m["state"], len(m["attempt_log"])) for m in logged_after) == [
        ("order.created", "delivered", 1),
        ("order.status_changed", "delivered", 1),
    ]


async def test_the_running_dispatcher_writes_behind_and_keeps_each_orders_order(
    webhooks: tuple[RunningPlatform, Dispatcher, FakeClock, RecordingBus], receiver: Receiver
) -> None:
    platform, dispatcher, _, bus = webhooks
    tenant = await platform.new_tenant()
    endpoint = await register(platform, tenant, f"{receiver.base_url}/hook", ["order.*"])
    # Given five orders, each placed, accepted and being prepared: fifteen messages
    ids = []
    for n in range(5):
        placed = await place(platform, tenant, order(external_id=f"R-{n}"))
        ids.append(placed["id"])
        for status in ("accepted", "preparing"):
            assert (await move(platform, tenant, placed["id"], status)).status_code == 200
    await platform.settle()

    # When the dispatcher runs in the background until all arrived, and stops
    await dispatcher.start()
    async with asyncio.timeout(10):
        await receiver.wait_for(15)
    await dispatcher.stop()

    # Then each order's three arrived in the order they happened, once each
    for order_id in ids:
        assert [r.payload["data"].get("to_status") for r in receiver.received if r.key[1] == order_id] == [
            None,
            "accepted",
            "preparing",
        ]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 15
    # And every outcome was stored by stop() at the latest, each once
    stored = [message_id for batch in bus.outcomes() for message_id in batch]
    assert sorted(stored) == sorted(r.headers["webhook-id"] for r in receiver.received)
    logged = await messages(platform, tenant, endpoint["id"])
    assert {(m["state"], len(m["attempt_log"])) for m in logged} == {("delivered", 1)}


async def test_a_batch_skips_a_message_that_is_gone_and_stores_the_others(
    webhooks: tuple[RunningPlatform, Dispatcher, FakeClock, RecordingBus], receiver: Receiver
) -> None:
    platform, _, _, bus = webhooks
    tenant = await platform.new_tenant()
    endpoint = await register(platform, tenant, f"{receiver.base_url}/hook", ["order.created"])
    await place(platform, tenant, order(external_id="G-1"))
    await platform.settle()
    [message] = await messages(platform, tenant, endpoint["id"])

    # When a batch holds its outcome and one of a message deleted meanwhile
    stored = await bus.handle(
        RecordOutcomes(
            outcomes=(
                RecordOutcome(message_id="gone", status=204, latency_ms=1),
                RecordOutcome(message_id=message["id"], status=503, latency_ms=2, snippet="busy"),
            )
        )
    )

    # Then the known message is recorded, and the unknown one is left out
    assert [(m.id, m.attempts, m.last_status) for m in stored] == [(message["id"], 1, 503)]
    [logged] = await messages(platform, tenant, endpoint["id"])
    assert [(a["status"], a["response_snippet"]) for a in logged["attempt_log"]] == [(503, "busy")]
