"""The transactional outbox and inbox on SQLite and PostgreSQL, the relay that drains the outbox, and
the per-service migrations that create them.

The first part runs on both databases; the second needs PostgreSQL (row locks, LISTEN/NOTIFY,
schemas and advisory locks).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Row, Table, func, select, text
from sqlalchemy.exc import IntegrityError
from tests.platform import scratch_postgres_database, settings_for

from doorstep.contracts.audit import AuditRecorded
from doorstep.contracts.integrations import OrderReceived
from doorstep.contracts.orders import Customer, GeoPoint, Item, OrderCreated, OrderDraft, Stop
from doorstep.infra.migrations import upgrade
from doorstep.infra.outbox_relay import OutboxRelay
from doorstep.infra.service import Service
from doorstep.kernel.broker import DeadLetter, DeadLetterNotFound, EventHandler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.settings import SERVICES, Settings
from doorstep.orders import bootstrap as orders_service
from doorstep.orders.adapters.tables import inbox, orders, outbox
from doorstep.orders.adapters.unit_of_work import OrdersUnitOfWork
from doorstep.orders.domain.commands import PlaceOrder
from doorstep.orders.domain.model import Order
from doorstep.orders.handlers import Placement
from doorstep.runtime.services import build_services

pytestmark = pytest.mark.integration

DRAFT = OrderDraft(
    pickup=Stop(
        name="Curry Corner", address="Oranienstraße 12, Berlin", location=GeoPoint(lat=52.5, lon=13.41)
    ),
    dropoff=Stop(name="Lena", address="Skalitzer Straße 3, Berlin", location=GeoPoint(lat=52.49, lon=13.43)),
    customer=Customer(name="Lena Müller"),
    items=[Item(name="Currywurst", quantity=2, unit_price=450)],
    currency="EUR",
)


class RecordingBroker:
    """A broker fake for the relay: keeps every event it is asked to publish, in order.

    `failing` makes `publish` raise as an unreachable broker would; `delay` makes it take a while, so
    that concurrent relays overlap.
    """

    def __init__(self, *, failing: bool = False, delay: float = 0.0) -> None:
        self.published: list[CloudEvent] = []
        self.failing = failing
        self.delay = delay
        self.publish_calls = 0

    @property
    def ids(self) -> list[str]:
        return [event.id for event in self.published]

    def subscribe(self, consumer: str, patterns: Sequence[str], handler: EventHandler) -> None:
        raise NotImplementedError("the relay only publishes")

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        self.publish_calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing:
            raise ConnectionError("broker unreachable")
        self.published.extend(events)

    async def dead_letters(self, consumer: str | None = None) -> list[DeadLetter]:
        return []

    async def replay_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        raise DeadLetterNotFound(dead_letter_id)


@asynccontextmanager
async def migrated_orders_service(settings: Settings) -> AsyncIterator[Service]:
    service = orders_service.build(settings)
    try:
        await upgrade(service.database, service.migrations)
        yield service
    finally:
        await service.database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    """The orders service, migrated, on a SQLite file or on a scratch PostgreSQL database."""
    if request.param == "sqlite":
        async with migrated_orders_service(settings_for(tmp_path)) as built:
            yield built
        return
    server_url: str = request.getfixturevalue("postgres_server_url")
    async with (
        scratch_postgres_database(server_url) as url,
        migrated_orders_service(settings_for(tmp_path, database_url=url)) as built,
    ):
        yield built


@pytest.fixture
async def postgres_service(postgres_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    async with migrated_orders_service(settings_for(tmp_path, database_url=postgres_url)) as built:
        yield built


def unit_of_work(service: Service, causing_message: CloudEvent | None = None) -> OrdersUnitOfWork:
    """A unit of work wired as the service's bus wires it, minus the relay wake-up after commit."""
    database = service.database
    return OrdersUnitOfWork(
        engine=database.writer_engine,
        service=service.name,
        outbox=outbox,
        inbox=inbox,
        notify_channel=database.outbox_channel if database.dialect == "postgresql" else None,
        causing_message=causing_message,
    )


def new_order(tenant_id: str) -> Order:
    return Order.place(
        id=new_id(), tenant_id=tenant_id, source="api", draft=DRAFT, actor="test", now=utcnow()
    )


