"""The `ubereats` platform: signed `orders.notification` / `orders.cancel` events and the fetched order."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from doorstep.contracts.orders import (
    Customer,
    GeoPoint,
    Item,
    OrderDraft,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Stop,
)
from doorstep.integrations.adapters.platforms import platform_adapter
from doorstep.integrations.adapters.platforms.ubereats import UberEatsAdapter, sign_uber_payload
from doorstep.integrations.ports import OrderChange, SignatureInvalid, UnmappablePayload

FIXTURES = Path(__file__).parent.parent / "fixtures"
CLIENT_SECRET = "uber-client-secret-4e8a1c9f2b7d"
PICKUP: dict[str, Any] = {"name": "Bäckerei Morgenrot", "address": "Kastanienallee 12, 10435 Berlin"}
SETTINGS: dict[str, Any] = {"client_id": "uber-client-id", "pickup": PICKUP}

adapter = UberEatsAdapter()


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def fetched(event: str = "ubereats_orders_notification.json", **changes: Any) -> dict[str, Any]:
    return {"event": fixture(event), "order": copy.deepcopy(fixture("ubereats_order.json")) | changes}


def unmappable(payload: Any) -> UnmappablePayload:
    with pytest.raises(UnmappablePayload) as caught:
        adapter.map_order(payload, settings=SETTINGS)
    return caught.value


def test_a_notified_order_maps_with_unicode_names_minor_unit_prices_and_the_eaters_location() -> None:
    # Given an orders.notification event and the order Uber's Order API returned
    # When it is mapped
    result = adapter.map_order(fetched(), settings=SETTINGS)

    # Then it places the order, versioned by the event time, paid through Uber
    assert (result.external_id, result.change) == ("153dd7f1-339d-4619-940c-418943c14636", OrderChange.PLACED)
    assert result.version == 1_795_172_651_000_000
    assert result.draft == OrderDraft(
        merchant_id="89dd9741-66b5-4bb4-b216-a813f3b21b4f",
        pickup=Stop.model_validate(PICKUP),
        dropoff=Stop(
            name="Łukasz Żółć",
            address="Oranienstraße 25, Seitenflügel, 2. OG, 10999 Berlin, Deutschland",
            phone="+49 30 5550199",
            location=GeoPoint(lat=52.5011, lon=13.4183),
        ),
        customer=Customer(name="Łukasz Żółć", phone="+49 30 5550199"),
        items=[
            Item(name="Zimtschnecke", sku="ZIMT-01", quantity=3, unit_price=320),
            Item(name="Flat White (Hafermilch)", quantity=1, unit_price=410),
        ],
        currency="EUR",
        notes="Bitte nicht klingeln, Baby schläft; Extra Servietten",
        payment=Payment(method=PaymentMethod.ONLINE, status=PaymentStatus.PAID),
    )


def test_a_cancel_event_cancels_after_the_order_even_within_the_same_second() -> None:
    # Given an orders.cancel event in the same second as the notification
    placed = adapter.map_order(fetched(), settings=SETTINGS)
    payload = fetched("ubereats_orders_cancel.json")
    payload["event"]["event_time"] = fixture("ubereats_orders_notification.json")["event_time"]

    # When it is mapped
    cancelled = adapter.map_order(payload, settings=SETTINGS)

    # Then it is a cancellation ordered after the placement
    assert cancelled.change == OrderChange.CANCELLED
    assert cancelled.version is not None
    assert placed.version is not None
    assert cancelled.version > placed.version


def test_an_order_without_coordinates_keeps_its_address() -> None:
    # Given an eater location with an address but no coordinates and no formatted address
    order = fixture("ubereats_order.json")
    location = order["eater"]["delivery"]["location"]
    for key in ("latitude", "longitude", "formatted_address"):
        del location[key]

    # When it is mapped
    dropoff = adapter.map_order(fetched(eater=order["eater"]), settings=SETTINGS).draft.dropoff

    # Then the address is built from its parts and waits for the geocoder
    assert dropoff.address == "Oranienstraße 25, Seitenflügel, 2. OG, Berlin, 10999, DE"
    assert dropoff.location is None


def test_the_location_on_the_delivery_is_used_when_the_eater_has_none() -> None:
    # Given an order whose drop-off location is on its delivery
    order = fixture("ubereats_order.json")
    location = order["eater"]["delivery"].pop("location")
    order["deliveries"][0]["location"] = location

    # When it is mapped
    # Then that location is the drop-off
    draft = adapter.map_order(
        fetched(eater=order["eater"], deliveries=order["deliveries"]), settings=SETTINGS
    )
    assert draft.draft.dropoff.location == GeoPoint(lat=52.5011, lon=13.4183)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda o: o["cart"]["items"][0]["price"]["unit_price"].update(amount="3,20 €"),
            "order.cart.items[0].price.unit_price.amount",
        ),
        (lambda o: o["cart"]["items"][1].update(quantity=0), "order.cart.items[1].quantity"),
        (
            lambda o: o["eater"]["delivery"]["location"].update(latitude="north"),
            "order.eater.delivery.location.latitude",
        ),
        (
            lambda o: o["eater"]["delivery"]["location"].update(latitude=95),
            "order.eater.delivery.location.latitude",
        ),
        (lambda o: o["cart"].update(items=[]), "order.cart.items"),
        (lambda o: o.update(id=None), "order.id"),
    ],
)
def test_an_order_that_cannot_be_mapped_names_uber_eats_field(change: Any, field: str) -> None:
    # Given the fetched order with one field wrong
    order = fixture("ubereats_order.json")
    change(order)

    # When it is mapped
    # Then the error names Uber's field
    assert unmappable({"event": fixture("ubereats_orders_notification.json"), "order": order}).field == field


def test_the_hex_signature_of_the_body_verifies_and_anything_else_is_refused() -> None:
    # Given an event body signed as Uber does: lower-case hex HMAC-SHA256 with the client secret
    body = (FIXTURES / "ubereats_orders_notification.json").read_bytes()
    good = sign_uber_payload(body, CLIENT_SECRET)

    # When it is verified, signed right (either case), wrong, or not at all
    adapter.verify(headers={"x-uber-signature": good}, body=body, secret=CLIENT_SECRET, settings=SETTINGS)
    adapter.verify(
        headers={"x-uber-signature": good.upper()}, body=body, secret=CLIENT_SECRET, settings=SETTINGS
    )

    # Then only the right ones pass
    for headers in (
        {},
        {"x-uber-signature": sign_uber_payload(body, "another-client-secret-0123")},
        {"x-uber-signature": sign_uber_payload(body + b" ", CLIENT_SECRET)},
    ):
        with pytest.raises(SignatureInvalid):
            adapter.verify(headers=headers, body=body, secret=CLIENT_SECRET, settings=SETTINGS)


def test_the_event_id_identifies_redeliveries() -> None:
    # Given an event
    body = (FIXTURES / "ubereats_orders_notification.json").read_bytes()

    # When its delivery id is read
    # Then it is Uber's event id
    assert adapter.delivery_id(headers={}, body=body) == "c4d2261e-2779-4eb6-beb0-cb41235c751e"
    assert adapter.delivery_id(headers={}, body=b"[]") is None


async def test_an_event_that_is_not_about_an_order_is_unmappable_before_any_call() -> None:
    # Given a store event delivered to the order webhook
    event = {"event_id": "e1", "event_type": "store.provisioned", "meta": {"resource_id": "s1"}}

    # When it is fetched
    # Then it is refused naming the event type (no client is needed: nothing is called)
    with pytest.raises(UnmappablePayload) as caught:
        await adapter.fetch(event, settings=SETTINGS, secret=CLIENT_SECRET, client=None)  # type: ignore[arg-type]
    assert caught.value.field == "event_type"


@pytest.mark.parametrize("missing", ["client_id", "pickup"])
def test_a_connection_needs_its_client_id_and_pickup(missing: str) -> None:
    # Given settings without one of the keys
    settings = {key: value for key, value in SETTINGS.items() if key != missing}

    # When they are checked
    # Then the missing key is named
    with pytest.raises(UnmappablePayload) as caught:
        adapter.check_settings(settings)
    assert caught.value.field == f"settings.{missing}"


def test_the_adapter_is_registered_under_its_webhook_name() -> None:
    # Given the platforms by webhook name
    # When ubereats is looked up
    # Then it is this adapter
    assert isinstance(platform_adapter("ubereats"), UberEatsAdapter)
