"""The `woocommerce` platform: `order.created` / `order.updated` webhooks carrying the REST API v3 order."""

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
from doorstep.integrations.adapters.platforms.woocommerce import WooCommerceAdapter
from doorstep.integrations.ports import MappedOrder, OrderChange, SignatureInvalid, UnmappablePayload

FIXTURES = Path(__file__).parent.parent / "fixtures"
SECRET = "wc-webhook-secret-5f2b9c1e7a"
PICKUP: dict[str, Any] = {"name": "Bäckerei Morgenrot", "address": "Kastanienallee 12, 10435 Berlin"}
SETTINGS: dict[str, Any] = {"merchant_id": "mer_wc_1", "pickup": PICKUP}

adapter = WooCommerceAdapter()


def raw() -> bytes:
    return (FIXTURES / "woocommerce_order_created.json").read_bytes()


def order() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(raw())
    return loaded


def mapped(payload: Any) -> MappedOrder:
    return adapter.map_order(payload, settings=SETTINGS)


def unmappable(payload: Any, settings: dict[str, Any] = SETTINGS) -> UnmappablePayload:
    with pytest.raises(UnmappablePayload) as caught:
        adapter.map_order(payload, settings=settings)
    return caught.value


def headers(body: bytes, signature: str | None = None) -> dict[str, str]:
    # WooCommerce's headers (lower-cased, as the intake passes them on)
    return {
        "x-wc-webhook-source": "https://shop.example.com/",
        "x-wc-webhook-topic": "order.created",
        "x-wc-webhook-resource": "order",
        "x-wc-webhook-event": "created",
        "x-wc-webhook-signature": signature if signature is not None else sign_base64(body, SECRET),
        "x-wc-webhook-id": "12",
        "x-wc-webhook-delivery-id": "3f1c0a4e9b8d7c6a5e4f3a2b1c0d9e8f",
    }


def test_a_new_order_maps_with_unicode_names_string_amounts_and_no_coordinates() -> None:
    # Given WooCommerce's order.created body (prices as a number and as a string, two shipping lines)
    # When it is mapped
    result = mapped(order())

    # Then it is a new order placed at its creation time, with the shop's pickup and no drop-off point
    assert result.external_id == "727"
    assert result.change == OrderChange.PLACED
    assert result.version == 1_795_172_651_000_000  # 2026-11-20T11:04:11Z in µs
    assert result.draft == OrderDraft(
        merchant_id="mer_wc_1",
        pickup=Stop.model_validate(PICKUP),
        dropoff=Stop(
            name="Zoë Ångström-Müller",
            address="Weserstraße 8, Hinterhaus, 3. OG, Berlin, 12047, BE, DE",
            phone="+49 30 1234567",
            location=None,
        ),
        customer=Customer(name="Zoë Ångström-Müller", phone="+49 30 1234567", email="zoe@example.com"),
        items=[
            Item(name="Sauerteigbrot 1 kg", sku="BROT-1KG", quantity=2, unit_price=590),
            Item(name="Franzbrötchen", sku=None, quantity=6, unit_price=220),
        ],
        currency="EUR",
        delivery_fee=450,
        notes="Bitte beim Nachbarn abgeben, falls niemand öffnet.",
        # Cash on delivery is "processing" once placed, yet nothing is paid until the courier collects
        payment=Payment(method=PaymentMethod.CASH, status=PaymentStatus.PENDING),
    )


def test_several_shipping_lines_add_up_to_one_delivery_fee() -> None:
    # Given three shipping lines, amounts as strings with and without decimals
    payload = order()
    payload["shipping_lines"] = [
        {"id": 1, "method_id": "local_delivery", "total": "3.50"},
        {"id": 2, "method_id": "flat_rate", "total": "1"},
        {"id": 3, "method_id": "free_shipping", "total": "0.00"},
    ]

    # When it is mapped
    # Then the fee is their sum in cents
    assert mapped(payload).draft.delivery_fee == 450


def test_a_paid_card_order_is_paid_online() -> None:
    # Given an order paid through Stripe
    payload = order()
    payload["payment_method"] = "stripe"
    payload["date_paid_gmt"] = "2026-11-20T11:04:30"

    # When it is mapped
    # Then it is paid online
    assert mapped(payload).draft.payment == Payment(method=PaymentMethod.ONLINE, status=PaymentStatus.PAID)


def test_a_modified_order_is_an_update_versioned_by_its_modification_time() -> None:
    # Given the same order modified later, with a new note
    payload = order()
    payload["date_modified_gmt"] = "2026-11-20T11:20:00"
    payload["customer_note"] = "Klingeln bei Müller"

    # When it is mapped
    result = mapped(payload)

    # Then it is an update, ordered after the creation
    assert result.change == OrderChange.UPDATED
    assert result.version == 1_795_173_600_000_000
    assert result.draft.notes == "Klingeln bei Müller"


