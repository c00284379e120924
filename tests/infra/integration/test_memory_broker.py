"""MemoryBroker, the all-in-one broker: synchronous fan-out, dead letters in SQLite, and their replay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from doorstep.infra.memory_broker import MemoryBroker
from doorstep.kernel.broker import DeadLetterNotFound
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.unit_of_work import DeliveryBatch, delivery_batch, handle_together

ORDER_CREATED = "doorstep.orders.order.created.v1"
USER_REGISTERED = "doorstep.identity.user.registered.v1"
DELIVERY_LIMIT = 3


def cloud_event(event_type: str = ORDER_CREATED, **data: Any) -> CloudEvent:
    return CloudEvent(source="urn:doorstep:test", type=event_type, tenantid="tenant-1", data=data)


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


class Recorder:
    """A handler that keeps what it received and fails on poison events while `failing` is set."""

    def __init__(self, *, failing: bool = False) -> None:
        self.events: list[CloudEvent] = []
        self.failures = 0
        self.failing = failing

    async def __call__(self, event: CloudEvent) -> None:
        await asyncio.sleep(0)  # handlers are asynchronous; publish must still wait for them
        if self.failing and event.data.get("poison"):
            self.failures += 1
            raise RuntimeError(f"cannot handle order {event.data['order']}")
        self.events.append(event)


class BatchRecorder:
    """The `handle(envelopes)` of a `handle_together` consumer: keeps each call's events and what it
    stored; a call with a poison event fails and stores nothing, as one transaction would."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.stored: list[str] = []

    async def __call__(self, envelopes: Sequence[CloudEvent]) -> None:
        await asyncio.sleep(0)
        self.calls.append([event.data["order"] for event in envelopes])
        if any(event.data.get("poison") for event in envelopes):
            raise RuntimeError("cannot handle a poison order")
        self.stored.extend(event.data["order"] for event in envelopes)


class Brokers:
    """Brokers on one dead-letter store in a temporary directory, closed when the test ends."""

    def __init__(self, directory: Path) -> None:
        self.url = f"sqlite+aiosqlite:///{directory / 'events.db'}"
        self.started: list[MemoryBroker] = []

    def new(self, **options: Any) -> MemoryBroker:
        options.setdefault("delivery_limit", DELIVERY_LIMIT)
        options.setdefault("replay_poll_seconds", 0.05)
        return MemoryBroker(dead_letter_url=self.url, **options)

    async def start(self, broker: MemoryBroker) -> MemoryBroker:
        await broker.start()
        self.started.append(broker)
        return broker


@pytest.fixture
async def brokers(tmp_path: Path) -> AsyncIterator[Brokers]:
    made = Brokers(tmp_path)
    yield made
    for broker in made.started:
        await broker.close()


async def test_publish_returns_only_after_every_matching_handler_ran(brokers: Brokers) -> None:
    # Given two consumers of order creations and one of user registrations
    broker = brokers.new()
    orders, billing, users = Recorder(), Recorder(), Recorder()
    broker.subscribe("orders", [ORDER_CREATED], orders)
    broker.subscribe("billing", ["doorstep.*.order.#"], billing)
    broker.subscribe("users", [USER_REGISTERED], users)
    await brokers.start(broker)
    created = cloud_event(ORDER_CREATED, order="o-1")

    # When an order creation is published
    await broker.publish([created])

    # Then, right away, both order consumers have handled it and the user consumer got nothing
    assert orders.events == [created]
    assert billing.events == [created]
    assert users.events == []


async def test_a_batch_is_handled_in_publish_order(brokers: Brokers) -> None:
    # Given a consumer of order creations
    broker = brokers.new()
    orders = Recorder()
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await brokers.start(broker)
    batch = [cloud_event(ORDER_CREATED, order=f"o-{n}") for n in range(20)]

    # When a batch is published
    await broker.publish(batch)

    # Then it was handled completely, in order
    assert orders.events == batch


async def test_an_event_nobody_subscribed_to_is_published_at_once(brokers: Brokers) -> None:
    # Given a consumer of user registrations only
    broker = brokers.new()
    users = Recorder()
    broker.subscribe("users", [USER_REGISTERED], users)
    await brokers.start(broker)

    # When an order creation is published
    await asyncio.wait_for(broker.publish([cloud_event(ORDER_CREATED, order="o-1")]), timeout=1)

    # Then publish did not wait for anyone and nothing was delivered
    assert users.events == []


