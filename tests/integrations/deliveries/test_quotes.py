"""Quotes: travel estimates from settings, times that cannot be met, expiry on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from doorstep.contracts.orders import GeoPoint, OrderStatus, Stop
from doorstep.integrations.deliveries.domain.errors import DeliveryNotCancellable, InvalidDeliveryRequest
from doorstep.integrations.deliveries.domain.model import Delivery, Quote, Travel
from doorstep.integrations.deliveries.domain.rate_card import RateCard, Size

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
TRAVEL = Travel(speed_kmh=25, road_factor=1.3, handling_minutes=5)
CARD = RateCard(currency="EUR", base_fee=300, per_km=100, per_minute=20)
PICKUP = Stop(name="Curry Corner", address="Oranienstraße 12", location=GeoPoint(lat=52.0, lon=13.0))
# 0.01° of latitude north: 1.112 km as the crow flies.
DROPOFF = Stop(
    name="Lena Müller",
    address="Skalitzer Straße 80",
    phone="+49 151 1234567",
    location=GeoPoint(lat=52.01, lon=13.0),
)


def quote(**overrides: Any) -> Quote:
    arguments: dict[str, Any] = {
        "id": "q1",
        "tenant_id": "t1",
        "external_delivery_id": "D-1",
        "created_by": "api_key:k1",
        "card": CARD,
        "travel": TRAVEL,
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        "size": Size.MEDIUM,
        "customer": None,
        "items": None,
        "notes": None,
        "pickup_time": None,
        "dropoff_time": None,
        "now": NOW,
    }
    arguments.update(overrides)
    return Quote.make(**arguments)


def test_distance_is_great_circle_times_the_road_factor_and_duration_adds_handling() -> None:
    # When a trip of 1.112 km as the crow flies is quoted at 25 km/h, road factor 1.3, 5 minutes handling
    made = quote()

    # Then it is 1,446 m by road, 208 s of driving plus 300 s at the pickup
    assert (made.distance_m, made.duration_s) == (1446, 508)
    # And it is priced from those: 300 + round(144.6) + round(169.33)
    assert [(line.kind, line.amount) for line in made.lines] == [
        ("base", 300),
        ("distance", 145),
        ("time", 169),
    ]
    assert made.fee == 614
    # And picked up now, dropped off 508 s later
    assert (made.pickup_time, made.dropoff_eta) == (NOW, NOW + timedelta(seconds=508))


def test_a_quote_expires_fifteen_minutes_after_it_was_made() -> None:
    # Given a quote made at NOW
    made = quote()

    # Then it holds until a moment before 15 minutes and not from then on
    assert made.expires_at == NOW + timedelta(minutes=15)
    assert made.expired(NOW + timedelta(minutes=14, seconds=59)) is False
    assert made.expired(NOW + timedelta(minutes=15)) is True


def test_only_a_dropoff_time_schedules_the_pickup_as_late_as_still_arrives() -> None:
    # When the partner asks for a drop-off by 13:00
    made = quote(dropoff_time=NOW + timedelta(hours=2))

    # Then pickup is 508 s before it
    assert made.pickup_time == NOW + timedelta(hours=2) - timedelta(seconds=508)
    assert made.dropoff_deadline == NOW + timedelta(hours=2)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {"pickup_time": NOW + timedelta(hours=1), "dropoff_time": NOW + timedelta(minutes=30)},
            "dropoff_time",
        ),
        ({"pickup_time": NOW, "dropoff_time": NOW + timedelta(minutes=5)}, "dropoff_time"),  # 508 s needed
        ({"pickup_time": NOW - timedelta(hours=1)}, "pickup_time"),
        ({"pickup": PICKUP.model_copy(update={"location": None})}, "pickup.location"),
        ({"card": CARD.model_copy(update={"sizes": {Size.SMALL: CARD.sizes[Size.SMALL]}})}, "size"),
    ],
)
def test_a_request_that_cannot_be_met_is_refused_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    # When such a request is quoted
    with pytest.raises(InvalidDeliveryRequest) as raised:
        quote(**overrides)

    # Then the error names the field
    assert raised.value.field == field


def test_the_order_of_a_quote_carries_its_fee_and_the_recipient() -> None:
    # When a quote without customer or items becomes an order
    draft = quote().order_draft()

    # Then the fee is the delivery fee, the drop-off's contact the customer, and one parcel the item
    assert (draft.external_id, draft.delivery_fee, draft.currency) == ("D-1", 614, "EUR")
    assert (draft.customer.name, draft.customer.phone) == ("Lena Müller", "+49 151 1234567")
    assert [(item.name, item.quantity, item.unit_price) for item in draft.items] == [
        ("Parcel (medium)", 1, 0)
    ]
    assert draft.dropoff.window is not None
    assert (draft.dropoff.window.start, draft.dropoff.window.end) == (NOW, NOW + timedelta(seconds=508))


def test_a_delivery_follows_newer_order_events_only_and_cancels_before_pickup_only() -> None:
    # Given a delivery whose order was placed, then picked up
    delivery = Delivery.request(id="d1", quote=quote(), created_by="api_key:k1", now=NOW)
    assert delivery.observe(order_id="o1", status="placed", at=NOW + timedelta(seconds=1)) is True
    assert delivery.observe(order_id="o1", status="picked_up", at=NOW + timedelta(seconds=9)) is True

    # When an older event arrives late
    late = delivery.observe(order_id="o1", status="accepted", at=NOW + timedelta(seconds=5))

    # Then it changes nothing, and a cancellation is refused
    assert late is False
    assert (delivery.order_id, delivery.status) == ("o1", OrderStatus.PICKED_UP.value)
    with pytest.raises(DeliveryNotCancellable):
        delivery.request_cancellation(NOW + timedelta(seconds=10))


def test_a_cancellation_is_asked_for_once() -> None:
    # Given a requested delivery (its order not known yet)
    delivery = Delivery.request(id="d1", quote=quote(), created_by="api_key:k1", now=NOW)

    # When it is cancelled twice
    first = delivery.request_cancellation(NOW + timedelta(seconds=1))
    second = delivery.request_cancellation(NOW + timedelta(seconds=2))

    # Then only the first one asks
    assert (first, second) == (True, False)
    assert delivery.cancel_requested_at == NOW + timedelta(seconds=1)