def message_for(tenant_id: str) -> CloudEvent:
    """A message from another service, as a consumer would receive it."""
    return CloudEvent(
        source="/doorstep/integrations", type=OrderReceived.event_type, tenantid=tenant_id, data={}
    )


async def place_orders(service: Service, tenant_id: str, count: int = 1) -> list[str]:
    """Commit `count` new orders in one unit of work; the ids of the events it wrote, in order."""
    async with unit_of_work(service) as uow:
        await uow.orders.add_many([new_order(tenant_id) for _ in range(count)])
        written = await uow.commit()
    return [event.id for event in written]


async def place_an_order_then_fail(
    service: Service, tenant_id: str, causing_message: CloudEvent | None = None
) -> None:
    """A handler that writes an order and then raises before it commits."""
    async with unit_of_work(service, causing_message) as uow:
        await uow.orders.add(new_order(tenant_id))
        raise RuntimeError("handler failed")


async def place_an_order_without_checking(
    service: Service, tenant_id: str, causing_message: CloudEvent
) -> None:
    """A handler that skips the `already_handled` check."""
    async with unit_of_work(service, causing_message) as uow:
        await uow.orders.add(new_order(tenant_id))
        await uow.commit()


async def place_an_order_marking(service: Service, tenant_id: str, messages: Sequence[CloudEvent]) -> None:
    """A handler that places an order and marks `messages` handled, as a batch consumer does."""
    async with unit_of_work(service) as uow:
        await uow.orders.add(new_order(tenant_id))
        uow.mark_handled(messages)
        await uow.commit()


async def rows(service: Service, table: Table) -> list[Row[Any]]:
    query = select(table)
    if table is outbox:
        query = query.order_by(outbox.c.seq)
    async with service.database.reader() as session:
        return list((await session.execute(query)).all())


async def count(service: Service, table: Table) -> int:
    async with service.database.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def unpublished(service: Service) -> int:
    async with service.database.reader() as session:
        found = await session.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    return int(found or 0)


def relay_for(service: Service, broker: RecordingBroker, **options: Any) -> OutboxRelay:
    return OutboxRelay(database=service.database, outbox=outbox, broker=broker, **options)


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float) -> float:
    """Poll until `condition` holds; how long it took."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


# --- The outbox, on SQLite and PostgreSQL ---------------------------------------------------------


async def test_a_committed_unit_of_work_writes_its_state_change_and_its_event_together(
    service: Service,
) -> None:
    # Given a tenant
    tenant_id = new_id()

    # When a unit of work places an order and commits
    order = new_order(tenant_id)
    async with unit_of_work(service) as uow:
        await uow.orders.add(order)
        [written] = await uow.commit()

    # Then the order and its OrderCreated event are both stored, the event not yet published
    assert [row.id for row in await rows(service, orders)] == [order.id]
    [row] = await rows(service, outbox)
    assert (row.id, row.type, row.tenant_id, row.published_at) == (
        written.id,
        OrderCreated.event_type,
        tenant_id,
        None,
    )
    assert CloudEvent.model_validate_json(row.envelope) == written
    assert written.subject == order.id
    assert written.source == "/doorstep/orders"


async def test_a_rolled_back_unit_of_work_leaves_neither_state_change_nor_event(service: Service) -> None:
    # Given a tenant
    tenant_id = new_id()

    # When one unit of work places an order and rolls back, and another raises before committing
    async with unit_of_work(service) as uow:
        await uow.orders.add(new_order(tenant_id))
        await uow.rollback()
    with pytest.raises(RuntimeError, match="handler failed"):
        await place_an_order_then_fail(service, tenant_id)

    # Then there is no order and no outbox row
    assert await count(service, orders) == 0
    assert await count(service, outbox) == 0


async def test_a_commit_that_fails_keeps_neither_state_change_nor_event(service: Service) -> None:
    # Given a message that was already handled (its id is in the inbox)
    tenant_id = new_id()
    message = message_for(tenant_id)
    async with unit_of_work(service, message) as uow:
        await uow.commit()

    # When a unit of work for the same message places an order without checking, so commit fails
    with pytest.raises(IntegrityError):
        await place_an_order_without_checking(service, tenant_id, message)

    # Then the order it wrote is gone with the event it would have published
    assert await count(service, orders) == 0
    assert await count(service, outbox) == 0
    assert [row.message_id for row in await rows(service, inbox)] == [message.id]


# --- The relay, on SQLite and PostgreSQL ----------------------------------------------------------


async def test_the_relay_publishes_in_seq_order_marks_the_rows_and_then_has_nothing_left(
    service: Service,
) -> None:
    # Given five events committed by three units of work, and a relay that takes two rows a batch
    tenant_id = new_id()
    committed = [
        *await place_orders(service, tenant_id, 2),
        *await place_orders(service, tenant_id, 1),
        *await place_orders(service, tenant_id, 2),
    ]
    broker = RecordingBroker()
    relay = relay_for(service, broker, batch_size=2)

    # When the relay publishes what is pending
    published = await relay.publish_pending()

    # Then all five went out in commit (seq) order, in batches of at most two, and are marked
    assert published == 5
    assert broker.ids == committed
    assert [row.id for row in await rows(service, outbox)] == committed
    assert broker.publish_calls == 3
    assert all(row.published_at is not None for row in await rows(service, outbox))
    assert await unpublished(service) == 0

    # And a second pass publishes nothing
    assert await relay.publish_pending() == 0
    assert broker.ids == committed


class WritingBroker(RecordingBroker):
    """A broker whose consumer writes to the relay's own database before `publish` returns, as the
    all-in-one broker's consumers do (identity keeping its own audit entries)."""

    def __init__(self, service: Service) -> None:
        super().__init__()
        self.service = service

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        async with self.service.database.writer_engine.begin() as connection:
            await connection.execute(text("SELECT 1"))
        await super().publish(events)