async def test_a_failing_event_is_dead_lettered_after_the_delivery_limit_and_others_still_flow(
    brokers: Brokers,
) -> None:
    # Given a consumer that fails on poison orders, with a delivery limit of 3
    broker = brokers.new()
    orders = Recorder(failing=True)
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await brokers.start(broker)
    poison = cloud_event(ORDER_CREATED, order="o-1", poison=True)
    good = cloud_event(ORDER_CREATED, order="o-2")

    # When the poison order is published, then a good one
    await broker.publish([poison])
    await broker.publish([good])

    # Then the poison order was tried 3 times and dead-lettered with the handler's error
    assert orders.failures == DELIVERY_LIMIT
    [letter] = await broker.dead_letters()
    assert letter.id == poison.id
    assert letter.consumer == "orders"
    assert letter.event == poison
    assert letter.attempts == DELIVERY_LIMIT
    assert letter.reason == "RuntimeError('cannot handle order o-1')"
    # And the good order was handled
    assert orders.events == [good]
    # And listing by consumer filters
    assert [d.id for d in await broker.dead_letters("orders")] == [poison.id]
    assert await broker.dead_letters("billing") == []


async def test_a_replayed_dead_letter_reaches_the_fixed_handler(brokers: Brokers) -> None:
    # Given a poison order dead-lettered by a failing handler
    broker = brokers.new()
    orders = Recorder(failing=True)
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await brokers.start(broker)
    poison = cloud_event(ORDER_CREATED, order="o-1", poison=True)
    await broker.publish([poison])
    assert len(await broker.dead_letters()) == 1

    # When the handler is fixed and the dead letter replayed
    orders.failing = False
    replayed = await broker.replay_dead_letter(poison.id)

    # Then the replay names the letter, the running broker redelivers it, and the store is empty
    assert replayed.id == poison.id
    assert replayed.consumer == "orders"

    async def handled() -> bool:
        return orders.events == [poison]

    await wait_until(handled)
    assert orders.failures == DELIVERY_LIMIT
    assert await broker.dead_letters() == []


async def test_a_replay_requested_from_another_process_is_delivered_by_the_running_one(
    brokers: Brokers,
) -> None:
    # Given a running broker whose consumer dead-lettered a poison order
    running = brokers.new()
    orders = Recorder(failing=True)
    running.subscribe("orders", [ORDER_CREATED], orders)
    await brokers.start(running)
    poison = cloud_event(ORDER_CREATED, order="o-1", poison=True)
    await running.publish([poison])

    # When a second broker on the same store, with no consumers (as `doorstep events` is), replays it
    orders.failing = False
    admin = await brokers.start(brokers.new())
    [letter] = await admin.dead_letters()
    assert letter.id == poison.id
    await admin.replay_dead_letter(poison.id)

    # Then the running broker hands it to its consumer
    async def handled() -> bool:
        return orders.events == [poison]

    await wait_until(handled)
    assert await admin.dead_letters() == []


async def test_a_replayed_event_that_fails_again_is_dead_lettered_again(brokers: Brokers) -> None:
    # Given a poison order dead-lettered by a handler that keeps failing
    broker = brokers.new()
    orders = Recorder(failing=True)
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await brokers.start(broker)
    poison = cloud_event(ORDER_CREATED, order="o-1", poison=True)
    await broker.publish([poison])

    # When it is replayed without a fix
    await broker.replay_dead_letter(poison.id)

    # Then it gets the full delivery limit again and is back in the store, not marked for replay
    async def failed_twice_over() -> bool:
        return orders.failures == 2 * DELIVERY_LIMIT and len(await broker.dead_letters()) == 1

    await wait_until(failed_twice_over)
    await asyncio.sleep(0.2)  # several replay polls: it must not be replayed again on its own
    assert orders.failures == 2 * DELIVERY_LIMIT
    [letter] = await broker.dead_letters()
    assert letter.id == poison.id
    assert letter.attempts == DELIVERY_LIMIT


async def test_replaying_an_unknown_id_raises(brokers: Brokers) -> None:
    # Given a started broker without dead letters
    broker = await brokers.start(brokers.new())

    # When / then replaying an id nobody dead-lettered raises
    with pytest.raises(DeadLetterNotFound) as raised:
        await broker.replay_dead_letter("no-such-id")
    assert raised.value.dead_letter_id == "no-such-id"


async def test_ping_is_true_while_the_consumers_run(brokers: Brokers) -> None:
    # Given a broker with a consumer
    broker = brokers.new()
    broker.subscribe("orders", [ORDER_CREATED], Recorder())

    # When / then ping follows start and close
    assert await broker.ping() is False
    await broker.start()
    assert await broker.ping() is True
    await broker.close()
    assert await broker.ping() is False


