"""The `doorstep` platform: our own signed webhook format, whose body is an `OrderDraft`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
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
    TimeWindow,
)
from doorstep.integrations.adapters.platforms import PLATFORMS, UnknownPlatform, platform_adapter
from doorstep.integrations.adapters.platforms.doorstep_json import (
    TIMESTAMP_TOLERANCE_SECONDS,
    DoorstepAdapter,
    sign_doorstep_payload,
)
from doorstep.integrations.ports import SignatureInvalid, UnmappablePayload

FIXTURE = Path(__file__).parent.parent / "fixtures" / "doorstep_order.json"
SECRET = "whsec_2f7c1a9e4b6d8f0a3c5e7b9d1f3a5c7e"
OLD_SECRET = "whsec_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
NOW = 1_731_092_400  # 2024-11-08T19:00:00Z
SETTINGS: dict[str, Any] = {}


def body() -> bytes:
    return FIXTURE.read_bytes()


def payload() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(body())
    return loaded


def adapter(now: float = NOW) -> DoorstepAdapter:
    return DoorstepAdapter(clock=lambda: now)


def headers(signature: str) -> dict[str, str]:
    return {"content-type": "application/json", "doorstep-signature": signature}


def v1(secret: str, timestamp: int, raw: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


# --- signing and verification -------------------------------------------------------------------


def test_the_header_is_the_timestamp_and_the_hex_hmac_of_timestamp_dot_body() -> None:
    # given / when
    signature = sign_doorstep_payload(body(), SECRET, timestamp=NOW)

    # then
    assert signature == f"t={NOW},v1={v1(SECRET, NOW, body())}"


def test_a_body_signed_with_the_secret_is_accepted() -> None:
    # given a delivery signed just now
    signature = sign_doorstep_payload(body(), SECRET, timestamp=NOW)

    # when / then it verifies without raising
    adapter().verify(headers=headers(signature), body=body(), secret=SECRET)


def test_signing_without_a_timestamp_uses_the_current_time() -> None:
    # given a signature made with the real clock
    signature = sign_doorstep_payload(body(), SECRET)

    # when / then an adapter on the real clock accepts it
    DoorstepAdapter().verify(headers=headers(signature), body=body(), secret=SECRET)
    assert abs(int(signature.split(",")[0].removeprefix("t=")) - time.time()) < 5


def test_a_body_signed_with_another_secret_is_rejected() -> None:
    # given
    signature = sign_doorstep_payload(body(), "whsec_someone_else", timestamp=NOW)

    # when / then
    with pytest.raises(SignatureInvalid, match="no v1 signature"):
        adapter().verify(headers=headers(signature), body=body(), secret=SECRET)


def test_a_tampered_body_is_rejected() -> None:
    # given a correctly signed body whose tip is raised in transit
    signature = sign_doorstep_payload(body(), SECRET, timestamp=NOW)
    tampered = body().replace(b'"tip": 200', b'"tip": 20000')
    assert tampered != body()

    # when / then
    with pytest.raises(SignatureInvalid, match="no v1 signature"):
        adapter().verify(headers=headers(signature), body=tampered, secret=SECRET)


def test_a_signature_replayed_under_another_timestamp_is_rejected() -> None:
    # given a fresh t= glued onto an HMAC computed for an older one
    old = NOW - 3600
    forged = f"t={NOW},v1={v1(SECRET, old, body())}"

    # when / then
    with pytest.raises(SignatureInvalid, match="no v1 signature"):
        adapter().verify(headers=headers(forged), body=body(), secret=SECRET)


@pytest.mark.parametrize("given", [{}, {"doorstep-signature": ""}, {"doorstep-signature": "  "}])
def test_a_missing_signature_header_is_rejected(given: dict[str, str]) -> None:
    # when / then
    with pytest.raises(SignatureInvalid, match="missing Doorstep-Signature header"):
        adapter().verify(headers=given, body=body(), secret=SECRET)


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("sha256=abcdef", "no t= timestamp"),
        ("abcdef0123456789", "is not key=value"),
        (f"t={NOW}", "no v1= signature"),
        (f"t={NOW},v1=", "is not key=value"),
        ("t=yesterday,v1=abcdef", "t= is not unix seconds"),
        ("t=-5,v1=abcdef", "t= is not unix seconds"),
        (f"t={NOW},t={NOW},v1=abcdef", "more than one t="),
    ],
)
def test_a_malformed_signature_header_is_rejected(header: str, detail: str) -> None:
    # when / then
    with pytest.raises(SignatureInvalid, match=f"malformed Doorstep-Signature header: .*{detail}"):
        adapter().verify(headers=headers(header), body=body(), secret=SECRET)


@pytest.mark.parametrize("age", [TIMESTAMP_TOLERANCE_SECONDS + 1, 86_400, -(TIMESTAMP_TOLERANCE_SECONDS + 1)])
def test_a_stale_or_future_timestamp_is_rejected_even_when_the_hmac_matches(age: int) -> None:
    # given a signature made `age` seconds before now (negative: in the future)
    signature = sign_doorstep_payload(body(), SECRET, timestamp=NOW - age)

    # when / then
    with pytest.raises(SignatureInvalid, match=r"timestamp is \d+s from now; the tolerance is 300s"):
        adapter().verify(headers=headers(signature), body=body(), secret=SECRET)


@pytest.mark.parametrize("age", [TIMESTAMP_TOLERANCE_SECONDS, -TIMESTAMP_TOLERANCE_SECONDS])
def test_a_timestamp_exactly_at_the_tolerance_is_accepted(age: int) -> None:
    # given
    signature = sign_doorstep_payload(body(), SECRET, timestamp=NOW - age)

    # when / then
    adapter().verify(headers=headers(signature), body=body(), secret=SECRET)


@pytest.mark.parametrize("receiver_secret", [SECRET, OLD_SECRET])
def test_during_rotation_any_v1_entry_may_match(receiver_secret: str) -> None:
    # given a sender signing with both the old and the new secret
    header = f"t={NOW},v1={v1(OLD_SECRET, NOW, body())},v1={v1(SECRET, NOW, body())}"

    # when / then a receiver on either secret accepts it
    adapter().verify(headers=headers(header), body=body(), secret=receiver_secret)


def test_unknown_schemes_and_spaces_in_the_header_are_tolerated() -> None:
    # given a header from a future sender that also adds a v2 entry
    header = f"t={NOW}, v2=0123456789abcdef, v1={v1(SECRET, NOW, body()).upper()}"

    # when / then
    adapter().verify(headers=headers(header), body=body(), secret=SECRET)


# --- delivery id --------------------------------------------------------------------------------


def test_the_delivery_id_is_the_doorstep_delivery_id_header() -> None:
    # given
    given = {"doorstep-delivery-id": "dlv_01JC9A7M3X5Z8B2C4D6E8F0G1H"}

    # when / then
    assert adapter().delivery_id(headers=given, body=body()) == "dlv_01JC9A7M3X5Z8B2C4D6E8F0G1H"


def test_without_the_header_there_is_no_delivery_id() -> None:
    # when / then
    assert adapter().delivery_id(headers={}, body=body()) is None


# --- mapping ------------------------------------------------------------------------------------


def test_the_documented_payload_maps_to_the_same_order_draft() -> None:
    # when
    mapped = adapter().map_order(payload(), settings=SETTINGS)

    # then
    assert mapped.external_id == "web-2024-000731"
    assert mapped.draft == OrderDraft(
        external_id="web-2024-000731",
        merchant_id="mer_01JC8Z4W6Q9R2T5Y7U1I3O5P7A",
        pickup=Stop(
            name="Pizzeria Vesuvio Kreuzberg",
            address="Oranienstraße 164, 10969 Berlin, Germany",
            phone="+49 30 6123456",
            location=GeoPoint(lat=52.5026, lon=13.4097),
            window=TimeWindow(
                start=datetime(2024, 11, 8, 19, 0, tzinfo=UTC), end=datetime(2024, 11, 8, 19, 15, tzinfo=UTC)
            ),
        ),
        dropoff=Stop(
            name="Jonas Becker",
            address="Wiener Straße 18, 10999 Berlin, Germany",
            phone="+4917612345678",
            location=GeoPoint(lat=52.4984, lon=13.4291),
            window=TimeWindow(
                start=datetime(2024, 11, 8, 19, 20, tzinfo=UTC), end=datetime(2024, 11, 8, 19, 50, tzinfo=UTC)
            ),
        ),
        customer=Customer(name="Jonas Becker", phone="+4917612345678", email="jonas.becker@example.org"),
        items=[
            Item(name="Pizza Margherita", sku="PZ-MARG-32", quantity=2, unit_price=950),
            Item(name="Tiramisu", quantity=1, unit_price=550),
        ],
        currency="EUR",
        tip=200,
        delivery_fee=350,
        notes="Doorbell is broken, please call.",
        payment=Payment(method=PaymentMethod.CARD, status=PaymentStatus.PAID),
    )


@pytest.mark.parametrize("external_id", ["absent", None])
def test_external_id_is_required(external_id: str | None) -> None:
    # given an otherwise valid draft without an external id
    given = payload()
    if external_id == "absent":
        del given["external_id"]
    else:
        given["external_id"] = external_id

    # when
    with pytest.raises(UnmappablePayload) as caught:
        adapter().map_order(given, settings=SETTINGS)

    # then
    assert caught.value.field == "external_id"
    assert caught.value.reason == "required for platform deliveries"


@pytest.mark.parametrize("given", [[], "order", 42, None])
def test_a_payload_that_is_not_an_object_is_unmappable(given: Any) -> None:
    # when
    with pytest.raises(UnmappablePayload) as caught:
        adapter().map_order(given, settings=SETTINGS)

    # then
    assert caught.value.field is None
    assert caught.value.reason == "payload is not a JSON object"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("dropoff", "location", "lat"), 123.4, "dropoff.location.lat"),
        (("items", 1, "unit_price"), -1, "items[1].unit_price"),
        (("items", 0, "quantity"), 0, "items[0].quantity"),
        (("customer", "email"), "not-an-email", "customer.email"),
        (("currency",), "euro", "currency"),
        (("external_id",), 731, "external_id"),
    ],
)
def test_validation_errors_name_the_dotted_path_of_the_field(
    path: tuple[str | int, ...], value: Any, field: str
) -> None:
    # given one bad value deep in the payload
    given = payload()
    target: Any = given
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    # when
    with pytest.raises(UnmappablePayload) as caught:
        adapter().map_order(given, settings=SETTINGS)

    # then
    assert caught.value.field == field


def test_unknown_fields_are_rejected_like_the_rest_api_does() -> None:
    # given
    given = payload() | {"coupon": "WELCOME10"}

    # when
    with pytest.raises(UnmappablePayload) as caught:
        adapter().map_order(given, settings=SETTINGS)

    # then
    assert caught.value.field == "coupon"


# --- registry -----------------------------------------------------------------------------------


def test_the_registry_knows_every_inbound_platform() -> None:
    # when / then
    assert set(PLATFORMS) == {
        "doorstep",
        "shopify",
        "woocommerce",
        "square",
        "doordash_drive",
        "ubereats",
        "json_mapping",
    }
    assert all(adapter.name == name for name, adapter in PLATFORMS.items())
    assert isinstance(platform_adapter("doorstep"), DoorstepAdapter)


def test_an_unknown_platform_is_a_lookup_error() -> None:
    # when
    with pytest.raises(UnknownPlatform) as caught:
        platform_adapter("magento")

    # then
    assert isinstance(caught.value, LookupError)
    assert caught.value.name == "magento"
    assert str(caught.value) == (
        "unknown platform 'magento'; known: doordash_drive, doorstep, json_mapping, shopify, square, ubereats, woocommerce"
    )
