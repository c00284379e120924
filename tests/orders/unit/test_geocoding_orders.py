"""Orders without coordinates: geocoded before they are stored, or kept in needs_attention until they have them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.orders.fakes import FakeOrdersStore, FakeOrdersUnitOfWork

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
)
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.geocoding import AddressNotGeocoded, GeocodingFailed
from doorstep.kernel.messages import CloudEvent
from doorstep.orders.domain.commands import AmendOrder, GeocodeOrder, ImportOrderBatch, PlaceOrder
from doorstep.orders.domain.errors import (
    IllegalStatusTransition,
    OrderNotLocated,
    StopWithoutLocation,
)
from doorstep.orders.domain.model import TRANSITIONS, Order, StatusChange
from doorstep.orders.handlers import HANDLERS, Placement
from doorstep.orders.views import OrderDetail

S = OrderStatus
TENANT = "t-1"
NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
BAKERY = GeoPoint(lat=52.529, lon=13.401)
ADA = GeoPoint(lat=52.531, lon=13.384)
PICKUP = Stop(name="Bakery Mitte", address="Torstr. 1, Berlin", location=BAKERY)
DROPOFF = Stop(name="Ada", address="Invalidenstr. 5, Berlin", location=ADA)
UNLOCATED_DROPOFF = DROPOFF.model_copy(update={"location": None})
REASON_DROPOFF = "no coordinates for the dropoff address; set them with PATCH or retry geocoding"


def draft(
    *, pickup: Stop = PICKUP, dropoff: Stop = UNLOCATED_DROPOFF, external_id: str = "A-1"
) -> OrderDraft:
    return OrderDraft(
        external_id=external_id,
        pickup=pickup,
        dropoff=dropoff,
        customer=Customer(name="Ada Lovelace"),
        items=[Item(name="Rye bread", quantity=2, unit_price=450)],
        currency="EUR",
    )


def waiting_order() -> Order:
    order = Order.place(id="o-1", tenant_id=TENANT, source="api", draft=draft(), actor="user:ada", now=NOW)
    order.events.clear()
    return order


# The status machine


def test_an_order_without_coordinates_is_placed_in_needs_attention_with_the_reason() -> None:
    # When an order whose dropoff has no coordinates is placed
    order = Order.place(id="o-1", tenant_id=TENANT, source="api", draft=draft(), actor="user:ada", now=NOW)

    # Then it waits in needs_attention, says why in its history, and is announced as such
    assert order.status == S.NEEDS_ATTENTION
    assert order.unlocated_stops == ["dropoff"]
    assert order.history == [StatusChange(None, S.NEEDS_ATTENTION, "user:ada", REASON_DROPOFF, NOW)]
    assert order.allowed_statuses == {S.PLACED, S.REJECTED, S.CANCELLED}
    assert order.events == [OrderCreated(order=order.snapshot())]
    assert order.snapshot().status == S.NEEDS_ATTENTION


def test_an_order_with_neither_stop_located_names_both() -> None:
    order = Order.place(
        id="o-1",
        tenant_id=TENANT,
        source="csv",
        draft=draft(pickup=PICKUP.model_copy(update={"location": None})),
        actor="user:ada",
        now=NOW,
    )
    assert order.history[0].reason == (
        "no coordinates for the pickup and dropoff address; set them with PATCH or retry geocoding"
    )


def test_needs_attention_cannot_become_placed_while_a_stop_has_no_coordinates() -> None:
    # Given an order waiting for the dropoff's coordinates
    order = waiting_order()

    # When someone moves it to placed by hand
    with pytest.raises(OrderNotLocated) as raised:
        order.move_to(S.PLACED, actor="user:ops", reason=None, now=LATER)

    # Then it is a 409 naming the missing location, and nothing changed
    assert raised.value.status == 409
    assert raised.value.extensions == {"missing_locations": ["dropoff.location"]}
    assert order.status == S.NEEDS_ATTENTION
    assert order.events == []


@pytest.mark.parametrize("target", [S.CANCELLED, S.REJECTED])
def test_an_order_waiting_for_coordinates_can_be_cancelled_or_rejected(target: OrderStatus) -> None:
    order = waiting_order()
    order.move_to(target, actor="user:ops", reason="unknown street", now=LATER)
    assert order.status == target
    assert order.events == [
        OrderStatusChanged(
            order_id="o-1",
            external_id="A-1",
            source="api",
            from_status=S.NEEDS_ATTENTION,
            to_status=target,
            reason="unknown street",
            actor="user:ops",
            changed_at=LATER,
        )
    ]


@pytest.mark.parametrize("target", sorted(set(OrderStatus) - TRANSITIONS[S.NEEDS_ATTENTION]))
def test_needs_attention_moves_nowhere_else(target: OrderStatus) -> None:
    with pytest.raises(IllegalStatusTransition):
        waiting_order().move_to(target, actor="user:ops", reason=None, now=LATER)


def test_setting_the_missing_coordinates_places_the_order() -> None:
    # Given an order waiting for the dropoff's coordinates
    order = waiting_order()

    # When a dispatcher sets them
    changed = order.amend({"dropoff": DROPOFF}, now=LATER, actor="user:dispatcher")

    # Then the dropoff changes and the order becomes placed, in that order, by that person
    assert changed == ["dropoff"]
    assert order.status == S.PLACED
    assert order.history[-1] == StatusChange(
        S.NEEDS_ATTENTION, S.PLACED, "user:dispatcher", "both stops have coordinates", LATER
    )
    assert [type(event) for event in order.events] == [OrderUpdated, OrderStatusChanged]
    assert order.events[1] == OrderStatusChanged(
        order_id="o-1",
        external_id="A-1",
        source="api",
        from_status=S.NEEDS_ATTENTION,
        to_status=S.PLACED,
        reason="both stops have coordinates",
        actor="user:dispatcher",
        changed_at=LATER,
    )


def test_changing_another_field_leaves_the_order_waiting() -> None:
    order = waiting_order()
    assert order.amend({"tip": 200}, now=LATER) == ["tip"]
    assert order.status == S.NEEDS_ATTENTION
    assert [type(event) for event in order.events] == [OrderUpdated]


def test_a_stop_sent_again_without_coordinates_keeps_them_while_its_address_is_the_same() -> None:
    # Given a placed order
    order = Order.place(
        id="o-1", tenant_id=TENANT, source="api", draft=draft(dropoff=DROPOFF), actor="user:ada", now=NOW
    )
    order.events.clear()

    # When its dropoff is sent again without coordinates, with only the phone changed
    changed = order.amend({"dropoff": UNLOCATED_DROPOFF.model_copy(update={"phone": "+4930111"})}, now=LATER)

    # Then the phone changes and the coordinates stay
    assert changed == ["dropoff"]
    assert order.dropoff == DROPOFF.model_copy(update={"phone": "+4930111"})
    assert order.status == S.PLACED


def test_a_placed_order_refuses_a_new_address_without_coordinates() -> None:
    # Given a placed order
    order = Order.place(
        id="o-1", tenant_id=TENANT, source="api", draft=draft(dropoff=DROPOFF), actor="user:ada", now=NOW
    )
    order.events.clear()

    # When its dropoff moves to an address without coordinates
    with pytest.raises(StopWithoutLocation) as raised:
        order.amend({"dropoff": Stop(name="Ada", address="Nowhere 1")}, now=LATER)

    # Then a 422 names dropoff.location, and nothing changed
    assert raised.value.status == 422
    assert raised.value.field == "dropoff.location"
    assert order.dropoff == DROPOFF
    assert order.events == []


# The handlers, with a geocoder that knows a table of addresses


class TableGeocoder:
    def __init__(self, known: dict[str, GeoPoint], *, failing: bool = False) -> None:
        self.known = known
        self.failing = failing
        self.asked: list[str] = []

    async def geocode(self, address: str, *, country_hint: str | None = None) -> GeoPoint | None:
        self.asked.append(address)
        if self.failing:
            raise GeocodingFailed("down")
        return self.known.get(address)


def make_bus(store: FakeOrdersStore, geocoder: TableGeocoder) -> MessageBus:
    return MessageBus(
        uow_factory=lambda causing: FakeOrdersUnitOfWork(store, causing),
        handlers=HANDLERS,
        dependencies={"geocoder": geocoder},
    )


def place(order_draft: OrderDraft) -> PlaceOrder:
    return PlaceOrder(tenant_id=TENANT, source="api", draft=order_draft, actor="user:ada")


async def test_placing_geocodes_a_stop_without_coordinates() -> None:
    # Given a geocoder that knows Ada's address
    store, geocoder = FakeOrdersStore(), TableGeocoder({DROPOFF.address: ADA})

    # When an order comes with her address only
    placement: Placement = await make_bus(store, geocoder).handle(place(draft()))

    # Then it is placed with her coordinates, asked for once, the pickup's not asked for at all
    [order] = store.orders_of(TENANT)
    assert placement.status_code == 201
    assert (order.status, order.dropoff, order.pickup) == (S.PLACED, DROPOFF, PICKUP)
    assert order.history[0].reason is None
    assert geocoder.asked == [DROPOFF.address]
    [created] = store.published
    assert created.payload() == OrderCreated(order=order.snapshot())


@pytest.mark.parametrize("failing", [False, True], ids=["unknown-address", "geocoder-down"])
async def test_an_order_the_geocoder_cannot_locate_is_kept_in_needs_attention(failing: bool) -> None:
    # Given a geocoder that does not know the address, or is down
    store = FakeOrdersStore()
    geocoder = TableGeocoder({}, failing=failing)

    # When the order is placed
    placement: Placement = await make_bus(store, geocoder).handle(place(draft()))

    # Then it is stored (never dropped), waiting in needs_attention, and announced
    [order] = store.orders_of(TENANT)
    assert placement.status_code == 201
    assert OrderDetail.model_validate_json(placement.body).status == S.NEEDS_ATTENTION
    assert (order.status, order.dropoff) == (S.NEEDS_ATTENTION, UNLOCATED_DROPOFF)
    assert order.history[0].reason == REASON_DROPOFF
    assert [envelope.type for envelope in store.published] == ["doorstep.orders.order.created.v1"]


async def test_retrying_geocoding_places_the_order_once_the_address_is_found() -> None:
    # Given an order waiting because the geocoder did not know the address
    store, geocoder = FakeOrdersStore(), TableGeocoder({})
    bus = make_bus(store, geocoder)
    placement: Placement = await bus.handle(place(draft()))
    order_id = OrderDetail.model_validate_json(placement.body).id

    # When a retry finds nothing, then the geocoder learns the address and it is retried again
    with pytest.raises(AddressNotGeocoded) as raised:
        await bus.handle(GeocodeOrder(tenant_id=TENANT, order_id=order_id, actor="user:dispatcher"))
    geocoder.known[DROPOFF.address] = ADA
    detail: OrderDetail = await bus.handle(
        GeocodeOrder(tenant_id=TENANT, order_id=order_id, actor="user:dispatcher")
    )

    # Then the first retry named the address, the second placed the order with the coordinates
    assert raised.value.status == 422
    assert raised.value.extensions["errors"] == [
        {"field": "dropoff.address", "in": "body", "message": "no coordinates found"}
    ]
    order = store.order(tenant_id=TENANT, order_id=order_id)
    assert (detail.status, order.status, order.dropoff) == (S.PLACED, S.PLACED, DROPOFF)
    assert [(change.from_status, change.to_status, change.actor) for change in order.history] == [
        (None, S.NEEDS_ATTENTION, "user:ada"),
        (S.NEEDS_ATTENTION, S.PLACED, "user:dispatcher"),
    ]
    assert [envelope.type for envelope in store.published] == [
        "doorstep.orders.order.created.v1",
        "doorstep.orders.order.updated.v1",
        "doorstep.orders.order.status_changed.v1",
    ]
    geocoded = store.audited[-1].payload()
    assert isinstance(geocoded, AuditRecorded)
    assert (geocoded.action, geocoded.actor, geocoded.before, geocoded.after) == (
        "order.geocoded",
        "user:dispatcher",
        {"status": "needs_attention", "dropoff": None},
        {"status": "placed", "dropoff": {"lat": 52.531, "lon": 13.384}},
    )

    # And retrying a located order changes nothing and asks nobody
    asked = len(geocoder.asked)
    again: OrderDetail = await bus.handle(GeocodeOrder(tenant_id=TENANT, order_id=order_id, actor="user:x"))
    assert (again.status, len(geocoder.asked), len(store.published)) == (S.PLACED, asked, 3)


async def test_a_patch_with_a_new_address_only_is_geocoded() -> None:
    # Given a placed order, and a geocoder that knows Ada's office
    office = Stop(name="Ada (office)", address="Friedrichstr. 100, Berlin")
    store = FakeOrdersStore()
    geocoder = TableGeocoder({office.address: GeoPoint(lat=52.52, lon=13.39)})
    bus = make_bus(store, geocoder)
    placement: Placement = await bus.handle(place(draft(dropoff=DROPOFF)))
    order_id = OrderDetail.model_validate_json(placement.body).id

    # When the dropoff is changed to the office's address, without coordinates
    await bus.handle(
        AmendOrder(tenant_id=TENANT, order_id=order_id, changes={"dropoff": office}, actor="user:ops")
    )

    # Then the new address got its coordinates
    order = store.order(tenant_id=TENANT, order_id=order_id)
    assert order.dropoff == office.model_copy(update={"location": GeoPoint(lat=52.52, lon=13.39)})
    assert geocoder.asked == [office.address]


async def test_a_patch_setting_the_coordinates_places_a_waiting_order_and_records_the_move() -> None:
    # Given an order waiting in needs_attention
    store, geocoder = FakeOrdersStore(), TableGeocoder({})
    bus = make_bus(store, geocoder)
    placement: Placement = await bus.handle(place(draft()))
    order_id = OrderDetail.model_validate_json(placement.body).id

    # When a dispatcher sets the dropoff's coordinates
    detail: OrderDetail = await bus.handle(
        AmendOrder(tenant_id=TENANT, order_id=order_id, changes={"dropoff": DROPOFF}, actor="user:dispatcher")
    )

    # Then it is placed, and the stored history has the move
    order = store.order(tenant_id=TENANT, order_id=order_id)
    assert detail.status == order.status == S.PLACED
    assert [change.to_status for change in order.history] == [S.NEEDS_ATTENTION, S.PLACED]
    assert geocoder.asked == [DROPOFF.address]  # at placing only: the PATCH brought coordinates


async def test_an_imported_batch_is_geocoded_and_keeps_what_it_cannot_locate() -> None:
    # Given a geocoder that knows one of two addresses
    store, geocoder = FakeOrdersStore(), TableGeocoder({DROPOFF.address: ADA})
    unknown = Stop(name="Bob", address="Nowhere 1")

    # When a batch of both is imported
    await make_bus(store, geocoder).handle(
        ImportOrderBatch(
            tenant_id=TENANT,
            actor="user:ada",
            drafts=[draft(external_id="C-1"), draft(external_id="C-2", dropoff=unknown)],
        )
    )

    # Then both are stored: one placed with coordinates, one waiting
    statuses = {
        order.external_id: (order.status, order.dropoff.location) for order in store.orders_of(TENANT)
    }
    assert statuses == {"C-1": (S.PLACED, ADA), "C-2": (S.NEEDS_ATTENTION, None)}


async def test_a_platform_order_without_coordinates_is_geocoded_and_its_event_handled_once() -> None:
    # Given a geocoder that knows Ada's address, and a platform's OrderReceived delivered twice
    store, geocoder = FakeOrdersStore(), TableGeocoder({DROPOFF.address: ADA})
    bus = make_bus(store, geocoder)
    envelope = CloudEvent(
        id="evt-1",
        source="/doorstep/integrations",
        type="doorstep.integrations.order.received.v1",
        tenantid=TENANT,
        correlationid="corr-1",
        data={},
    )
    command = PlaceOrder(tenant_id=TENANT, source="shopify", draft=draft(), actor="connection:c-1")

    # When the orders service handles both deliveries
    first = await bus.handle(command, causing_message=envelope)
    second = await bus.handle(command, causing_message=envelope)

    # Then one order is placed with the coordinates, and the redelivery had no effect
    [order] = store.orders_of(TENANT)
    assert (order.source, order.status, order.dropoff) == ("shopify", S.PLACED, DROPOFF)
    assert (first.status_code, second) == (201, None)


# Platform changes (a platform's later snapshot of the order)


def placed_order() -> Order:
    order = Order.place(
        id="o-2", tenant_id=TENANT, source="shopify", draft=draft(dropoff=DROPOFF), actor="c", now=NOW
    )
    order.events.clear()
    return order


def test_a_platform_snapshot_without_coordinates_for_the_same_address_keeps_them() -> None:
    # Given a placed order with located stops
    order = placed_order()
    # When the platform sends the order again with a new note and no coordinates for the same address
    snapshot = draft(dropoff=UNLOCATED_DROPOFF).model_copy(update={"notes": "ring twice"})
    outcome = order.apply_platform_change(snapshot, cancel=False, actor="c", reason="r", now=LATER)
    # Then only the note changed, and the drop-off keeps its coordinates
    assert (outcome.changed, outcome.skipped) == (["notes"], [])
    assert (order.dropoff, order.notes, order.status) == (DROPOFF, "ring twice", S.PLACED)


def test_a_platform_snapshot_with_a_new_address_nobody_located_is_skipped_not_an_error() -> None:
    # Given a placed order with located stops
    order = placed_order()
    # When the platform moves the drop-off to an address without coordinates
    moved = Stop(name="Ada", address="Nowhere 1")
    outcome = order.apply_platform_change(
        draft(dropoff=moved), cancel=False, actor="c", reason="r", now=LATER
    )
    # Then the drop-off is skipped (recorded for the audit entry), and the order keeps its located stop
    assert (outcome.changed, outcome.skipped) == ([], ["dropoff"])
    assert (order.dropoff, order.status, order.events) == (DROPOFF, S.PLACED, [])
