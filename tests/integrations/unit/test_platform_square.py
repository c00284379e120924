"""The `square` platform: `order.created` / `order.updated` notifications and the RetrieveOrder answer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from doorstep.contracts.orders import (
    Customer,
    Item,
    OrderDraft,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Stop,
)
from doorstep.integrations.adapters.platforms import platform_adapter
from doorstep.integrations.adapters.platforms.drafts import sign_base64
from doorstep.integrations.adapters.platforms.square import SquareAdapter
from doorstep.integrations.ports import OrderChange, SignatureInvalid, UnmappablePayload

FIXTURES = Path(__file__).parent.parent / "fixtures"
SIGNATURE_KEY = "sq0wsk-Qm9vbXNxdWFyZXNpZ25hdHVyZQ"
NOTIFICATION_URL = "https://doorstep.example.com/v1/integrations/webhooks/square/tok_123"
PICKUP: dict[str, Any] = {"name": "Café Lumière", "address": "3000 24th Street, San Francisco, CA 94110"}
SETTINGS: dict[str, Any] = {
    "notification_url": NOTIFICATION_URL,
    "access_token": "EAAAl-square-access-token",
    "merchant_id": "5S9MXCS9Y99KK",
    "pickup": PICKUP,
}

adapter = SquareAdapter()


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def fetched(notification: str = "square_order_updated.json", **changes: Any) -> dict[str, Any]:
    """What `fetch` hands to `map_order`: the notification with the order the Orders API returned."""
    order = copy.deepcopy(fixture("square_retrieve_order.json")["order"]) | changes
    return {"notification": fixture(notification), "order": order}


def unmappable(payload: Any) -> UnmappablePayload:
    with pytest.raises(UnmappablePayload) as caught:
        adapter.map_order(payload, settings=SETTINGS)
    return caught.value


def test_the_fetched_order_maps_with_service_charges_as_fee_and_string_quantities() -> None:
    # Given an order.updated notification and the order the Orders API returned for it
    # When it is mapped
    result = adapter.map_order(fetched(), settings=SETTINGS)

    # Then it updates the order to Square's version 3, amounts already in cents
    assert result.external_id == "eA3vssLHKJrv9H0IdJCM3gNqfdcZY"
    assert result.change == OrderChange.UPDATED
    assert result.version == 3
    assert result.draft == OrderDraft(
        merchant_id="5S9MXCS9Y99KK",
        pickup=Stop.model_validate(PICKUP),
        dropoff=Stop(
            name="Siobhán Ó Dálaigh",
            address="1455 Market Street, Suite 600, San Francisco, 94103, CA, US",
            phone="+1 415-555-0134",
            location=None,
        ),
        customer=Customer(name="Siobhán Ó Dálaigh", phone="+1 415-555-0134", email="siobhan@example.com"),
        items=[
            Item(name="Crème brûlée", quantity=2, unit_price=650),
            Item(name="Café au lait", quantity=1, unit_price=425),
        ],
        currency="USD",
        tip=300,
        delivery_fee=499,
        notes="Leave with the front desk",
        payment=Payment(method=PaymentMethod.CARD, status=PaymentStatus.PAID),
    )


def test_an_order_created_notification_places_the_order() -> None:
    # Given an order.created notification
    # When it is mapped with the fetched order at version 1
    result = adapter.map_order(fetched("square_order_created.json", version=1), settings=SETTINGS)

    # Then it places the order
    assert (result.change, result.version) == (OrderChange.PLACED, 1)


def test_a_canceled_order_is_a_cancellation_whatever_the_notification() -> None:
    # Given the order fetched in state CANCELED
    # When it is mapped
    result = adapter.map_order(fetched(state="CANCELED", version=5), settings=SETTINGS)

    # Then it cancels
    assert (result.change, result.version) == (OrderChange.CANCELLED, 5)


def test_an_unpaid_cash_order() -> None:
    # Given an order without tenders, and one paid in cash
    unpaid = adapter.map_order(fetched(tenders=[]), settings=SETTINGS)
    cash = adapter.map_order(fetched(tenders=[{"id": "t1", "type": "CASH"}]), settings=SETTINGS)

    # When they are mapped
    # Then the first is pending, the second paid in cash
    assert unpaid.draft.payment == Payment(method=PaymentMethod.OTHER, status=PaymentStatus.PENDING)
    assert cash.draft.payment == Payment(method=PaymentMethod.CASH, status=PaymentStatus.PAID)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"version": None}, "order.version"),
        ({"id": None}, "order.id"),
        (
            {"line_items": [{"name": "Tarte", "quantity": "1.5", "base_price_money": {"amount": 300}}]},
            "order.line_items[0].quantity",
        ),
        (
            {"line_items": [{"name": "Tarte", "quantity": "1", "base_price_money": {"amount": "3.00"}}]},
            "order.line_items[0].base_price_money.amount",
        ),
        (
            {"service_charges": [{"amount_money": {"amount": -1, "currency": "USD"}}]},
            "order.service_charges[0].amount_money.amount",
        ),
        (
            {"fulfillments": [{"type": "PICKUP", "pickup_details": {}}]},
            "order.fulfillments[0].delivery_details.recipient.address",
        ),
    ],
)
def test_an_order_that_cannot_be_mapped_names_squares_field(changes: dict[str, Any], field: str) -> None:
    # Given the fetched order with one field wrong (a pickup order has no drop-off)
    # When it is mapped
    # Then the error names Square's field
    assert unmappable(fetched(**changes)).field == field


def test_no_order_in_the_answer_is_named() -> None:
    # Given an Orders API answer without an order
    # When it is mapped
    # Then the error names it
    assert unmappable({"notification": fixture("square_order_updated.json"), "order": None}).field == "order"


def test_the_signature_covers_the_notification_url_and_the_body() -> None:
    # Given a body signed, as Square does, over the subscription's URL followed by the body
    body = json.dumps(fixture("square_order_created.json")).encode()
    good = {"x-square-hmacsha256-signature": sign_base64(NOTIFICATION_URL.encode() + body, SIGNATURE_KEY)}

    # When it is verified
    # Then it passes
    adapter.verify(headers=good, body=body, secret=SIGNATURE_KEY, settings=SETTINGS)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "%%%",
        # the body alone, without the URL
        "body-only",
        # the right message under another key
        "other-key",
    ],
)
def test_a_missing_or_wrong_signature_is_refused(signature: str | None) -> None:
    # Given a notification with a bad signature
    body = json.dumps(fixture("square_order_created.json")).encode()
    values = {
        "body-only": sign_base64(body, SIGNATURE_KEY),
        "other-key": sign_base64(NOTIFICATION_URL.encode() + body, "sq0wsk-another-signature-key"),
    }
    header = {} if signature is None else {"x-square-hmacsha256-signature": values.get(signature, signature)}

    # When it is verified
    # Then it is refused
    with pytest.raises(SignatureInvalid):
        adapter.verify(headers=header, body=body, secret=SIGNATURE_KEY, settings=SETTINGS)


def test_a_connection_moved_to_another_url_refuses_the_old_signatures() -> None:
    # Given a body signed for the connection's URL
    body = json.dumps(fixture("square_order_created.json")).encode()
    header = {"x-square-hmacsha256-signature": sign_base64(NOTIFICATION_URL.encode() + body, SIGNATURE_KEY)}

    # When it is verified against another notification URL
    # Then it is refused
    with pytest.raises(SignatureInvalid):
        adapter.verify(
            headers=header,
            body=body,
            secret=SIGNATURE_KEY,
            settings=SETTINGS | {"notification_url": NOTIFICATION_URL + "x"},
        )


def test_the_event_id_identifies_redeliveries() -> None:
    # Given a notification
    body = json.dumps(fixture("square_order_created.json")).encode()

    # When its delivery id is read
    # Then it is Square's event id; a body that is not JSON has none
    assert adapter.delivery_id(headers={}, body=body) == "116038d3-2948-439f-8679-fc86dbf80f69"
    assert adapter.delivery_id(headers={}, body=b"not json") is None


@pytest.mark.parametrize("missing", ["notification_url", "access_token", "pickup"])
def test_a_connection_needs_its_url_token_and_pickup(missing: str) -> None:
    # Given settings without one of the keys a Square connection needs
    settings = {key: value for key, value in SETTINGS.items() if key != missing}

    # When they are checked
    # Then the missing key is named
    with pytest.raises(UnmappablePayload) as caught:
        adapter.check_settings(settings)
    assert caught.value.field == f"settings.{missing}"


def test_the_adapter_is_registered_under_its_webhook_name() -> None:
    # Given the platforms by webhook name
    # When square is looked up
    # Then it is this adapter
    assert isinstance(platform_adapter("square"), SquareAdapter)
