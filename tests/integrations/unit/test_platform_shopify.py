"""The `shopify` platform: `orders/create` and `orders/updated` webhooks from the REST Admin API."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
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
from doorstep.integrations.adapters.platforms.shopify import ShopifyAdapter, sign_shopify_payload
from doorstep.integrations.ports import SignatureInvalid, UnmappablePayload

FIXTURES = Path(__file__).parent.parent / "fixtures"
SECRET = "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"
PICKUP: dict[str, Any] = {
    "name": "Bäckerei Morgenrot",
    "address": "Kastanienallee 12, 10435 Berlin, Germany",
    "phone": "+49 30 4401234",
    "location": {"lat": 52.5376, "lon": 13.4083},
}
SETTINGS: dict[str, Any] = {"merchant_id": "mer_01JC8Z4W6Q9R2T5Y7U1I3O5P7A", "pickup": PICKUP}
PICKUP_STOP = Stop(
    name="Bäckerei Morgenrot",
    address="Kastanienallee 12, 10435 Berlin, Germany",
    phone="+49 30 4401234",
    location=GeoPoint(lat=52.5376, lon=13.4083),
)

adapter = ShopifyAdapter()


def raw(name: str = "shopify_orders_create.json") -> bytes:
    return (FIXTURES / name).read_bytes()


def order(name: str = "shopify_orders_create.json") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(raw(name))
    return loaded


def unmappable(payload: Any, settings: dict[str, Any] = SETTINGS) -> UnmappablePayload:
    with pytest.raises(UnmappablePayload) as caught:
        adapter.map_order(payload, settings=settings)
    return caught.value


def shopify_headers(hmac_header: str | None) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "x-shopify-topic": "orders/create",
        "x-shopify-shop-domain": "baeckerei-morgenrot.myshopify.com",
        "x-shopify-api-version": "2024-10",
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "x-shopify-triggered-at": "2024-11-08T17:42:19.123456789Z",
    }
    if hmac_header is not None:
        headers["x-shopify-hmac-sha256"] = hmac_header
    return headers


# --- signing and verification -------------------------------------------------------------------


def test_the_signature_is_the_base64_hmac_sha256_of_the_raw_body() -> None:
    # given / when
    signature = sign_shopify_payload(raw(), SECRET)

    # then
    expected = hmac.new(SECRET.encode(), raw(), hashlib.sha256).digest()
    assert base64.b64decode(signature) == expected


def test_a_body_signed_with_the_secret_is_accepted() -> None:
    # given
    headers = shopify_headers(sign_shopify_payload(raw(), SECRET))

    # when / then
    adapter.verify(headers=headers, body=raw(), secret=SECRET)


def test_a_body_signed_with_another_secret_is_rejected() -> None:
    # given
    headers = shopify_headers(sign_shopify_payload(raw(), "shpss_another_app"))

    # when / then
    with pytest.raises(SignatureInvalid, match="does not match the body"):
        adapter.verify(headers=headers, body=raw(), secret=SECRET)


def test_a_tampered_body_is_rejected() -> None:
    # given a signed body whose total is changed in transit
    headers = shopify_headers(sign_shopify_payload(raw(), SECRET))
    tampered = raw().replace(b'"total_price": "49.30"', b'"total_price": "0.01"')
    assert tampered != raw()

    # when / then
    with pytest.raises(SignatureInvalid, match="does not match the body"):
        adapter.verify(headers=headers, body=tampered, secret=SECRET)


@pytest.mark.parametrize("hmac_header", [None, "", "   "])
def test_a_missing_hmac_header_is_rejected(hmac_header: str | None) -> None:
    # when / then
    with pytest.raises(SignatureInvalid, match="missing X-Shopify-Hmac-Sha256 header"):
        adapter.verify(headers=shopify_headers(hmac_header), body=raw(), secret=SECRET)


@pytest.mark.parametrize(
    ("hmac_header", "detail"),
    [
        ("not base64 at all!", "not base64"),
        ("c2hhMjU2", "not a SHA-256 digest"),
        # The hex digest instead of base64: decodable by accident, but the wrong length.
        (hmac.new(SECRET.encode(), b"{}", hashlib.sha256).hexdigest(), "not a SHA-256 digest"),
        ("sha256=" + "A" * 44, "not base64"),
    ],
)
def test_a_malformed_hmac_header_is_rejected(hmac_header: str, detail: str) -> None:
    # when / then
    with pytest.raises(SignatureInvalid, match=f"malformed X-Shopify-Hmac-Sha256 header: {detail}"):
        adapter.verify(headers=shopify_headers(hmac_header), body=raw(), secret=SECRET)


# --- delivery id --------------------------------------------------------------------------------


def test_the_delivery_id_is_the_webhook_id_header() -> None:
    # when / then
    delivery_id = adapter.delivery_id(headers=shopify_headers("irrelevant"), body=raw())
    assert delivery_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def test_without_a_webhook_id_there_is_no_delivery_id() -> None:
    # when / then
    assert adapter.delivery_id(headers={"x-shopify-topic": "orders/create"}, body=raw()) is None


# --- mapping: whole orders ----------------------------------------------------------------------


def test_a_realistic_orders_create_payload_maps_to_the_expected_draft() -> None:
    # when
    mapped = adapter.map_order(order(), settings=SETTINGS)

    # then
    assert mapped.external_id == "5981237460291"
    assert mapped.draft == OrderDraft(
        external_id="5981237460291",
        merchant_id="mer_01JC8Z4W6Q9R2T5Y7U1I3O5P7A",
        pickup=PICKUP_STOP,
        dropoff=Stop(
            name="Lena Fischer",
            address="Lychener Straße 41, Hinterhaus, Berlin, 10437, Germany",
            phone="+49 30 12345678",
            location=GeoPoint(lat=52.5439061, lon=13.4138419),
        ),
        customer=Customer(name="Lena Fischer", phone="+4915112345678", email="lena.fischer@example.de"),
        items=[
            Item(name="Roggenmischbrot", sku="BRT-ROG-750", quantity=2, unit_price=580),
            Item(name="Franzbrötchen", sku=None, quantity=6, unit_price=230),
            Item(name="Hausgemachte Marmelade Geschenkset", sku=None, quantity=1, unit_price=1600),
        ],
        currency="EUR",
        tip=300,
        delivery_fee=490,
        notes="Bitte zweimal klingeln, 3. OG links.",
        payment=Payment(method=PaymentMethod.CARD, status=PaymentStatus.PAID),
    )


def test_a_cash_on_delivery_order_in_yen_maps_to_the_expected_draft() -> None:
    # given a Tokyo shop's COD order: string coordinates, two shipping lines, no shipping phone, blank note
    payload = order("shopify_orders_create_jpy.json")

    # when
    mapped = adapter.map_order(payload, settings=SETTINGS)

    # then yen have no minor unit, so "650" is 650
    assert mapped.draft == OrderDraft(
        external_id="6102938475610",
        merchant_id="mer_01JC8Z4W6Q9R2T5Y7U1I3O5P7A",
        pickup=PICKUP_STOP,
        dropoff=Stop(
            name="山田 太郎",
            address="神宮前1-2-3, サクラハイツ201, 渋谷区, 150-0001, Tokyo, Japan",
            phone="+819012345678",
            location=GeoPoint(lat=35.6702, lon=139.7085),
        ),
        customer=Customer(name="太郎 山田", phone="+819012345678", email="taro.yamada@example.jp"),
        items=[
            Item(name="抹茶ラテ", sku=None, quantity=2, unit_price=650),
            Item(name="どら焼き", sku="WG-DORA-TSUBU", quantity=3, unit_price=280),
        ],
        currency="JPY",
        tip=100,
        delivery_fee=700,
        notes=None,
        payment=Payment(method=PaymentMethod.CASH, status=PaymentStatus.PENDING),
    )


# --- mapping: details ---------------------------------------------------------------------------


def test_coordinates_sent_as_strings_become_numbers() -> None:
    # given
    payload = order()
    payload["shipping_address"] |= {"latitude": "52.5439061", "longitude": " 13.4138419 "}

    # when
    draft = adapter.map_order(payload, settings=SETTINGS).draft

    # then
    assert draft.dropoff.location == GeoPoint(lat=52.5439061, lon=13.4138419)


def test_several_shipping_lines_are_summed_into_the_delivery_fee() -> None:
    # given a delivery line, an express surcharge sent as a number, and a free line
    payload = order()
    first = payload["shipping_lines"][0]
    payload["shipping_lines"] = [
        first,
        copy.deepcopy(first) | {"id": 4812736598084, "title": "Expresszuschlag", "price": 2.5},
        copy.deepcopy(first) | {"id": 4812736598085, "title": "Verpackung", "price": "0.00"},
    ]

    # when
    draft = adapter.map_order(payload, settings=SETTINGS).draft

    # then 4.90 + 2.50 + 0.00
    assert draft.delivery_fee == 740


def test_an_order_without_shipping_lines_has_no_delivery_fee() -> None:
    # given
    payload = order()
    payload["shipping_lines"] = []

    # when / then
    assert adapter.map_order(payload, settings=SETTINGS).draft.delivery_fee == 0


@pytest.mark.parametrize(
    ("first", "last", "full"),
    [
        ("Zoë", "Ångström", "Zoë Ångström"),
        ("山田", "太郎", "山田 太郎"),
        ("Đặng", "Thị Hương", "Đặng Thị Hương"),
    ],
)
def test_unicode_names_survive_untouched(first: str, last: str, full: str) -> None:
    # given the same person as customer and recipient
    payload = order()
    payload["customer"] |= {"first_name": first, "last_name": last}
    payload["shipping_address"] |= {"first_name": first, "last_name": last, "name": full}

    # when
    draft = adapter.map_order(payload, settings=SETTINGS).draft

    # then
    assert draft.customer.name == full
    assert draft.dropoff.name == full


def test_the_recipient_name_falls_back_to_first_and_last_name() -> None:
    # given
    payload = order()
    payload["shipping_address"] |= {"name": None, "first_name": "Zoë", "last_name": "Ångström"}

    # when / then
    assert adapter.map_order(payload, settings=SETTINGS).draft.dropoff.name == "Zoë Ångström"


def test_without_a_customer_the_recipient_is_the_customer() -> None:
    # given a guest checkout
    payload = order()
    payload["customer"] = None

    # when
    draft = adapter.map_order(payload, settings=SETTINGS).draft

    # then name comes from the address, email from the order, phone from the address
    assert draft.customer == Customer(
        name="Lena Fischer", phone="+49 30 12345678", email="lena.fischer@example.de"
    )


def test_phones_fall_back_from_address_to_customer_to_order() -> None:
    # given no phone on the address or the customer, only on the order
    payload = order()
    payload["shipping_address"]["phone"] = ""
    payload["customer"]["phone"] = None
    payload["phone"] = "+4915199988877"

    # when
    draft = adapter.map_order(payload, settings=SETTINGS).draft

    # then
    assert draft.dropoff.phone == "+4915199988877"
    assert draft.customer.phone == "+4915199988877"


def test_email_falls_back_to_the_customer_email() -> None:
    # given
    payload = order()
    payload["email"] = ""
    payload["customer"]["email"] = "lena@example.org"

    # when / then
    assert adapter.map_order(payload, settings=SETTINGS).draft.customer.email == "lena@example.org"


def test_amounts_may_be_numbers_and_the_currency_is_uppercased() -> None:
    # given
    payload = order()
    payload["currency"] = "eur"
    payload["line_items"][0]["price"] = 5.8
    payload["line_items"][1]["price"] = 2
    payload["total_tip_received"] = 1.25

    # when
    draft = adapter.map_order(payload, settings=SETTINGS).draft

    # then
    assert draft.currency == "EUR"
    assert [item.unit_price for item in draft.items] == [580, 200, 1600]
    assert draft.tip == 125


def test_a_missing_tip_is_zero() -> None:
    # given
    payload = order()
    del payload["total_tip_received"]

    # when / then
    assert adapter.map_order(payload, settings=SETTINGS).draft.tip == 0


def test_a_line_item_without_a_title_uses_its_name() -> None:
    # given
    payload = order()
    payload["line_items"][0]["title"] = ""

    # when / then
    assert adapter.map_order(payload, settings=SETTINGS).draft.items[0].name == "Roggenmischbrot - 750 g"


def test_without_a_merchant_in_the_settings_the_draft_has_none() -> None:
    # when
    draft = adapter.map_order(order(), settings={"pickup": PICKUP}).draft

    # then
    assert draft.merchant_id is None


@pytest.mark.parametrize(
    ("gateways", "method"),
    [
        (["shopify_payments"], PaymentMethod.CARD),
        (["stripe"], PaymentMethod.CARD),
        (["Credit Card"], PaymentMethod.CARD),
        (["gift_card", "shopify_payments"], PaymentMethod.CARD),
        (["Cash on Delivery (COD)"], PaymentMethod.CASH),
        (["cash"], PaymentMethod.CASH),
        (["COD"], PaymentMethod.CASH),
        (["gift_card", "Cash on Delivery (COD)"], PaymentMethod.CASH),
        (["manual"], PaymentMethod.ONLINE),
        (["paypal"], PaymentMethod.ONLINE),
        (["gift_card"], PaymentMethod.ONLINE),
        (["CoDi"], PaymentMethod.ONLINE),
        ([], PaymentMethod.ONLINE),
    ],
)
def test_the_payment_method_follows_the_gateways(gateways: list[str], method: PaymentMethod) -> None:
    # given
    payload = order()
    payload["payment_gateway_names"] = gateways

    # when / then
    assert adapter.map_order(payload, settings=SETTINGS).draft.payment.method == method


@pytest.mark.parametrize(
    ("financial_status", "status"),
    [
        ("paid", PaymentStatus.PAID),
        ("authorized", PaymentStatus.AUTHORIZED),
        ("pending", PaymentStatus.PENDING),
        ("partially_paid", PaymentStatus.PENDING),
        ("refunded", PaymentStatus.REFUNDED),
        ("partially_refunded", PaymentStatus.REFUNDED),
        ("voided", PaymentStatus.VOIDED),
        ("expired", PaymentStatus.PENDING),
        (None, PaymentStatus.PENDING),
    ],
)
def test_the_payment_status_follows_the_financial_status(
    financial_status: str | None, status: PaymentStatus
) -> None:
    # given
    payload = order()
    payload["financial_status"] = financial_status

    # when / then
    assert adapter.map_order(payload, settings=SETTINGS).draft.payment.status == status


# --- mapping: what cannot become an order -------------------------------------------------------


@pytest.mark.parametrize("given", [[order()], "order", None])
def test_a_payload_that_is_not_an_object_is_unmappable(given: Any) -> None:
    # when
    error = unmappable(given)

    # then
    assert error.field is None


@pytest.mark.parametrize("coordinates", [{"latitude": None, "longitude": None}, {}])
def test_an_address_without_coordinates_maps_to_a_stop_to_geocode(coordinates: dict[str, Any]) -> None:
    # given
    payload = order()
    address = payload["shipping_address"]
    del address["latitude"], address["longitude"]
    address |= coordinates

    # when
    mapped = ShopifyAdapter().map_order(payload, settings=SETTINGS)

    # then
    assert mapped.draft.dropoff.location is None


def test_an_address_with_half_its_coordinates_is_unmappable() -> None:
    coordinates = {"latitude": None, "longitude": 13.4138419}
    # given
    payload = order()
    address = payload["shipping_address"]
    del address["latitude"], address["longitude"]
    address |= coordinates

    # when
    error = unmappable(payload)

    # then
    assert error.field == "shipping_address.latitude"
    assert error.reason == "shipping address has no coordinates"


def test_an_address_without_a_longitude_names_the_longitude() -> None:
    # given
    payload = order()
    payload["shipping_address"]["longitude"] = None

    # when / then
    assert unmappable(payload).field == "shipping_address.longitude"


@pytest.mark.parametrize("latitude", ["north", "", "nan", True, {"value": 52.5}])
def test_a_coordinate_that_is_not_a_number_is_unmappable(latitude: Any) -> None:
    # given
    payload = order()
    payload["shipping_address"]["latitude"] = latitude

    # when / then
    assert unmappable(payload).field == "shipping_address.latitude"


def test_a_coordinate_out_of_range_names_the_shopify_field() -> None:
    # given a latitude the draft's own validation refuses
    payload = order()
    payload["shipping_address"]["latitude"] = "95.0"

    # when
    error = unmappable(payload)

    # then
    assert error.field == "shipping_address.latitude"
    assert error.reason == "Input should be less than or equal to 90"


@pytest.mark.parametrize("mutation", ["absent", "null"])
def test_an_order_without_a_shipping_address_is_unmappable(mutation: str) -> None:
    # given a pickup-in-store or digital order
    payload = order()
    if mutation == "absent":
        del payload["shipping_address"]
    else:
        payload["shipping_address"] = None

    # when
    error = unmappable(payload)

    # then
    assert error.field == "shipping_address"
    assert error.reason == "order has no shipping address"


@pytest.mark.parametrize("line_items", [[], None])
def test_an_order_without_line_items_is_unmappable(line_items: list[Any] | None) -> None:
    # given
    payload = order()
    payload["line_items"] = line_items

    # when
    error = unmappable(payload)

    # then
    assert error.field == "line_items"
    assert error.reason == "order has no line items"


@pytest.mark.parametrize(
    ("index", "key", "value", "field"),
    [
        (0, "price", "5,80", "line_items[0].price"),
        (2, "price", "sixteen", "line_items[2].price"),
        (1, "price", "-2.30", "line_items[1].price"),
        (1, "price", None, "line_items[1].price"),
        (0, "price", "1e999999", "line_items[0].price"),
        (1, "quantity", 0, "line_items[1].quantity"),
        (1, "quantity", 1.5, "line_items[1].quantity"),
        (2, "title", None, "line_items[2].title"),
    ],
)
def test_a_bad_line_item_value_names_its_path(index: int, key: str, value: Any, field: str) -> None:
    # given
    payload = order()
    payload["line_items"][index][key] = value
    if key == "title":
        payload["line_items"][index]["name"] = None

    # when / then
    assert unmappable(payload).field == field


def test_a_bad_price_string_is_explained() -> None:
    # given a price formatted for humans
    payload = order()
    payload["line_items"][0]["price"] = "5,80"

    # when
    error = unmappable(payload)

    # then
    assert error.field == "line_items[0].price"
    assert str(error) == "line_items[0].price: '5,80' is not an amount"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p["shipping_lines"][0].update(price="free"), "shipping_lines[0].price"),
        (lambda p: p.update(total_tip_received="a lot"), "total_tip_received"),
        (lambda p: p.update(currency="EURO"), "currency"),
        (lambda p: p.update(id=None), "id"),
        (lambda p: p.update(email="lena.fischer(at)example.de"), "email"),
        (lambda p: p["shipping_address"].update(name="L" * 201), "shipping_address.name"),
        (lambda p: p["line_items"][1].update(sku="S" * 101), "line_items[1].sku"),
        (lambda p: p.update(note="n" * 2001), "note"),
    ],
)
def test_values_the_draft_refuses_name_the_shopify_field(mutate: Any, field: str) -> None:
    # given
    payload = order()
    mutate(payload)

    # when / then
    assert unmappable(payload).field == field


def test_a_connection_without_a_pickup_stop_is_unmappable() -> None:
    # when
    error = unmappable(order(), settings={"merchant_id": "mer_01JC8Z4W6Q9R2T5Y7U1I3O5P7A"})

    # then
    assert error.field == "settings.pickup"


def test_an_invalid_pickup_stop_names_the_setting() -> None:
    # given
    settings = SETTINGS | {"pickup": PICKUP | {"location": {"lat": 52.5376, "lon": 200}}}

    # when / then
    assert unmappable(order(), settings=settings).field == "settings.pickup.location.lon"


def test_the_registry_serves_this_adapter_for_shopify() -> None:
    # when / then
    assert isinstance(platform_adapter("shopify"), ShopifyAdapter)