async def test_the_relay_leaves_the_writer_free_while_consumers_handle_what_it_publishes(
    service: Service,
) -> None:
    # Given two committed events and a broker whose consumer writes to the same database
    committed = await place_orders(service, new_id(), 2)
    broker = WritingBroker(service)

    # When the relay publishes them
    published = await asyncio.wait_for(relay_for(service, broker).publish_pending(), timeout=5)

    # Then the consumer got a writer connection (on SQLite, the only one), and the rows are marked
    assert published == 2
    assert broker.ids == committed
    assert await unpublished(service) == 0


async def test_rows_stay_unpublished_while_the_broker_fails_and_go_out_on_retry(service: Service) -> None:
    # Given three committed events and a broker that cannot be reached
    tenant_id = new_id()
    committed = await place_orders(service, tenant_id, 3)
    broker = RecordingBroker(failing=True)
    relay = relay_for(service, broker)

    # When the relay tries to publish
    with pytest.raises(ConnectionError, match="broker unreachable"):
        await relay.publish_pending()

    # Then nothing is marked published
    assert broker.published == []
    assert await unpublished(service) == 3

    # And once the broker is back, the next pass publishes all three, in order
    broker.failing = False
    assert await relay.publish_pending() == 3
    assert broker.ids == committed
    assert await unpublished(service) == 0


# --- The inbox, on SQLite and PostgreSQL ----------------------------------------------------------


async def test_the_inbox_row_commits_with_the_effect_and_marks_the_message_handled(service: Service) -> None:
    # Given a message from another service that has not been handled
    tenant_id = new_id()
    message = message_for(tenant_id)

    # When a unit of work handles it: checks the inbox, places an order and commits
    order = new_order(tenant_id)
    async with unit_of_work(service, message) as uow:
        assert await uow.already_handled() is False
        await uow.orders.add(order)
        [written] = await uow.commit()

    # Then the inbox records the message next to the order, and the event names its cause
    [marked] = await rows(service, inbox)
    assert (marked.message_id, marked.type, marked.tenant_id) == (message.id, message.type, tenant_id)
    assert [row.id for row in await rows(service, orders)] == [order.id]
    assert written.causationid == message.id

    # And the same message handled again is recognised, while another message is not
    async with unit_of_work(service, message) as uow:
        assert await uow.already_handled() is True
    async with unit_of_work(service, message_for(tenant_id)) as uow:
        assert await uow.already_handled() is False