# --- Delivery batches: a consumer made with `handle_together` ---------------------------------------------


async def test_a_consumer_made_with_handle_together_gets_what_waits_in_its_queue_in_one_call(
    brokers: Brokers,
) -> None:
    # Given a consumer that handles batches, and one that handles events one by one
    broker = brokers.new()
    batches, single = BatchRecorder(), Recorder()
    broker.subscribe("audit", [ORDER_CREATED], handle_together(batches))
    broker.subscribe("orders", [ORDER_CREATED], single)
    await brokers.start(broker)
    events = [cloud_event(ORDER_CREATED, order=f"o-{n}") for n in range(5)]

    # When five events are published at once
    await broker.publish(events)

    # Then, by the time publish returns, the batch consumer got all five in one call, in order
    assert batches.calls == [["o-0", "o-1", "o-2", "o-3", "o-4"]]
    assert batches.stored == ["o-0", "o-1", "o-2", "o-3", "o-4"]
    # And the other consumer still got each event on its own
    assert single.events == events

    # And a later publish is a delivery of its own
    later = cloud_event(ORDER_CREATED, order="o-5")
    await broker.publish([later])
    assert batches.calls == [["o-0", "o-1", "o-2", "o-3", "o-4"], ["o-5"]]


async def test_a_delivery_batch_holds_at_most_max_batch_events(brokers: Brokers) -> None:
    # Given a batch consumer on a broker that takes at most two events from a queue at a time
    broker = brokers.new(max_batch=2)
    batches = BatchRecorder()
    broker.subscribe("audit", [ORDER_CREATED], handle_together(batches))
    await brokers.start(broker)

    # When five events are published at once
    await broker.publish([cloud_event(ORDER_CREATED, order=f"o-{n}") for n in range(5)])

    # Then they were handled two at a time
    assert batches.calls == [["o-0", "o-1"], ["o-2", "o-3"], ["o-4"]]
    assert batches.stored == ["o-0", "o-1", "o-2", "o-3", "o-4"]


async def test_after_a_failing_batch_each_event_goes_alone_and_only_the_failing_one_is_dead_lettered(
    brokers: Brokers,
) -> None:
    # Given a batch consumer, a delivery limit of 3, and four events of which the second is poison
    broker = brokers.new(retry_backoff=0.001)
    batches = BatchRecorder()
    broker.subscribe("audit", [ORDER_CREATED], handle_together(batches))
    await brokers.start(broker)
    events = [cloud_event(ORDER_CREATED, order=f"o-{n}", poison=n == 1) for n in range(4)]

    # When they are published at once
    await broker.publish(events)

    # Then the batch failed, and from then on every event was handled alone, the poison one 3 times
    assert batches.calls == [
        ["o-0", "o-1", "o-2", "o-3"],
        ["o-0"],
        ["o-1"],
        ["o-1"],
        ["o-1"],
        ["o-2"],
        ["o-3"],
    ]
    # And the three others were stored once each, the poison one dead-lettered, alone
    assert batches.stored == ["o-0", "o-2", "o-3"]
    assert [(letter.id, letter.consumer) for letter in await broker.dead_letters()] == [
        (events[1].id, "audit")
    ]


async def test_a_handle_together_handler_called_outside_a_delivery_batch_handles_just_its_event() -> None:
    # Given a batch consumer
    batches = BatchRecorder()
    handler = handle_together(batches)

    # When it is called for one event, with no delivery batch around it (as the RabbitMQ broker calls)
    await handler(cloud_event(ORDER_CREATED, order="o-1"))

    # Then it handled just that event
    assert batches.calls == [["o-1"]]


async def test_an_event_handled_ahead_of_its_turn_returns_at_once_and_other_types_wait_their_turn() -> None:
    # Given a delivery of two order events with a user event between them, and a batch consumer
    batches = BatchRecorder()
    handler = handle_together(batches)
    first = cloud_event(ORDER_CREATED, order="o-1")
    other = cloud_event(USER_REGISTERED, order="u-1")
    second = cloud_event(ORDER_CREATED, order="o-2")
    token = delivery_batch.set(DeliveryBatch([first, other, second, first]))
    try:
        # When the handler is called for each in turn, the first event delivered twice
        for event in (first, other, second, first):
            await handler(event)
    finally:
        delivery_batch.reset(token)

    # Then the first call took both order events, each once; the user event went alone
    assert batches.calls == [["o-1", "o-2"], ["u-1"]]
    assert batches.stored == ["o-1", "o-2", "u-1"]
