"""The order aggregate: its lifecycle, its totals, placing it, and which fields may still change."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from doorstep.contracts.orders import (
    Customer,
    GeoPoint,
    Item,
    OrderCreated,
    OrderDraft,
    OrderSnapshot,
    OrderStatus,
    OrderStatusChanged,
    OrderUpdated,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Stop,
    Totals,
)
from doorstep.orders.domain.errors import IllegalStatusTransition, OrderFieldLocked
from doorstep.orders.domain.model import EDITABLE_WHILE, TRANSITIONS, Order, StatusChange

S = OrderStatus
PLACED_AT = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
LATER = PLACED_AT + timedelta(minutes=7)

PICKUP = Stop(name="Bakery Mitte", address="Torstr. 1, Berlin", location=GeoPoint(lat=52.529, lon=13.401))
DROPOFF = Stop(name="Ada", address="Invalidenstr. 5, Berlin", location=GeoPoint(lat=52.531, lon=13.384))
CUSTOMER = Customer(name="Ada Lovelace", phone="+4930123456", email="ada@example.com")
ITEMS = [
    Item(name="Rye bread", sku="RYE-1", quantity=2, unit_price=450),
    Item(name="Cheesecake", quantity=1, unit_price=1200),
]
DRAFT = OrderDraft(
    external_id="A-1",
    merchant_id="bakery-mitte",
    pickup=PICKUP,
    dropoff=DROPOFF,
    customer=CUSTOMER,
    items=ITEMS,
    currency="EUR",
    tip=150,
    delivery_fee=299,
    notes="ring twice",
    payment=Payment(method=PaymentMethod.CARD, status=PaymentStatus.AUTHORIZED),
)

TERMINAL = [S.DELIVERED, S.REJECTED, S.CANCELLED, S.RETURNED]

ALLOWED_MOVES = [(current, target) for current, targets in TRANSITIONS.items() for target in sorted(targets)]
FORBIDDEN_MOVES = [
    (current, target)
    for current in OrderStatus
    for target in OrderStatus
    if target not in TRANSITIONS[current]
]


def placed_order() -> Order:
    return Order.place(id="o-1", tenant_id="t-1", source="api", draft=DRAFT, actor="user:ada", now=PLACED_AT)


def order_in(status: OrderStatus) -> Order:
    """An order already in `status`, with no pending events, as if loaded from the database."""
    order = placed_order()
    order.status = status
    order.events.clear()
    return order


def ids(moves: list[tuple[OrderStatus, OrderStatus]]) -> list[str]:
    return [f"{current.value}->{target.value}" for current, target in moves]


# Lifecycle


def test_the_lifecycle_allows_exactly_these_moves() -> None:
    assert {status: set(targets) for status, targets in TRANSITIONS.items()} == {
        S.NEEDS_ATTENTION: {S.PLACED, S.REJECTED, S.CANCELLED},
        S.PLACED: {S.ACCEPTED, S.REJECTED, S.CANCELLED},
        S.ACCEPTED: {S.PREPARING, S.READY_FOR_PICKUP, S.CANCELLED},
        S.PREPARING: {S.READY_FOR_PICKUP, S.CANCELLED},
        S.READY_FOR_PICKUP: {S.PICKED_UP, S.CANCELLED},
        S.PICKED_UP: {S.DELIVERED, S.FAILED_DELIVERY},
        S.FAILED_DELIVERY: {S.RETURNED},
        S.DELIVERED: set(),
        S.REJECTED: set(),
        S.CANCELLED: set(),
        S.RETURNED: set(),
    }


@pytest.mark.parametrize(("current", "target"), ALLOWED_MOVES, ids=ids(ALLOWED_MOVES))
def test_an_allowed_move_changes_the_status_and_records_it(current: OrderStatus, target: OrderStatus) -> None:
    # Given an order in the current status
    order = order_in(current)
    history_before = list(order.history)

    # When it moves to an allowed status
    order.move_to(target, actor="user:ops", reason="customer called", now=LATER)

    # Then the status, the history and the recorded event say so
    assert order.status == target
    assert order.updated_at == LATER
    assert order.allowed_statuses == TRANSITIONS[target]
    assert order.history == [
        *history_before,
        StatusChange(current, target, "user:ops", "customer called", LATER),
    ]
    assert order.events == [
        OrderStatusChanged(
            order_id="o-1",
            external_id="A-1",
            source="api",
            from_status=current,
            to_status=target,
            reason="customer called",
            actor="user:ops",
            changed_at=LATER,
        )
    ]


@pytest.mark.parametrize(("current", "target"), FORBIDDEN_MOVES, ids=ids(FORBIDDEN_MOVES))
def test_a_forbidden_move_is_refused_and_names_the_allowed_ones(
    current: OrderStatus, target: OrderStatus
) -> None:
    # Given an order in the current status
    order = order_in(current)
    before = copy.deepcopy(order)

    # When it is asked to move where its lifecycle does not go
    with pytest.raises(IllegalStatusTransition) as raised:
        order.move_to(target, actor="user:ops", reason=None, now=LATER)

    # Then the error names the statuses it may move to, and the order is untouched
    allowed = [status.value for status in OrderStatus if status in TRANSITIONS[current]]
    assert raised.value.extensions == {
        "current_status": current.value,
        "requested_status": target.value,
        "allowed_statuses": allowed,
    }
    assert raised.value.status == 409
    assert raised.value.type == "https://doorstep.dev/problems/illegal-status-transition"
    assert order == before
    assert order.events == []


def test_forbidden_moves_cover_every_other_pair() -> None:
    assert len(ALLOWED_MOVES) == 16
    assert len(FORBIDDEN_MOVES) == 105
    assert set(ALLOWED_MOVES) | set(FORBIDDEN_MOVES) == {(a, b) for a in OrderStatus for b in OrderStatus}


def test_the_terminal_statuses_are_exactly_these() -> None:
    assert sorted(status for status, targets in TRANSITIONS.items() if not targets) == sorted(TERMINAL)


@pytest.mark.parametrize("final", TERMINAL)
@pytest.mark.parametrize("target", list(OrderStatus))
def test_a_final_order_moves_nowhere(final: OrderStatus, target: OrderStatus) -> None:
    # Given an order in a final status
    order = order_in(final)

    # When anything tries to move it
    with pytest.raises(IllegalStatusTransition) as raised:
        order.move_to(target, actor="user:ops", reason=None, now=LATER)

    # Then nothing is allowed and the message says the order is final
    assert order.allowed_statuses == frozenset()
    assert raised.value.extensions["allowed_statuses"] == []
    assert raised.value.detail == (
        f"an order that is {final.value} cannot become {target.value}; allowed: none: the order is final"
    )
    assert order.status == final


def test_an_order_walks_from_placed_to_delivered() -> None:
    # Given a placed order
    order = placed_order()

    # When it goes through the whole happy path
    path = [S.ACCEPTED, S.PREPARING, S.READY_FOR_PICKUP, S.PICKED_UP, S.DELIVERED]
    for minute, status in enumerate(path, start=1):
        order.move_to(status, actor="courier:7", reason=None, now=PLACED_AT + timedelta(minutes=minute))

    # Then its history lists every step in order, and each step was published
    assert [(change.from_status, change.to_status) for change in order.history] == [
        (None, S.PLACED),
        (S.PLACED, S.ACCEPTED),
        (S.ACCEPTED, S.PREPARING),
        (S.PREPARING, S.READY_FOR_PICKUP),
        (S.READY_FOR_PICKUP, S.PICKED_UP),
        (S.PICKED_UP, S.DELIVERED),
    ]
    assert [type(event).__name__ for event in order.events] == ["OrderCreated"] + ["OrderStatusChanged"] * 5
    assert order.updated_at == PLACED_AT + timedelta(minutes=5)


# Totals


def test_totals_add_items_fee_and_tip() -> None:
    # Given 2 x 4.50 and 1 x 12.00, a 2.99 fee and a 1.50 tip
    order = placed_order()

    # Then the subtotal is 21.00 and the total 25.49
    assert order.totals == Totals(subtotal=2100, delivery_fee=299, tip=150, total=2549)


def test_totals_follow_amended_items() -> None:
    # Given a placed order
    order = placed_order()

    # When its items, fee and tip change
    order.amend(
        {"items": [Item(name="Baguette", quantity=3, unit_price=333)], "delivery_fee": 0, "tip": 1},
        now=LATER,
    )

    # Then the totals are recomputed from them
    assert order.totals == Totals(subtotal=999, delivery_fee=0, tip=1, total=1000)


# Placing


def test_placing_records_one_created_event_with_the_snapshot() -> None:
    # When an order is placed from a draft
    order = placed_order()

    # Then it is placed with one history entry and one OrderCreated carrying the whole order
    assert order.status == S.PLACED
    assert order.version == 1
    assert order.tenant_id == "t-1"
    assert order.history == [StatusChange(None, S.PLACED, "user:ada", None, PLACED_AT)]
    assert order.events == [
        OrderCreated(
            order=OrderSnapshot(
                id="o-1",
                source="api",
                status=S.PLACED,
                external_id="A-1",
                merchant_id="bakery-mitte",
                pickup=PICKUP,
                dropoff=DROPOFF,
                customer=CUSTOMER,
                items=ITEMS,
                currency="EUR",
                tip=150,
                delivery_fee=299,
                notes="ring twice",
                payment=Payment(method=PaymentMethod.CARD, status=PaymentStatus.AUTHORIZED),
                totals=Totals(subtotal=2100, delivery_fee=299, tip=150, total=2549),
                created_at=PLACED_AT,
                updated_at=PLACED_AT,
            )
        )
    ]


def test_placing_copies_the_items_list() -> None:
    # Given a draft
    order = placed_order()

    # When the order's items change
    order.items.append(Item(name="Coffee", quantity=1, unit_price=250))

    # Then the draft's items are not the order's
    assert DRAFT.items == ITEMS
    assert len(order.items) == 3


# Amending

OPEN = {
    S.NEEDS_ATTENTION,
    S.PLACED,
    S.ACCEPTED,
    S.PREPARING,
    S.READY_FOR_PICKUP,
    S.PICKED_UP,
    S.FAILED_DELIVERY,
}
BEFORE_PICKUP = {S.NEEDS_ATTENTION, S.PLACED, S.ACCEPTED, S.PREPARING, S.READY_FOR_PICKUP}
BEFORE_PREPARATION = {S.NEEDS_ATTENTION, S.PLACED, S.ACCEPTED}

EDITABLE = {
    "merchant_id": BEFORE_PREPARATION,
    "items": BEFORE_PREPARATION,
    "delivery_fee": BEFORE_PREPARATION,
    "pickup": BEFORE_PICKUP,
    "dropoff": BEFORE_PICKUP,
    "customer": BEFORE_PICKUP,
    "tip": OPEN,
    "notes": OPEN,
    "payment": OPEN,
}

NEW_VALUES: dict[str, Any] = {
    "merchant_id": "bakery-kreuzberg",
    "items": [Item(name="Baguette", quantity=3, unit_price=333)],
    "delivery_fee": 499,
    "pickup": Stop(name="Bakery Kreuzberg", address="Oranienstr. 9", location=GeoPoint(lat=52.5, lon=13.42)),
    "dropoff": Stop(
        name="Ada (office)", address="Friedrichstr. 100", location=GeoPoint(lat=52.52, lon=13.39)
    ),
    "customer": Customer(name="Ada King"),
    "tip": 300,
    "notes": None,
    "payment": Payment(method=PaymentMethod.CARD, status=PaymentStatus.PAID),
}

# An order in needs_attention also moves to placed once its stops have coordinates: see
# tests/orders/unit/test_geocoding_orders.py.
AMENDMENTS = [
    (name, status) for name in EDITABLE for status in OrderStatus if status is not S.NEEDS_ATTENTION
]


def test_the_editable_fields_and_their_statuses_are_exactly_these() -> None:
    assert {name: set(statuses) for name, statuses in EDITABLE_WHILE.items()} == EDITABLE


@pytest.mark.parametrize(
    ("name", "status"), AMENDMENTS, ids=[f"{name}-{status.value}" for name, status in AMENDMENTS]
)
def test_a_field_changes_only_while_its_status_allows(name: str, status: OrderStatus) -> None:
    # Given an order in some status
    order = order_in(status)
    before = copy.deepcopy(order)

    if status in EDITABLE[name]:
        # When a field that may still change is changed
        changed = order.amend({name: NEW_VALUES[name]}, now=LATER)

        # Then it changes and one OrderUpdated names it
        assert changed == [name]
        assert getattr(order, name) == NEW_VALUES[name]
        assert order.updated_at == LATER
        assert order.events == [OrderUpdated(changed_fields=[name], order=order.snapshot())]
        assert order.events[0].order.updated_at == LATER  # type: ignore[attr-defined]
    else:
        # When a locked field is changed
        with pytest.raises(OrderFieldLocked) as raised:
            order.amend({name: NEW_VALUES[name]}, now=LATER)

        # Then the error names the field and the status, and nothing changes
        assert raised.value.extensions == {"field": name, "current_status": status.value}
        assert raised.value.detail == f"{name} cannot change once the order is {status.value}"
        assert order == before
        assert order.events == []


@pytest.mark.parametrize("status", [S.PLACED, S.DELIVERED])
@pytest.mark.parametrize("name", list(EDITABLE))
def test_sending_the_current_value_changes_nothing(name: str, status: OrderStatus) -> None:
    # Given an order, editable or final
    order = order_in(status)
    before = copy.deepcopy(order)

    # When a field is "changed" to the value it already has
    changed = order.amend({name: copy.deepcopy(getattr(order, name))}, now=LATER)

    # Then nothing changes and nothing is recorded, even where the field is locked
    assert changed == []
    assert order == before
    assert order.updated_at == PLACED_AT
    assert order.events == []


def test_several_fields_change_in_one_event_in_the_order_sent() -> None:
    # Given a placed order
    order = order_in(S.PLACED)

    # When several fields change, one of them to its current value
    changed = order.amend(
        {"tip": 300, "currency": "EUR", "notes": "leave at door", "merchant_id": "m-2"}, now=LATER
    )

    # Then the changed ones are returned in the order sent, in one event
    assert changed == ["tip", "notes", "merchant_id"]
    assert (order.tip, order.notes, order.merchant_id) == (300, "leave at door", "m-2")
    assert order.events == [
        OrderUpdated(changed_fields=["tip", "notes", "merchant_id"], order=order.snapshot())
    ]


def test_one_locked_field_refuses_the_whole_change() -> None:
    # Given an order being prepared: tip may change, items may not
    order = order_in(S.PREPARING)
    before = copy.deepcopy(order)

    # When both are changed together
    with pytest.raises(OrderFieldLocked) as raised:
        order.amend({"tip": 300, "items": NEW_VALUES["items"]}, now=LATER)

    # Then the items are blamed and the tip stays as it was
    assert raised.value.extensions == {"field": "items", "current_status": "preparing"}
    assert order == before
    assert order.tip == 150
    assert order.events == []


@pytest.mark.parametrize(("name", "value"), [("currency", "USD"), ("status", S.DELIVERED), ("source", "csv")])
def test_fields_that_are_not_editable_are_always_locked(name: str, value: object) -> None:
    # Given a freshly placed order
    order = order_in(S.PLACED)

    # When a field outside the editable list is changed
    with pytest.raises(OrderFieldLocked) as raised:
        order.amend({name: value}, now=LATER)

    # Then it is refused
    assert raised.value.extensions == {"field": name, "current_status": "placed"}
    assert getattr(order, name) != value
