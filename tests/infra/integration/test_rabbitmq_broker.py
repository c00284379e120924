"""RabbitMQBroker against a real RabbitMQ: routing, fan-out, dead letters and replay."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest

from doorstep.infra.amqp_messages import UNREADABLE_EVENT_TYPE
from doorstep.infra.rabbitmq import RabbitMQBroker
from doorstep.kernel.broker import DeadLetterNotFound
from doorstep.kernel.messages import CloudEvent

pytestmark = pytest.mark.integration

ORDER_CREATED = "doorstep.orders.order.created.v1"
ORDER_CANCELLED = "doorstep.orders.order.cancelled.v1"
USER_REGISTERED = "doorstep.identity.user.registered.v1"


def cloud_event(event_type: str = ORDER_CREATED, **data: Any) -> CloudEvent:
    return CloudEvent(source="urn:doorstep:test", type=event_type, tenantid="tenant-1", data=data)


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll until `condition` holds, so tests wait only as long as the broker needs."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


async def settle() -> None:
    """Give the broker a moment to deliver what it would wrongly deliver, before asserting nothing came."""
    await asyncio.sleep(0.3)


class Recorder:
    """A handler that keeps what it received and can be told to fail."""

    def __init__(self, failing: bool = False) -> None:
        self.events: list[CloudEvent] = []
        self.failures = 0
        self.failing = failing

    async def __call__(self, event: CloudEvent) -> None:
        if self.failing and event.data.get("poison"):
            self.failures += 1
            raise RuntimeError(f"cannot handle order {event.data['order']}")
        self.events.append(event)

    def received(self, count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(self.events) >= count

        return check


@dataclass
class Sandbox:
    """Unique exchange and queue names for one test, removed again when it ends."""

    url: str
    exchange: str
    queue_prefix: str
    brokers: list[RabbitMQBroker] = field(default_factory=list)

    def broker(self, **options: Any) -> RabbitMQBroker:
        broker = RabbitMQBroker(self.url, exchange=self.exchange, queue_prefix=self.queue_prefix, **options)
        self.brokers.append(broker)
        return broker

    async def publish_raw(self, body: bytes, routing_key: str) -> None:
        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self.exchange)
            await exchange.publish(aio_pika.Message(body), routing_key=routing_key, mandatory=False)


@pytest.fixture
async def sandbox(rabbitmq_url: str) -> AsyncIterator[Sandbox]:
    name = f"test.{uuid.uuid4().hex}"
    box = Sandbox(rabbitmq_url, exchange=name, queue_prefix=name)
    yield box
    for broker in box.brokers:
        await broker.close()
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        for broker in box.brokers:
            for consumer in broker.consumers:
                await channel.queue_delete(broker.queue_name(consumer), if_unused=False, if_empty=False)
                await channel.queue_delete(broker.dead_queue_name(consumer), if_unused=False, if_empty=False)
        await channel.exchange_delete(box.exchange)
        await channel.exchange_delete(f"{box.exchange}.dlx")


async def test_a_subscriber_gets_exactly_the_events_its_pattern_matches(sandbox: Sandbox) -> None:
    # Given a consumer subscribed to order creations only
    broker = sandbox.broker()
    orders = Recorder()
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await broker.start()
    created = cloud_event(ORDER_CREATED, order="o-1")

    # When an order creation and a user registration are published
    await broker.publish([created, cloud_event(USER_REGISTERED, user="u-1")])

    # Then the consumer receives the order creation, equal to what was published, and nothing else
    await wait_until(orders.received(1))
    await settle()
    assert orders.events == [created]


async def test_hash_and_star_patterns_follow_topic_semantics(sandbox: Sandbox) -> None:
    # Given one consumer on `doorstep.orders.#` and one on `doorstep.*.order.created.v1`
    broker = sandbox.broker()
    everything_orders = Recorder()
    any_service_created = Recorder()
    broker.subscribe("all-orders", ["doorstep.orders.#"], everything_orders)
    broker.subscribe("created", ["doorstep.*.order.created.v1"], any_service_created)
    await broker.start()
    created = cloud_event(ORDER_CREATED, order="o-1")
    cancelled = cloud_event(ORDER_CANCELLED, order="o-1")
    registered = cloud_event(USER_REGISTERED, user="u-1")

    # When three event types are published
    await broker.publish([created, cancelled, registered])

    # Then `#` matches every orders event and `*` only the one-word wildcard position
    await wait_until(everything_orders.received(2))
    await wait_until(any_service_created.received(1))
    await settle()
    assert everything_orders.events == [created, cancelled]
    assert any_service_created.events == [created]


async def test_two_consumers_each_get_their_own_copy(sandbox: Sandbox) -> None:
    # Given two consumers subscribed to the same event type
    broker = sandbox.broker()
    orders = Recorder()
    billing = Recorder()
    broker.subscribe("orders", [ORDER_CREATED], orders)
    broker.subscribe("billing", [ORDER_CREATED], billing)
    await broker.start()
    created = cloud_event(ORDER_CREATED, order="o-1")

    # When the event is published once
    await broker.publish([created])

    # Then both consumers receive it exactly once
    await wait_until(orders.received(1))
    await wait_until(billing.received(1))
    await settle()
    assert orders.events == [created]
    assert billing.events == [created]


async def test_a_batch_is_handled_in_publish_order(sandbox: Sandbox) -> None:
    # Given a consumer of order creations
    broker = sandbox.broker()
    orders = Recorder()
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await broker.start()
    batch = [cloud_event(ORDER_CREATED, order=f"o-{n}") for n in range(50)]

    # When a batch of fifty is published at once
    await broker.publish(batch)

    # Then the consumer handles them one after another in the order they were published
    await wait_until(orders.received(50))
    assert orders.events == batch


async def test_a_message_that_keeps_failing_is_dead_lettered_without_blocking_the_queue(
    sandbox: Sandbox,
) -> None:
    # Given a consumer whose handler always fails on poison orders, with a delivery limit of 3
    broker = sandbox.broker(delivery_limit=3)
    orders = Recorder(failing=True)
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await broker.start()
    poison = cloud_event(ORDER_CREATED, order="o-1", poison=True)
    good = cloud_event(ORDER_CREATED, order="o-2")

    # When the poison order is published, followed by a good one
    await broker.publish([poison])
    await broker.publish([good])

    # Then the good one is handled and the poison one ends up as a dead letter after 3 attempts
    await wait_until(orders.received(1))

    async def dead_lettered() -> bool:
        return len(await broker.dead_letters()) == 1

    await wait_until(dead_lettered)
    assert orders.events == [good]
    assert orders.failures == 3
    [letter] = await broker.dead_letters("orders")
    assert letter.id == poison.id
    assert letter.consumer == "orders"
    assert letter.event == poison
    assert letter.reason == "RuntimeError: cannot handle order o-1"
    assert letter.attempts == 3
    # And browsing leaves the dead letter where it is
    assert [d.id for d in await broker.dead_letters()] == [poison.id]


async def test_replaying_a_dead_letter_hands_it_back_to_its_consumer(sandbox: Sandbox) -> None:
    # Given a poison order dead-lettered by a failing handler
    broker = sandbox.broker(delivery_limit=2)
    orders = Recorder(failing=True)
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await broker.start()
    poison = cloud_event(ORDER_CREATED, order="o-1", poison=True)
    await broker.publish([poison])

    async def dead_lettered() -> bool:
        return len(await broker.dead_letters("orders")) == 1

    await wait_until(dead_lettered)

    # When the handler is fixed and the dead letter replayed
    orders.failing = False
    replayed = await broker.replay_dead_letter(poison.id)

    # Then the handler receives the event and the dead-letter queue is empty
    await wait_until(orders.received(1))
    assert replayed.id == poison.id
    assert replayed.event == poison
    assert orders.events == [poison]
    assert orders.failures == 2
    assert await broker.dead_letters() == []


async def test_replayed_messages_get_a_fresh_delivery_count(sandbox: Sandbox) -> None:
    # Given a poison order dead-lettered after 2 attempts
    broker = sandbox.broker(delivery_limit=2)
    orders = Recorder(failing=True)
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await broker.start()
    poison = cloud_event(ORDER_CREATED, order="o-1", poison=True)
    await broker.publish([poison])

    async def dead_lettered() -> bool:
        return len(await broker.dead_letters("orders")) == 1

    await wait_until(dead_lettered)

    # When it is replayed while the handler still fails
    await broker.replay_dead_letter(poison.id)

    # Then it gets the full 2 attempts again before returning to the dead-letter queue
    async def failed_four_times() -> bool:
        return orders.failures == 4

    await wait_until(failed_four_times)
    await wait_until(dead_lettered)
    [letter] = await broker.dead_letters("orders")
    assert letter.attempts == 2


async def test_replaying_an_unknown_id_raises(sandbox: Sandbox) -> None:
    # Given a started broker with an empty dead-letter queue
    broker = sandbox.broker()
    broker.subscribe("orders", [ORDER_CREATED], Recorder())
    await broker.start()

    # When / then replaying an id nobody dead-lettered raises DeadLetterNotFound
    with pytest.raises(DeadLetterNotFound) as raised:
        await broker.replay_dead_letter("no-such-id")
    assert raised.value.dead_letter_id == "no-such-id"


async def test_a_malformed_body_goes_straight_to_the_dead_letter_queue(sandbox: Sandbox) -> None:
    # Given a consumer of order creations
    broker = sandbox.broker()
    orders = Recorder()
    broker.subscribe("orders", [ORDER_CREATED], orders)
    await broker.start()
    good = cloud_event(ORDER_CREATED, order="o-2")

    # When a body that is no CloudEvent arrives, followed by a good event
    await sandbox.publish_raw(b"not json at all", routing_key=ORDER_CREATED)
    await broker.publish([good])

    # Then the good event is handled and the malformed one is a dead letter after a single attempt
    await wait_until(orders.received(1))

    async def dead_lettered() -> bool:
        return len(await broker.dead_letters("orders")) == 1

    await wait_until(dead_lettered)
    assert orders.events == [good]
    [letter] = await broker.dead_letters("orders")
    assert letter.reason == "malformed CloudEvent: body: Invalid JSON: expected ident at line 1 column 2"
    assert letter.attempts == 1
    assert letter.event.type == UNREADABLE_EVENT_TYPE
    assert letter.event.data == {"routing_key": ORDER_CREATED, "body": "not json at all"}


async def test_a_message_the_broker_dead_letters_itself_reports_the_delivery_limit(
    sandbox: Sandbox,
) -> None:
    # Given the topology of a consumer with a delivery limit of 2, declared and then left unattended
    declaring = sandbox.broker(delivery_limit=2)
    declaring.subscribe("orders", [ORDER_CREATED], Recorder())
    await declaring.start()
    await declaring.close()
    admin = sandbox.broker(delivery_limit=2, known_consumers=["orders"])
    await admin.start()
    created = cloud_event(ORDER_CREATED, order="o-1")
    await admin.publish([created])

    # When a process keeps taking the message and giving it back, as a crashing consumer would
    connection = await aio_pika.connect(sandbox.url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(admin.queue_name("orders"))
        while (message := await queue.get(fail=False)) is not None:
            await message.nack(requeue=True)

    # Then the broker's own dead-lettering shows up with its reason and limit + 1 attempts
    async def dead_lettered() -> bool:
        return len(await admin.dead_letters()) == 1

    await wait_until(dead_lettered)
    [letter] = await admin.dead_letters()
    assert letter.id == created.id
    assert letter.consumer == "orders"
    assert letter.event == created
    assert letter.reason == "delivery_limit"
    assert letter.attempts == 3


async def test_dead_letters_of_a_consumer_without_queues_is_empty(sandbox: Sandbox) -> None:
    # Given a broker that knows of a consumer whose queues were never declared
    broker = sandbox.broker(known_consumers=["ghost"])
    await broker.start()

    # When / then its dead letters are empty and the broker keeps working
    assert await broker.dead_letters() == []
    assert await broker.dead_letters("ghost") == []
    with pytest.raises(DeadLetterNotFound):
        await broker.replay_dead_letter("no-such-id")
    assert await broker.ping() is True


async def test_ping_answers_only_while_connected(sandbox: Sandbox) -> None:
    # Given a broker that has not been started
    broker = sandbox.broker()

    # When / then ping is false before start, true after, and false again after close (twice is fine)
    assert await broker.ping() is False
    await broker.start()
    assert await broker.ping() is True
    await broker.close()
    await broker.close()
    assert await broker.ping() is False


async def test_publishing_before_start_is_refused(sandbox: Sandbox) -> None:
    # Given a broker that has not been started
    broker = sandbox.broker()

    # When / then publishing raises instead of silently dropping the events
    with pytest.raises(RuntimeError, match="broker not started"):
        await broker.publish([cloud_event()])


async def test_subscribing_after_start_is_refused(sandbox: Sandbox) -> None:
    # Given a started broker
    broker = sandbox.broker()
    await broker.start()

    # When / then a late subscription raises, because its queue would never be declared
    with pytest.raises(RuntimeError, match="subscribe before start"):
        broker.subscribe("orders", [ORDER_CREATED], Recorder())


async def test_close_lets_the_message_in_hand_finish_and_acks_it(sandbox: Sandbox) -> None:
    # Given a consumer whose handler is in the middle of an event
    broker = sandbox.broker()
    started = asyncio.Event()
    release = asyncio.Event()
    handled: list[CloudEvent] = []

    async def slow_handler(event: CloudEvent) -> None:
        started.set()
        await release.wait()
        handled.append(event)

    broker.subscribe("orders", [ORDER_CREATED], slow_handler)
    await broker.start()
    created = cloud_event(ORDER_CREATED, order="o-1")
    await broker.publish([created])
    await asyncio.wait_for(started.wait(), timeout=10)

    # When the broker closes while the handler is still working, and the handler then finishes
    closing = asyncio.create_task(broker.close())
    await asyncio.sleep(0.1)
    release.set()
    await closing

    # Then the event was handled once and acked: a new instance of the consumer does not get it again
    assert handled == [created]
    again = Recorder()
    restarted = sandbox.broker()
    restarted.subscribe("orders", [ORDER_CREATED], again)
    await restarted.start()
    await settle()
    assert again.events == []


async def test_an_event_published_before_its_consumer_ever_started_waits_in_its_queue(
    sandbox: Sandbox,
) -> None:
    # Given a publishing process that knows the topology but consumes nothing, and no consumer running yet
    publisher = sandbox.broker(topology={"orders": [ORDER_CREATED]})
    await publisher.start()
    created = cloud_event(ORDER_CREATED, order="o-early")

    # When it publishes, and only afterwards the consuming process starts
    await publisher.publish([created])
    consumer = sandbox.broker()
    orders = Recorder()
    consumer.subscribe("orders", [ORDER_CREATED], orders)
    await consumer.start()

    # Then the consumer still gets the event: it waited in the consumer's queue
    await wait_until(orders.received(1))
    assert orders.events == [created]