async def test_messages_marked_in_one_unit_of_work_commit_with_it_and_are_found_in_one_read(
    service: Service,
) -> None:
    # Given three messages from another service, the first handled before
    tenant_id = new_id()
    earlier, first, second = message_for(tenant_id), message_for(tenant_id), message_for(tenant_id)
    async with unit_of_work(service, earlier) as uow:
        await uow.commit()

    # When one unit of work asks which of them are handled, places an order and marks the other two
    async with unit_of_work(service) as uow:
        found = await uow.handled_ids([earlier.id, first.id, second.id])
        await uow.orders.add(new_order(tenant_id))
        uow.mark_handled([first, second])
        await uow.commit()

    # Then it found the earlier one only, and the inbox holds all three, each once, with the order
    assert found == {earlier.id}
    marks = {row.message_id: (row.type, row.tenant_id) for row in await rows(service, inbox)}
    assert marks == {
        message.id: (OrderReceived.event_type, tenant_id) for message in (earlier, first, second)
    }
    assert await count(service, inbox) == 3
    assert await count(service, orders) == 1

    # And a unit of work that marks one of them again fails to commit and keeps nothing
    with pytest.raises(IntegrityError):
        await place_an_order_marking(service, tenant_id, [message_for(tenant_id), first])
    assert await count(service, inbox) == 3
    assert await count(service, orders) == 1


async def test_a_handling_that_rolls_back_does_not_mark_the_message(service: Service) -> None:
    # Given a message whose handling fails after placing an order
    tenant_id = new_id()
    message = message_for(tenant_id)
    with pytest.raises(RuntimeError, match="handler failed"):
        await place_an_order_then_fail(service, tenant_id, message)

    # When the message is delivered again
    async with unit_of_work(service, message) as uow:
        handled_before = await uow.already_handled()

    # Then it counts as new: nothing of the failed attempt was kept
    assert handled_before is False
    assert await count(service, inbox) == 0
    assert await count(service, orders) == 0


async def test_the_same_message_handled_twice_at_once_through_the_bus_places_one_order(
    service: Service,
) -> None:
    # Given one OrderReceived-like message delivered twice
    tenant_id = new_id()
    message = message_for(tenant_id)
    command = PlaceOrder(tenant_id=tenant_id, source="api", draft=DRAFT, actor="test")

    # When both deliveries are handled concurrently
    results = await asyncio.gather(
        service.bus.handle(command, causing_message=message),
        service.bus.handle(command, causing_message=message),
    )

    # Then one placed the order and the other found the message already handled
    placed = [result for result in results if result is not None]
    assert results.count(None) == 1
    assert len(placed) == 1
    assert isinstance(placed[0], Placement)
    assert placed[0].status_code == 201
    assert await count(service, orders) == 1
    assert await count(service, inbox) == 1
    # And the outbox holds its one creation event and the one audit entry of that creation
    assert sorted(row.type for row in await rows(service, outbox)) == [
        AuditRecorded.event_type,
        OrderCreated.event_type,
    ]


# --- PostgreSQL only ------------------------------------------------------------------------------