@pytest.mark.parametrize("status", ["cancelled", "refunded", "failed"])
def test_a_cancelled_refunded_or_failed_order_is_a_cancellation(status: str) -> None:
    # Given the order in that status
    payload = order()
    payload["status"] = status
    payload["date_modified_gmt"] = "2026-11-20T11:40:00"

    # When it is mapped
    # Then it cancels the order
    assert mapped(payload).change == OrderChange.CANCELLED


def test_a_company_without_a_person_is_the_recipient() -> None:
    # Given a shipping address with only a company name
    payload = order()
    payload["shipping"] |= {"first_name": "", "last_name": "", "company": "Spätkauf GmbH"}

    # When it is mapped
    draft = mapped(payload).draft

    # Then the company receives it, the billing person is the customer
    assert draft.dropoff.name == "Spätkauf GmbH"
    assert draft.customer.name == "Zoë Ångström-Müller"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.update(shipping={"first_name": "Zoë", "address_1": ""}), "shipping.address_1"),
        (lambda p: p["line_items"][1].update(price="zwei Euro"), "line_items[1].price"),
        (lambda p: p["line_items"][0].update(quantity=0), "line_items[0].quantity"),
        (lambda p: p["shipping_lines"][1].update(total=True), "shipping_lines[1].total"),
        (lambda p: p.update(line_items=[]), "line_items"),
        (lambda p: p.update(id=None), "id"),
        (lambda p: p.update(currency="EURO"), "currency"),
        (lambda p: p.update(date_modified_gmt="yesterday"), "date_modified_gmt"),
    ],
)
def test_an_order_that_cannot_be_mapped_names_woocommerces_field(change: Any, field: str) -> None:
    # Given the order with one field wrong
    payload = copy.deepcopy(order())
    change(payload)

    # When it is mapped
    # Then the error names WooCommerce's field
    assert unmappable(payload).field == field


def test_a_connection_without_pickup_is_named() -> None:
    # Given a connection without the shop's location
    # When an order is mapped
    # Then the missing setting is named
    assert unmappable(order(), settings={}).field == "settings.pickup"


def test_a_signed_body_verifies() -> None:
    # Given a body signed with the webhook's secret
    body = raw()

    # When it is verified
    # Then nothing is raised
    adapter.verify(headers=headers(body), body=body, secret=SECRET, settings=SETTINGS)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("", "missing X-WC-Webhook-Signature header"),
        ("not base64!", "malformed X-WC-Webhook-Signature header: not base64"),
        (sign_base64(b"another body", SECRET), "X-WC-Webhook-Signature does not match the body"),
        (sign_base64(b"", "another-secret-0123456789"), "X-WC-Webhook-Signature does not match the body"),
    ],
)
def test_a_missing_malformed_or_wrong_signature_is_refused(signature: str, message: str) -> None:
    # Given a body with a bad signature
    body = raw()

    # When it is verified
    # Then it is refused with the reason
    with pytest.raises(SignatureInvalid, match=f"^{message}$"):
        adapter.verify(headers=headers(body, signature), body=body, secret=SECRET, settings=SETTINGS)


def test_a_body_changed_after_signing_is_refused() -> None:
    # Given a signed body with one byte changed afterwards
    body = raw()
    signed = headers(body)
    tampered = body.replace(b'"total": "29.40"', b'"total": "2.94"')

    # When it is verified
    # Then it is refused
    with pytest.raises(SignatureInvalid):
        adapter.verify(headers=signed, body=tampered, secret=SECRET, settings=SETTINGS)


def test_the_webhook_ping_is_recognised_only_unsigned_and_alone() -> None:
    # Given WooCommerce's check of a new webhook URL: an unsigned form post naming the webhook
    # When it is looked at
    # Then it is a ping; a signed one, or one with more fields, or a JSON body is not
    assert adapter.is_ping(headers={}, body=b"webhook_id=12") is True
    assert adapter.is_ping(headers={"x-wc-webhook-signature": "abc"}, body=b"webhook_id=12") is False
    assert adapter.is_ping(headers={}, body=b"webhook_id=12&status=cancelled") is False
    assert adapter.is_ping(headers={}, body=b"webhook_id=twelve") is False
    assert adapter.is_ping(headers={}, body=raw()) is False


def test_the_delivery_id_header_identifies_redeliveries() -> None:
    # Given WooCommerce's delivery id header
    # When the delivery id is read
    # Then it is that header, and absent without it
    body = raw()
    assert adapter.delivery_id(headers=headers(body), body=body) == "3f1c0a4e9b8d7c6a5e4f3a2b1c0d9e8f"
    assert adapter.delivery_id(headers={}, body=body) is None


def test_the_adapter_is_registered_under_its_webhook_name() -> None:
    # Given the platforms by the name used in webhook URLs
    # When woocommerce is looked up
    # Then it is this adapter
    assert isinstance(platform_adapter("woocommerce"), WooCommerceAdapter)
