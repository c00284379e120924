"""Orders use cases through the message bus, on the in-memory unit of work."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.orders.fakes import FakeOrderRepository, FakeOrdersStore, FakeOrdersUnitOfWork, StoredResponse

from doorstep.contracts.audit import AuditRecorded
from doorstep.contracts.orders import (
    Customer,
    GeoPoint,
    Item,
    OrderCreated,
    OrderDraft,
    OrderStatus,
    OrderStatusChanged,
    OrderUpdated,
    Stop,
    Totals,
)
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent
from doorstep.orders.domain.commands import AmendOrder, ChangeOrderStatus, ImportOrderBatch, PlaceOrder
from doorstep.orders.domain.errors import (
    IdempotencyKeyReused,
    IllegalStatusTransition,
    OrderChangedConcurrently,
    OrderFieldLocked,
    OrderNotFound,
)
from doorstep.orders.domain.model import Order
from doorstep.orders.handlers import HANDLERS, BatchOutcome, Placement
from doorstep.orders.views import OrderDetail, order_detail

TENANT = "t-1"
CREATED = "doorstep.orders.order.created.v1"
STATUS_CHANGED = "doorstep.orders.order.status_changed.v1"
UPDATED = "doorstep.orders.order.updated.v1"


def draft(external_id: str | None = "A-1") -> OrderDraft:
    return OrderDraft(
        external_id=external_id,
        pickup=Stop(
            name="Bakery Mitte", address="Torstr. 1, Berlin", location=GeoPoint(lat=52.529, lon=13.401)
        ),
        dropoff=Stop(
            name="Ada", address="Invalidenstr. 5, Berlin", location=GeoPoint(lat=52.531, lon=13.384)
        ),
        customer=Customer(name="Ada Lovelace"),
        items=[Item(name="Rye bread", quantity=2, unit_price=450)],
        currency="EUR",
        tip=100,
        delivery_fee=299,
    )


def place(
    external_id: str | None = "A-1",
    *,
    tenant_id: str = TENANT,
    source: str = "api",
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> PlaceOrder:
    return PlaceOrder(
        tenant_id=tenant_id,
        source=source,
        draft=draft(external_id),
        actor="user:ada",
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )


def received(message_id: str) -> CloudEvent:
    return CloudEvent(
        id=message_id,
        source="/doorstep/integrations",
        type="doorstep.integrations.order.received.v1",
        tenantid=TENANT,
        correlationid="corr-1",
        data={},
    )


def make_bus(store: FakeOrdersStore) -> MessageBus:
    return MessageBus(
        uow_factory=lambda causing: FakeOrdersUnitOfWork(store, causing), handlers=HANDLERS, dependencies={}
    )


@pytest.fixture
def store() -> FakeOrdersStore:
    return FakeOrdersStore()


@pytest.fixture
def bus(store: FakeOrdersStore) -> MessageBus:
    return make_bus(store)


async def placed(bus: MessageBus, store: FakeOrdersStore, external_id: str | None = "A-1") -> Order:
    placement = await bus.handle(place(external_id))
    assert placement.status_code == 201
    return store.order(tenant_id=TENANT, order_id=OrderDetail.model_validate_json(placement.body).id)


# PlaceOrder


async def test_placing_stores_the_order_and_publishes_created_once(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # When an order is placed
    placement = await bus.handle(place())

    # Then it is stored as placed and answered with 201 and its detail
    [order] = store.orders_of(TENANT)
    assert placement == Placement(201, order_detail(order).model_dump_json())
    assert (order.source, order.external_id, order.status, order.version) == (
        "api",
        "A-1",
        OrderStatus.PLACED,
        1,
    )
    assert order.totals == Totals(subtotal=900, delivery_fee=299, tip=100, total=1299)

    # And exactly one OrderCreated went to the outbox with the whole order
    [envelope] = store.published
    assert (envelope.type, envelope.tenantid, envelope.subject, envelope.source) == (
        CREATED,
        TENANT,
        order.id,
        "/doorstep/orders",
    )
    assert envelope.payload() == OrderCreated(order=order.snapshot())
    assert store.commits == 1


async def test_placing_the_same_external_id_again_answers_the_existing_order(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given an order placed with external id A-1
    first = await bus.handle(place("A-1"))

    # When the same external id is placed again
    second = await bus.handle(place("A-1"))

    # Then the existing order is answered with 200, and nothing new is stored or published
    assert second == Placement(200, first.body)
    assert len(store.orders_of(TENANT)) == 1
    assert [envelope.type for envelope in store.published] == [CREATED]


async def test_the_same_external_id_from_another_source_or_tenant_is_another_order(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given an order placed through the API with external id A-1
    await bus.handle(place("A-1"))

    # When A-1 arrives from Shopify, and for another tenant
    from_shopify = await bus.handle(place("A-1", source="shopify"))
    other_tenant = await bus.handle(place("A-1", tenant_id="t-2"))

    # Then each is a new order
    assert (from_shopify.status_code, other_tenant.status_code) == (201, 201)
    assert sorted(order.source for order in store.orders_of(TENANT)) == ["api", "shopify"]
    assert len(store.orders_of("t-2")) == 1
    assert [envelope.tenantid for envelope in store.published] == [TENANT, TENANT, "t-2"]


async def test_an_idempotency_key_with_the_same_body_replays_the_first_answer(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given an order without an external id placed with an Idempotency-Key
    first = await bus.handle(place(None, idempotency_key="key-1", request_hash="hash-1"))

    # When the same request is sent again with the same key
    again = await bus.handle(place(None, idempotency_key="key-1", request_hash="hash-1"))

    # Then the stored first answer comes back unchanged, and no second order exists
    [order] = store.orders_of(TENANT)
    assert first == Placement(201, order_detail(order).model_dump_json())
    assert again == first
    assert store.idempotency[(TENANT, "key-1")] == StoredResponse(
        tenant_id=TENANT,
        key="key-1",
        request_hash="hash-1",
        status_code=201,
        response=first.body,
        created_at=store.idempotency[(TENANT, "key-1")].created_at,
    )
    assert [envelope.type for envelope in store.published] == [CREATED]
    assert store.commits == 1


async def test_an_idempotency_key_reused_with_another_body_is_refused(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given a key used once
    await bus.handle(place(None, idempotency_key="key-1", request_hash="hash-1"))

    # When it comes again with a different request
    with pytest.raises(IdempotencyKeyReused) as raised:
        await bus.handle(place(None, idempotency_key="key-1", request_hash="hash-2"))

    # Then it is refused as a 422 naming the header, and nothing more is stored
    assert raised.value.status == 422
    assert raised.value.extensions == {
        "errors": [{"field": "Idempotency-Key", "in": "header", "message": "used with a different body"}]
    }
    assert len(store.orders_of(TENANT)) == 1
    assert store.idempotency[(TENANT, "key-1")].request_hash == "hash-1"
    assert len(store.published) == 1


async def test_an_idempotency_key_belongs_to_its_tenant(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given tenant t-1 used key-1
    await bus.handle(place(None, idempotency_key="key-1", request_hash="hash-1"))

    # When tenant t-2 uses the same key for another body
    placement = await bus.handle(place(None, tenant_id="t-2", idempotency_key="key-1", request_hash="hash-2"))

    # Then t-2 gets its own order
    assert placement.status_code == 201
    assert len(store.orders_of("t-2")) == 1
    assert store.idempotency[("t-2", "key-1")].request_hash == "hash-2"


async def test_a_message_handled_twice_places_one_order(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given an OrderReceived message that placed an order
    message = received("msg-1")
    first = await bus.handle(place("A-1", source="shopify"), causing_message=message)

    # When the broker redelivers it
    second = await bus.handle(place("A-1", source="shopify"), causing_message=message)

    # Then the second delivery does nothing
    assert first.status_code == 201
    assert second is None
    assert len(store.orders_of(TENANT)) == 1
    assert store.inbox == {"msg-1"}

    # And the one event carries the message as its cause and correlation
    [envelope] = store.published
    assert (envelope.type, envelope.causationid, envelope.correlationid) == (CREATED, "msg-1", "corr-1")
    assert store.commits == 1


async def test_a_redelivered_message_id_is_skipped_whatever_it_carries(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given a message whose order was placed under another external id
    await bus.handle(place("A-1"), causing_message=received("msg-1"))

    # When the same message id arrives carrying a different order
    again = await bus.handle(place("B-2"), causing_message=received("msg-1"))

    # Then the inbox alone decides: nothing is placed
    assert again is None
    assert [order.external_id for order in store.orders_of(TENANT)] == ["A-1"]


async def test_a_concurrent_placement_of_the_same_external_id_is_answered_as_the_existing_order(
    store: FakeOrdersStore,
) -> None:
    # Given another request commits A-1 just before this one inserts it
    rival = Order.place(
        id="rival", tenant_id=TENANT, source="api", draft=draft("A-1"), actor="user:bob", now=_now()
    )

    class LosingRace(FakeOrderRepository):
        raced = False

        async def add(self, order: Order) -> None:
            if not LosingRace.raced:
                LosingRace.raced = True
                rival.events.clear()
                store.orders[(TENANT, rival.id)] = rival
            await super().add(order)

    class RacingUnitOfWork(FakeOrdersUnitOfWork):
        async def __aenter__(self) -> RacingUnitOfWork:
            await super().__aenter__()
            self.orders = LosingRace(self.store)
            return self

    racing_bus = MessageBus(
        uow_factory=lambda causing: RacingUnitOfWork(store, causing), handlers=HANDLERS, dependencies={}
    )

    # When this request places A-1
    placement = await racing_bus.handle(place("A-1"))

    # Then the unique key stops the second insert and the retry answers with the rival's order
    assert placement == Placement(200, order_detail(rival).model_dump_json())
    assert [order.id for order in store.orders_of(TENANT)] == ["rival"]
    assert store.published == []


# ChangeOrderStatus


async def test_changing_the_status_stores_and_publishes_the_change(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given a placed order
    order = await placed(bus, store)

    # When the merchant accepts it
    detail = await bus.handle(
        ChangeOrderStatus(
            tenant_id=TENANT,
            order_id=order.id,
            status=OrderStatus.ACCEPTED,
            reason="on it",
            actor="user:baker",
        )
    )

    # Then the stored order is accepted, one version further, with the change in its history
    stored = store.order(tenant_id=TENANT, order_id=order.id)
    assert detail == order_detail(stored)
    assert stored.status == OrderStatus.ACCEPTED
    assert stored.version == 2
    assert [(change.from_status, change.to_status, change.actor) for change in stored.history] == [
        (None, OrderStatus.PLACED, "user:ada"),
        (OrderStatus.PLACED, OrderStatus.ACCEPTED, "user:baker"),
    ]
    assert detail.allowed_statuses == [
        OrderStatus.PREPARING,
        OrderStatus.READY_FOR_PICKUP,
        OrderStatus.CANCELLED,
    ]
    assert store.commits == 2

    # And OrderStatusChanged was published after the OrderCreated
    assert [envelope.type for envelope in store.published] == [CREATED, STATUS_CHANGED]
    assert store.published[1].payload() == OrderStatusChanged(
        order_id=order.id,
        external_id="A-1",
        source="api",
        from_status=OrderStatus.PLACED,
        to_status=OrderStatus.ACCEPTED,
        reason="on it",
        actor="user:baker",
        changed_at=stored.updated_at,
    )


async def test_changing_the_status_of_an_unknown_order_is_not_found(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # When a status change names no stored order
    with pytest.raises(OrderNotFound) as raised:
        await bus.handle(
            ChangeOrderStatus(
                tenant_id=TENANT, order_id="nope", status=OrderStatus.ACCEPTED, reason=None, actor="user:ops"
            )
        )

    # Then it is a 404 and nothing is committed
    assert (raised.value.status, raised.value.detail) == (404, "there is no order nope")
    assert store.commits == 0


async def test_another_tenants_order_is_not_found(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given tenant t-1's order
    order = await placed(bus, store)

    # When tenant t-2 tries to cancel it
    with pytest.raises(OrderNotFound):
        await bus.handle(
            ChangeOrderStatus(
                tenant_id="t-2",
                order_id=order.id,
                status=OrderStatus.CANCELLED,
                reason=None,
                actor="user:eve",
            )
        )

    # Then it stays placed
    assert store.order(tenant_id=TENANT, order_id=order.id).status == OrderStatus.PLACED


async def test_an_illegal_status_change_commits_nothing(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given a placed order
    order = await placed(bus, store)

    # When it is marked delivered straight away
    with pytest.raises(IllegalStatusTransition) as raised:
        await bus.handle(
            ChangeOrderStatus(
                tenant_id=TENANT,
                order_id=order.id,
                status=OrderStatus.DELIVERED,
                reason=None,
                actor="user:ops",
            )
        )

    # Then it is refused with the allowed moves, and the stored order and the outbox are as before
    assert raised.value.extensions["allowed_statuses"] == ["accepted", "rejected", "cancelled"]
    assert store.order(tenant_id=TENANT, order_id=order.id) == order
    assert [envelope.type for envelope in store.published] == [CREATED]
    assert store.commits == 1


# AmendOrder


async def test_amending_stores_the_change_and_publishes_updated(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given a placed order
    order = await placed(bus, store)

    # When its tip and notes change
    detail = await bus.handle(
        AmendOrder(
            tenant_id=TENANT, order_id=order.id, changes={"tip": 500, "notes": "3rd floor"}, actor="user:ada"
        )
    )

    # Then the stored order has them and its new totals
    stored = store.order(tenant_id=TENANT, order_id=order.id)
    assert detail == order_detail(stored)
    assert (stored.tip, stored.notes, stored.version) == (500, "3rd floor", 2)
    assert detail.totals == Totals(subtotal=900, delivery_fee=299, tip=500, total=1699)
    assert stored.history == order.history

    # And one OrderUpdated names the changed fields
    assert [envelope.type for envelope in store.published] == [CREATED, UPDATED]
    assert store.published[1].payload() == OrderUpdated(
        changed_fields=["tip", "notes"], order=stored.snapshot()
    )


async def test_amending_a_locked_field_commits_nothing(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given an order already being prepared
    order = await placed(bus, store)
    for status in (OrderStatus.ACCEPTED, OrderStatus.PREPARING):
        await bus.handle(
            ChangeOrderStatus(
                tenant_id=TENANT, order_id=order.id, status=status, reason=None, actor="user:baker"
            )
        )
    before = store.order(tenant_id=TENANT, order_id=order.id)
    commits = store.commits

    # When its items change
    with pytest.raises(OrderFieldLocked) as raised:
        await bus.handle(
            AmendOrder(
                tenant_id=TENANT,
                order_id=order.id,
                changes={"items": [Item(name="Cake", quantity=1, unit_price=100)]},
                actor="user:ada",
            )
        )

    # Then it is refused and nothing is stored or published
    assert raised.value.extensions == {"field": "items", "current_status": "preparing"}
    assert store.order(tenant_id=TENANT, order_id=order.id) == before
    assert store.commits == commits
    assert len(store.published) == 3


async def test_amending_to_the_same_values_commits_nothing(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given a placed order
    order = await placed(bus, store)

    # When it is "amended" to what it already holds
    detail = await bus.handle(
        AmendOrder(tenant_id=TENANT, order_id=order.id, changes={"tip": 100}, actor="user:ada")
    )

    # Then the detail is the stored order and nothing is committed
    assert detail == order_detail(order)
    assert store.order(tenant_id=TENANT, order_id=order.id).version == 1
    assert store.commits == 1
    assert len(store.published) == 1


async def test_amending_an_unknown_order_is_not_found(bus: MessageBus, store: FakeOrdersStore) -> None:
    with pytest.raises(OrderNotFound):
        await bus.handle(AmendOrder(tenant_id=TENANT, order_id="nope", changes={"tip": 1}, actor="user:ada"))
    assert store.commits == 0


# ImportOrderBatch


async def test_a_batch_counts_new_orders_and_duplicates(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given C-1 was imported before
    first = await bus.handle(ImportOrderBatch(tenant_id=TENANT, actor="user:ada", drafts=[draft("C-1")]))
    assert first == BatchOutcome(created=1, duplicates=0)

    # When a batch repeats C-1, and B-1 twice within itself
    outcome = await bus.handle(
        ImportOrderBatch(
            tenant_id=TENANT,
            actor="user:ada",
            drafts=[draft("A-1"), draft("B-1"), draft("C-1"), draft("B-1"), draft("D-1")],
        )
    )

    # Then three orders are new and two are duplicates
    assert outcome == BatchOutcome(created=3, duplicates=2)
    orders = store.orders_of(TENANT)
    assert sorted(order.external_id or "" for order in orders) == ["A-1", "B-1", "C-1", "D-1"]
    assert {order.source for order in orders} == {"csv"}
    assert {order.history[0].actor for order in orders} == {"user:ada"}

    # And one OrderCreated per new order went out
    assert [envelope.type for envelope in store.published] == [CREATED] * 4
    assert sorted(envelope.subject or "" for envelope in store.published) == sorted(
        order.id for order in orders
    )


async def test_a_batch_that_is_all_duplicates_creates_nothing(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given a batch imported once
    batch = ImportOrderBatch(tenant_id=TENANT, actor="user:ada", drafts=[draft("A-1"), draft("B-1")])
    await bus.handle(batch)

    # When it is imported again
    outcome = await bus.handle(batch)

    # Then both are duplicates and nothing more is published
    assert outcome == BatchOutcome(created=0, duplicates=2)
    assert len(store.orders_of(TENANT)) == 2
    assert len(store.published) == 2


async def test_a_batch_ignores_orders_placed_through_another_source(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given A-1 was placed through the API
    await placed(bus, store, "A-1")

    # When a CSV batch brings A-1
    outcome = await bus.handle(ImportOrderBatch(tenant_id=TENANT, actor="user:ada", drafts=[draft("A-1")]))

    # Then the CSV's A-1 is its own order
    assert outcome == BatchOutcome(created=1, duplicates=0)
    assert sorted(order.source for order in store.orders_of(TENANT)) == ["api", "csv"]


# Audit entries: one per change, written in the change's transaction; none when nothing changed.

AT = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


@pytest.fixture
def frozen_audit_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr("doorstep.kernel.unit_of_work.utcnow", lambda: AT)
    return AT


def audit(
    action: str, object_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None, **overrides: Any
) -> AuditRecorded:
    values: dict[str, Any] = {
        "service": "orders",
        "actor": "user:ada",
        "action": action,
        "object_type": "order",
        "object_id": object_id,
        "before": before,
        "after": after,
        "ip": None,
        "user_agent": None,
        "request_id": None,
        "occurred_at": AT,
    }
    return AuditRecorded(**{**values, **overrides})


def audited(store: FakeOrdersStore) -> list[tuple[str, AuditRecorded]]:
    entries = []
    for envelope in store.audited:
        entry = envelope.payload()
        assert isinstance(entry, AuditRecorded)
        entries.append((envelope.tenantid, entry))
    return entries


async def test_placing_audits_the_new_order_as_it_was_stored(
    bus: MessageBus, store: FakeOrdersStore, frozen_audit_clock: datetime
) -> None:
    # When an order is placed
    order = await placed(bus, store)

    # Then one entry records its creation by the caller: nothing before, the whole order after
    assert audited(store) == [
        (TENANT, audit("order.created", order.id, None, order.snapshot().model_dump(mode="json")))
    ]


async def test_answering_an_existing_order_or_a_replayed_key_audits_nothing(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given an order placed with an idempotency key
    first = place("A-1", idempotency_key="k-1", request_hash="h-1")
    await bus.handle(first)

    # When the same request is replayed, and the external id is placed again without a key
    await bus.handle(first)
    await bus.handle(place("A-1"))

    # Then only the first placement was audited
    assert [entry.action for _, entry in audited(store)] == ["order.created"]


async def test_a_status_change_audits_the_status_before_and_after(
    bus: MessageBus, store: FakeOrdersStore, frozen_audit_clock: datetime
) -> None:
    # Given a placed order
    order = await placed(bus, store)

    # When the baker accepts it
    await bus.handle(
        ChangeOrderStatus(
            tenant_id=TENANT,
            order_id=order.id,
            status=OrderStatus.ACCEPTED,
            reason="on it",
            actor="user:baker",
        )
    )

    # Then the entry names the baker and the move, with the reason given
    assert audited(store)[1:] == [
        (
            TENANT,
            audit(
                "order.status_changed",
                order.id,
                {"status": "placed"},
                {"status": "accepted", "reason": "on it"},
                actor="user:baker",
            ),
        )
    ]


async def test_an_illegal_status_change_audits_nothing(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given a placed order
    order = await placed(bus, store)

    # When it is moved to delivered straight away
    with pytest.raises(IllegalStatusTransition):
        await bus.handle(
            ChangeOrderStatus(
                tenant_id=TENANT, order_id=order.id, status=OrderStatus.DELIVERED, reason=None, actor="user:x"
            )
        )

    # Then no entry beyond the creation's was recorded
    assert [entry.action for _, entry in audited(store)] == ["order.created"]


async def test_amending_audits_only_the_fields_that_changed(
    bus: MessageBus, store: FakeOrdersStore, frozen_audit_clock: datetime
) -> None:
    # Given a placed order with a tip of 100 and no notes
    order = await placed(bus, store)

    # When its tip, notes and payment are sent, the tip unchanged
    new_items = [Item(name="Pretzel", quantity=3, unit_price=120)]
    await bus.handle(
        AmendOrder(
            tenant_id=TENANT,
            order_id=order.id,
            changes={"tip": 100, "notes": "3rd floor", "items": new_items},
            actor="user:ada",
        )
    )

    # Then the entry holds the notes and items before and after, as JSON, and not the tip
    assert audited(store)[1:] == [
        (
            TENANT,
            audit(
                "order.updated",
                order.id,
                {
                    "notes": None,
                    "items": [{"name": "Rye bread", "sku": None, "quantity": 2, "unit_price": 450}],
                },
                {
                    "notes": "3rd floor",
                    "items": [{"name": "Pretzel", "sku": None, "quantity": 3, "unit_price": 120}],
                },
            ),
        )
    ]


async def test_amending_to_the_same_values_audits_nothing(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given a placed order
    order = await placed(bus, store)

    # When it is "amended" to the tip it has
    await bus.handle(AmendOrder(tenant_id=TENANT, order_id=order.id, changes={"tip": 100}, actor="user:ada"))

    # Then nothing was audited beyond its creation
    assert [entry.action for _, entry in audited(store)] == ["order.created"]


async def test_an_import_batch_is_one_entry_listing_the_orders_it_created(
    bus: MessageBus, store: FakeOrdersStore, frozen_audit_clock: datetime
) -> None:
    # Given B-1 was imported before
    await bus.handle(ImportOrderBatch(tenant_id=TENANT, actor="user:ada", drafts=[draft("B-1")]))

    # When a batch brings A-1, B-1 again and C-1
    await bus.handle(
        ImportOrderBatch(
            tenant_id=TENANT, actor="user:ada", drafts=[draft("A-1"), draft("B-1"), draft("C-1")]
        )
    )

    # Then the batch is one entry with the ids of the two new orders, in file order, and the duplicate count
    [_, (tenant_id, entry)] = audited(store)
    ids = {order.external_id: order.id for order in store.orders_of(TENANT)}
    assert (tenant_id, entry) == (
        TENANT,
        audit(
            "order.imported",
            entry.object_id,
            None,
            {"source": "csv", "order_ids": [ids["A-1"], ids["C-1"]], "duplicates": 1},
            object_type="order_import",
        ),
    )
    assert entry.object_id not in ids.values()


async def test_an_import_batch_of_duplicates_only_audits_nothing(
    bus: MessageBus, store: FakeOrdersStore
) -> None:
    # Given a batch imported once
    batch = ImportOrderBatch(tenant_id=TENANT, actor="user:ada", drafts=[draft("A-1")])
    await bus.handle(batch)

    # When it is imported again
    await bus.handle(batch)

    # Then only the first import was audited
    assert [entry.action for _, entry in audited(store)] == ["order.imported"]


async def test_an_order_from_a_partner_platform_is_audited_with_the_connection_as_actor(
    bus: MessageBus, store: FakeOrdersStore, frozen_audit_clock: datetime
) -> None:
    # When the consumer places an order from a received event, in the name of its connection
    message = received("m-1")
    command = PlaceOrder(tenant_id=TENANT, source="shopify", draft=draft("S-1"), actor="connection:c-1")
    await bus.handle(command, causing_message=message)

    # Then the entry names the connection, has no origin, and carries the chain's correlation id
    [(tenant_id, entry)] = audited(store)
    [order] = store.orders_of(TENANT)
    assert (tenant_id, entry) == (
        TENANT,
        audit(
            "order.created",
            order.id,
            None,
            order.snapshot().model_dump(mode="json"),
            actor="connection:c-1",
            request_id="corr-1",
        ),
    )
    assert store.audited[0].correlationid == "corr-1"
    assert store.audited[0].causationid == "m-1"


# The fake keeps the real unit of work's promises, so the tests above can fail.


async def test_writes_not_committed_are_discarded(store: FakeOrdersStore) -> None:
    # Given an order added and a key remembered in a unit of work that never commits
    order = Order.place(id="o-1", tenant_id=TENANT, source="api", draft=draft(), actor="user:ada", now=_now())
    async with FakeOrdersUnitOfWork(store) as uow:
        await uow.orders.add(order)
        await uow.idempotency.remember(
            tenant_id=TENANT, key="k", request_hash="h", status_code=201, response="{}", at=_now()
        )
        assert await uow.orders.get(tenant_id=TENANT, order_id="o-1") == order

    # Then a later unit of work sees none of it
    async with FakeOrdersUnitOfWork(store) as later:
        assert await later.orders.get(tenant_id=TENANT, order_id="o-1") is None
        assert await later.idempotency.find(tenant_id=TENANT, key="k") is None
    assert (store.orders, store.idempotency, store.published, store.commits) == ({}, {}, [], 0)
    assert uow.committed is False


async def test_a_stale_version_cannot_be_saved(bus: MessageBus, store: FakeOrdersStore) -> None:
    # Given two units of work loaded the same order
    order = await placed(bus, store)
    async with FakeOrdersUnitOfWork(store) as first, FakeOrdersUnitOfWork(store) as second:
        mine = await first.orders.get(tenant_id=TENANT, order_id=order.id)
        theirs = await second.orders.get(tenant_id=TENANT, order_id=order.id)
        assert mine is not None
        assert theirs is not None
        mine.amend({"tip": 1}, now=_now())
        theirs.amend({"tip": 2}, now=_now())

        # When the first commits its change
        await first.orders.save(mine)
        await first.commit()

        # Then the second's save of the old version is refused
        with pytest.raises(OrderChangedConcurrently):
            await second.orders.save(theirs)

    assert store.order(tenant_id=TENANT, order_id=order.id).tip == 1


def _now() -> datetime:
    return datetime.now(UTC)