async def test_racing_duplicate_handlers_end_with_one_effect_and_an_integrity_error(
    postgres_service: Service,
) -> None:
    # Given two units of work for the same message that both found it not yet handled
    service = postgres_service
    tenant_id = new_id()
    message = message_for(tenant_id)
    first, second = unit_of_work(service, message), unit_of_work(service, message)
    async with first, second:
        assert await first.already_handled() is False
        assert await second.already_handled() is False
        await first.orders.add(new_order(tenant_id))
        await second.orders.add(new_order(tenant_id))

        # When both commit at the same time
        outcomes = await asyncio.gather(first.commit(), second.commit(), return_exceptions=True)

    # Then one commits its order and event, the other fails on the inbox key and keeps nothing
    winners = [outcome for outcome in outcomes if isinstance(outcome, list)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert isinstance(losers[0], IntegrityError)
    assert await count(service, orders) == 1
    assert [row.message_id for row in await rows(service, inbox)] == [message.id]
    assert [row.id for row in await rows(service, outbox)] == [event.id for event in winners[0]]


async def test_two_relays_on_one_database_publish_every_row_exactly_once(postgres_service: Service) -> None:
    # Given 1,000 committed events and two relays with slow brokers, fifty rows a batch
    service = postgres_service
    committed = await place_orders(service, new_id(), 1000)
    brokers = [RecordingBroker(delay=0.01), RecordingBroker(delay=0.01)]
    relays = [relay_for(service, broker, batch_size=50) for broker in brokers]

    # When both relays drain the outbox at the same time
    counts = await asyncio.gather(*(relay.publish_pending() for relay in relays))

    # Then every event went out exactly once in total, both relays took part, each in seq order
    all_published = brokers[0].ids + brokers[1].ids
    assert sum(counts) == 1000
    assert Counter(all_published) == Counter(committed)
    assert all(len(broker.published) > 0 for broker in brokers)
    position = {event_id: index for index, event_id in enumerate(committed)}
    for broker in brokers:
        assert broker.ids == sorted(broker.ids, key=position.__getitem__)
    assert await unpublished(service) == 0


async def test_a_listening_relay_publishes_a_new_event_promptly_despite_a_long_poll(
    postgres_service: Service,
) -> None:
    # Given a started relay that polls only every 30 s and has drained what was there
    service = postgres_service
    tenant_id = new_id()
    [earlier] = await place_orders(service, tenant_id)
    broker = RecordingBroker()
    relay = relay_for(service, broker, poll_seconds=30.0)
    await relay.start()
    try:

        async def published(expected: int) -> bool:
            return len(broker.published) >= expected

        await wait_until(lambda: published(1), timeout=5.0)
        await asyncio.sleep(0.2)

        # When another event commits (its unit of work does not wake the relay in-process; only NOTIFY can)
        [later] = await place_orders(service, tenant_id)

        # Then the relay publishes it well within the poll interval
        took = await wait_until(lambda: published(2), timeout=2.0)
    finally:
        await relay.stop()
    assert took < 2.0
    assert broker.ids == [earlier, later]


@asynccontextmanager
async def all_services(settings: Settings) -> AsyncIterator[list[Service]]:
    services = build_services(settings)
    try:
        yield services
    finally:
        for built in services:
            await built.database.dispose()


async def schema_state(service: Service) -> dict[str, Any]:
    """Schemas, the migration version of each service, and which schemas hold an outbox."""
    async with service.database.reader() as session:
        schemas = (
            await session.scalars(
                text(
                    "SELECT schema_name FROM information_schema.schemata "
                    "WHERE schema_name NOT LIKE 'pg\\_%' AND schema_name <> 'information_schema' "
                    "ORDER BY schema_name"
                )
            )
        ).all()
        versions = {
            name: (await session.scalars(text(f'SELECT version_num FROM "{name}".alembic_version'))).all()
            for name in SERVICES
        }
        tables = (
            await session.execute(
                text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_name IN ('outbox', 'inbox', 'alembic_version') "
                    "ORDER BY table_schema, table_name"
                )
            )
        ).all()
    return {"schemas": list(schemas), "versions": versions, "tables": [tuple(row) for row in tables]}


def expected_tables() -> list[tuple[str, str]]:
    return [
        (schema, table) for schema in sorted(SERVICES) for table in ("alembic_version", "inbox", "outbox")
    ]


async def test_migrations_create_one_schema_per_service_and_running_them_again_changes_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    # Given every service on one empty PostgreSQL database
    async with all_services(settings_for(tmp_path, database_url=postgres_url)) as services:
        # When each service is migrated
        for built in services:
            await upgrade(built.database, built.migrations)
        first = await schema_state(services[0])

        # And migrated again
        for built in services:
            await upgrade(built.database, built.migrations)
        second = await schema_state(services[0])

    # Then each service has its own schema with its own outbox, inbox and migration version
    assert first["schemas"] == ["dispatch", "identity", "integrations", "orders", "public"]
    assert first["tables"] == expected_tables()
    assert all(len(versions) == 1 for versions in first["versions"].values())
    # And the second run changed nothing
    assert second == first


async def test_two_processes_migrating_at_once_both_succeed(postgres_url: str, tmp_path: Path) -> None:
    # Given two copies of every service, as two processes starting together would build them
    settings = settings_for(tmp_path, database_url=postgres_url)
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(all_services(settings))
        other = await stack.enter_async_context(all_services(settings))

        # When both copies of each service migrate it at the same time
        # (service by service: alembic's `op` and `context` are process-global, so one process
        # migrates its services one after another, as `runtime.services.migrate` does)
        for mine, theirs in zip(one, other, strict=True):
            await asyncio.gather(
                upgrade(mine.database, mine.migrations), upgrade(theirs.database, theirs.migrations)
            )

        # Then both succeeded (the advisory lock made one wait) and each schema is migrated once
        state = await schema_state(one[0])
    assert state["schemas"] == ["dispatch", "identity", "integrations", "orders", "public"]
    assert state["tables"] == expected_tables()
    assert all(len(versions) == 1 for versions in state["versions"].values())
