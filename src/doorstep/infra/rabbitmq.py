"""The broker port on RabbitMQ: a topic exchange, one quorum queue per consumer and a dead-letter queue beside it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pydantic import ValidationError

from doorstep.infra import amqp_messages as amqp
from doorstep.kernel.broker import DeadLetter, DeadLetterNotFound, EventHandler, retry_delay
from doorstep.kernel.clock import utcnow
from doorstep.kernel.messages import CloudEvent

log = structlog.get_logger()

# Long enough for a handler to finish its current message on shutdown, short enough not to stall a deploy.
_SHUTDOWN_GRACE_SECONDS = 10.0


class UnroutableMessage(RuntimeError):
    """The broker confirmed a message it could not route, so acking the original would lose it."""

    def __init__(self, exchange: str, routing_key: str) -> None:
        super().__init__(f"exchange {exchange or '(default)'!r} has no route for {routing_key!r}")
        self.exchange = exchange
        self.routing_key = routing_key


@dataclass(eq=False, slots=True)
class _Subscription:
    consumer: str
    patterns: tuple[str, ...]
    handler: EventHandler
    # Deliveries arrive as concurrent tasks; one worker draining this inbox keeps handling serial and in order.
    inbox: asyncio.Queue[AbstractIncomingMessage | None] = field(default_factory=asyncio.Queue)
    queue: AbstractQueue | None = None
    consumer_tag: str | None = None
    worker: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class _Session:
    connection: AbstractRobustConnection
    channel: AbstractChannel
    exchange: AbstractExchange
    dead_letter_exchange: AbstractExchange


class RabbitMQBroker:
    """Broker port on RabbitMQ 3.10+; nothing connects until `start`."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str = "doorstep.events",
        delivery_limit: int = 5,
        prefetch: int = 32,
        queue_prefix: str = "doorstep",
        known_consumers: Sequence[str] = (),
        topology: Mapping[str, Sequence[str]] | None = None,
        retry_backoff: float = 0.1,
    ) -> None:
        if delivery_limit < 1:
            raise ValueError("delivery_limit must be at least 1")
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self._url = url
        self._exchange_name = exchange
        self._delivery_limit = delivery_limit
        self._retry_backoff = retry_backoff
        self._prefetch = prefetch
        self._queue_prefix = queue_prefix
        self._known_consumers = tuple(known_consumers)
        self._topology = {consumer: tuple(patterns) for consumer, patterns in (topology or {}).items()}
        self._subscriptions: dict[str, _Subscription] = {}
        self._session: _Session | None = None
        self._closing = False

    @property
    def consumers(self) -> list[str]:
        """Consumers whose dead letters this broker looks at: the subscribed ones, then the known ones."""
        return list(dict.fromkeys([*self._subscriptions, *self._known_consumers]))

    def queue_name(self, consumer: str) -> str:
        return f"{self._queue_prefix}.{consumer}"

    def dead_queue_name(self, consumer: str) -> str:
        return f"{self._queue_prefix}.{consumer}.dead"

    @property
    def dead_letter_exchange_name(self) -> str:
        return f"{self._exchange_name}.dlx"

    def subscribe(self, consumer: str, patterns: Sequence[str], handler: EventHandler) -> None:
        """Register before `start`. Each consumer gets every matching event once (competing instances)."""
        if self._session is not None:
            raise RuntimeError("subscribe before start: the queues are declared when the broker starts")
        if not consumer:
            raise ValueError("consumer name must not be empty")
        if not patterns:
            raise ValueError(f"consumer {consumer!r} needs at least one pattern")
        if consumer in self._subscriptions:
            raise ValueError(f"consumer {consumer!r} is already subscribed")
        self._subscriptions[consumer] = _Subscription(consumer, tuple(patterns), handler)

    async def start(self) -> None:
        """Connect, declare what the subscriptions need and start consuming."""
        if self._session is not None:
            raise RuntimeError("broker already started")
        connection = await aio_pika.connect_robust(self._url)
        try:
            self._session = await self._declare(connection)
            for subscription in self._subscriptions.values():
                await self._consume(connection, subscription)
        except BaseException:
            await self._shutdown(connection)
            raise
        log.info("broker.started", exchange=self._exchange_name, consumers=list(self._subscriptions))

    async def close(self) -> None:
        session = self._session
        if session is None:
            return
        await self._shutdown(session.connection)
        log.info("broker.closed", exchange=self._exchange_name)

    async def ping(self) -> bool:
        return self._session is not None and not self._session.connection.is_closed

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        """Return only once the broker has confirmed every event."""
        session = self._require_session()
        # Confirms are awaited together: one round trip for the batch instead of one per event.
        results = await asyncio.gather(
            *(
                session.exchange.publish(
                    amqp.outgoing_message(event), routing_key=event.type, mandatory=False
                )
                for event in events
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def dead_letters(self, consumer: str | None = None) -> list[DeadLetter]:
        session = self._require_session()
        consumers = self.consumers if consumer is None else [consumer]
        letters: list[DeadLetter] = []
        for name in consumers:
            letters.extend(await self._browse(session, name))
        return letters

    async def replay_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """Hand the message back to its consumer's queue only; raises `DeadLetterNotFound`."""
        session = self._require_session()
        for consumer in self.consumers:
            # Messages taken but not acked go back to the dead queue when this channel closes.
            channel = await session.connection.channel(publisher_confirms=False)
            try:
                queue = await _existing_queue(channel, self.dead_queue_name(consumer))
                if queue is None:
                    continue
                while (message := await queue.get(no_ack=False, fail=False)) is not None:
                    if amqp.message_key(message) != dead_letter_id:
                        continue
                    dead_letter = self._to_dead_letter(consumer, message)
                    await _publish_routed(
                        session.channel.default_exchange,
                        amqp.copy_message(message, amqp.without_delivery_history(message.headers)),
                        routing_key=self.queue_name(consumer),
                    )
                    await message.ack()
                    log.info("broker.dead_letter_replayed", consumer=consumer, message_id=dead_letter_id)
                    return dead_letter
            finally:
                await _close_quietly(channel)
        raise DeadLetterNotFound(dead_letter_id)

    def _require_session(self) -> _Session:
        if self._session is None:
            raise RuntimeError("broker not started")
        return self._session

    async def _declare(self, connection: AbstractRobustConnection) -> _Session:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        dead_letter_exchange = await channel.declare_exchange(
            self.dead_letter_exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        # Every known consumer's queue, not only this process's: an event published before its consumer
        # first starts must wait in that consumer's queue, not be confirmed and routed nowhere.
        bindings = dict(self._topology)
        for subscription in self._subscriptions.values():
            bindings[subscription.consumer] = tuple(
                dict.fromkeys([*bindings.get(subscription.consumer, ()), *subscription.patterns])
            )
        for consumer, patterns in bindings.items():
            queue = await channel.declare_queue(
                self.queue_name(consumer), durable=True, arguments=self._queue_arguments(consumer)
            )
            for pattern in patterns:
                await queue.bind(exchange, routing_key=pattern)
            dead_queue = await channel.declare_queue(
                self.dead_queue_name(consumer), durable=True, arguments={"x-queue-type": "quorum"}
            )
            await dead_queue.bind(dead_letter_exchange, routing_key=consumer)
        return _Session(connection, channel, exchange, dead_letter_exchange)

    def _queue_arguments(self, consumer: str) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            # The safety net for a message that kills the process before it can be dead-lettered by hand.
            "x-delivery-limit": self._delivery_limit,
            "x-dead-letter-exchange": self.dead_letter_exchange_name,
            "x-dead-letter-routing-key": consumer,
            # 3.10 only dead-letters at-least-once when asked, and only together with reject-publish overflow.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    async def _consume(self, connection: AbstractRobustConnection, subscription: _Subscription) -> None:
        # One channel per consumer, so prefetch applies to each consumer separately.
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await channel.declare_queue(
            self.queue_name(subscription.consumer),
            durable=True,
            arguments=self._queue_arguments(subscription.consumer),
        )
        subscription.inbox = asyncio.Queue()
        subscription.worker = asyncio.create_task(
            self._work(subscription), name=f"doorstep-broker-{subscription.consumer}"
        )
        subscription.queue = queue
        subscription.consumer_tag = await queue.consume(subscription.inbox.put)

    async def _shutdown(self, connection: AbstractRobustConnection) -> None:
        self._closing = True
        try:
            for subscription in self._subscriptions.values():
                await self._stop_consuming(subscription)
            workers = [s.worker for s in self._subscriptions.values() if s.worker is not None]
            if workers:
                _, pending = await asyncio.wait(workers, timeout=_SHUTDOWN_GRACE_SECONDS)
                for worker in pending:
                    worker.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            # Closing the channels hands every message still unacked back to its queue.
            await connection.close()
        finally:
            for subscription in self._subscriptions.values():
                subscription.queue = None
                subscription.consumer_tag = None
                subscription.worker = None
            self._session = None
            self._closing = False

    async def _stop_consuming(self, subscription: _Subscription) -> None:
        if subscription.queue is not None and subscription.consumer_tag is not None:
            try:
                await subscription.queue.cancel(subscription.consumer_tag)
            except Exception as error:
                log.warning(
                    "broker.cancel_failed", consumer=subscription.consumer, error=amqp.describe_error(error)
                )
        # Wakes a worker waiting on an empty inbox so it can see that the broker is closing.
        subscription.inbox.put_nowait(None)

    async def _work(self, subscription: _Subscription) -> None:
        while True:
            message = await subscription.inbox.get()
            if message is None or self._closing:
                return
            try:
                await self._handle(subscription, message)
            except Exception as error:
                log.exception(
                    "broker.settle_failed",
                    consumer=subscription.consumer,
                    message_id=message.message_id,
                    error=amqp.describe_error(error),
                )
                await _requeue_quietly(message)

    async def _handle(self, subscription: _Subscription, message: AbstractIncomingMessage) -> None:
        attempt = amqp.delivery_attempt(message)
        try:
            event = CloudEvent.model_validate_json(message.body)
        except ValidationError as error:
            await self._dead_letter(subscription, message, amqp.describe_invalid(error), attempt)
            return
        try:
            await subscription.handler(event)
        except Exception as error:
            if attempt >= self._delivery_limit:
                await self._dead_letter(subscription, message, amqp.describe_error(error), attempt)
                return
            log.warning(
                "broker.handler_failed",
                consumer=subscription.consumer,
                message_id=message.message_id,
                event_type=event.type,
                attempt=attempt,
                delivery_limit=self._delivery_limit,
                error=amqp.describe_error(error),
            )
            # A short, growing pause lets a passing fault (a database restart) clear before the next try.
            await asyncio.sleep(retry_delay(self._retry_backoff, attempt))
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _dead_letter(
        self, subscription: _Subscription, message: AbstractIncomingMessage, reason: str, attempts: int
    ) -> None:
        session = self._require_session()
        headers = amqp.without_delivery_history(message.headers)
        headers.update(
            {
                amqp.ERROR_HEADER: reason,
                amqp.ATTEMPTS_HEADER: attempts,
                amqp.CONSUMER_HEADER: subscription.consumer,
                amqp.DEAD_LETTERED_AT_HEADER: utcnow().isoformat(),
                # A replayed copy arrives through the default exchange; keep the routing key it was published with.
                amqp.ROUTING_KEY_HEADER: amqp.original_routing_key(message),
            }
        )
        await _publish_routed(
            session.dead_letter_exchange,
            amqp.copy_message(message, headers),
            routing_key=subscription.consumer,
        )
        await message.ack()
        log.error(
            "broker.dead_lettered",
            consumer=subscription.consumer,
            message_id=message.message_id,
            routing_key=headers[amqp.ROUTING_KEY_HEADER],
            attempts=attempts,
            reason=reason,
        )

    async def _browse(self, session: _Session, consumer: str) -> list[DeadLetter]:
        # basic.get without ack, then closing the channel, puts every browsed message back.
        channel = await session.connection.channel(publisher_confirms=False)
        try:
            queue = await _existing_queue(channel, self.dead_queue_name(consumer))
            if queue is None:
                return []
            letters: list[DeadLetter] = []
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                letters.append(self._to_dead_letter(consumer, message))
            return letters
        finally:
            await _close_quietly(channel)

    def _to_dead_letter(self, consumer: str, message: AbstractIncomingMessage) -> DeadLetter:
        return amqp.to_dead_letter(consumer, message, delivery_limit=self._delivery_limit)


async def _publish_routed(exchange: AbstractExchange, message: aio_pika.Message, routing_key: str) -> None:
    """Publish with confirm and mandatory routing, because the caller acks the original right after."""
    result = await exchange.publish(message, routing_key=routing_key, mandatory=True)
    if not isinstance(result, aiormq.spec.Basic.Ack):
        raise UnroutableMessage(exchange.name, routing_key)


async def _existing_queue(channel: AbstractChannel, name: str) -> AbstractQueue | None:
    try:
        return await channel.get_queue(name, ensure=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None


async def _close_quietly(channel: AbstractChannel) -> None:
    if channel.is_closed:
        return
    try:
        await channel.close()
    except Exception as error:
        log.warning("broker.channel_close_failed", error=amqp.describe_error(error))


async def _requeue_quietly(message: AbstractIncomingMessage) -> None:
    # If the channel is gone the broker has already requeued the message, so there is nothing left to do.
    try:
        await message.nack(requeue=True)
    except Exception as error:
        log.debug("broker.requeue_skipped", message_id=message.message_id, error=amqp.describe_error(error))
