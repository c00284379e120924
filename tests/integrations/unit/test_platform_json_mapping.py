"""The generic `json_mapping` connection: a stored JSONPath mapping, optional AES-GCM bodies, HMAC."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
from typing import Any

import pytest

from doorstep.contracts.orders import Customer, GeoPoint, Item, OrderDraft, Stop
from doorstep.integrations.adapters.platforms.json_mapping import (
    JsonMappingAdapter,
    compile_mapping,
    encrypt_payload,
)
from doorstep.integrations.ports import OrderChange, SignatureInvalid, UnmappablePayload

PICKUP: dict[str, Any] = {"name": "Küche Nord", "address": "Müllerstraße 1, 13353 Berlin"}
MAPPING: dict[str, Any] = {
    "external_id": "$.id",
    "currency": "$.currency",
    "customer.name": "$.buyer.name",
    "customer.email": "$.buyer.email",
    "dropoff.address": "$.shipping.street",
    "dropoff.location.lat": "$.shipping.lat",
    "dropoff.location.lon": "$.shipping.lng",
    "delivery_fee": {"path": "$.fees[?@.kind == 'delivery'].amount", "decimal": True},
    "items": {
        "path": "$.lines[*]",
        "fields": {
            "name": "$.title",
            "quantity": "$.qty",
            "unit_price": {"path": "$.price", "decimal": True},
        },
    },
    "version": "$.updated_at",
    "cancelled": {"path": "$.state", "equals": "cancelled"},
}
SETTINGS: dict[str, Any] = {"pickup": PICKUP, "mapping": MAPPING}
PAYLOAD: dict[str, Any] = {
    "id": 9001,
    "currency": "eur",
    "state": "open",
    "updated_at": "2026-11-20T11:04:11Z",
    "buyer": {"name": "Ayşe Yücel", "email": "ayse@example.com"},
    "shipping": {"street": "Sonnenallee 101, 12045 Berlin", "lat": "52.4839", "lng": 13.4420},
    "fees": [{"kind": "service", "amount": "0.99"}, {"kind": "delivery", "amount": "2.50"}],
    "lines": [{"title": "Börek", "qty": 2, "price": "4.20"}, {"title": "Ayran", "qty": "1", "price": 1.5}],
}
SECRET = "json-mapping-secret-0123456789"

adapter = JsonMappingAdapter()


def test_a_payload_maps_by_the_stored_jsonpaths() -> None:
    # Given the mapping from the issue and a sender's payload (amounts as strings, a filter expression)
    # When it is mapped
    result = adapter.map_order(PAYLOAD, settings=SETTINGS)

    # Then every mapped field is filled, the rest defaults, amounts in cents
    assert (result.external_id, result.change, result.version) == (
        "9001",
        OrderChange.UPDATED,
        1_795_172_651_000_000,
    )
    assert result.draft == OrderDraft(
        pickup=Stop.model_validate(PICKUP),
        dropoff=Stop(
            name="Ayşe Yücel",
            address="Sonnenallee 101, 12045 Berlin",
            location=GeoPoint(lat=52.4839, lon=13.442),
        ),
        customer=Customer(name="Ayşe Yücel", email="ayse@example.com"),
        items=[
            Item(name="Börek", quantity=2, unit_price=420),
            Item(name="Ayran", quantity=1, unit_price=150),
        ],
        currency="EUR",
        delivery_fee=250,
    )


def test_equals_marks_a_cancellation_and_no_version_is_a_placement() -> None:
    # Given a cancelled payload, and a mapping without version
    cancelled = PAYLOAD | {"state": "cancelled"}
    unversioned = {k: v for k, v in MAPPING.items() if k != "version"}

    # When they are mapped
    # Then the first cancels, the second places
    assert adapter.map_order(cancelled, settings=SETTINGS).change == OrderChange.CANCELLED
    placed = adapter.map_order(PAYLOAD, settings=SETTINGS | {"mapping": unversioned})
    assert (placed.change, placed.version) == (OrderChange.PLACED, None)


def test_missing_coordinates_leave_the_stop_to_the_geocoder() -> None:
    # Given a payload without coordinates
    payload = copy.deepcopy(PAYLOAD)
    del payload["shipping"]["lat"], payload["shipping"]["lng"]

    # When it is mapped
    # Then the drop-off has no location
    assert adapter.map_order(payload, settings=SETTINGS).draft.dropoff.location is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["lines"][1].update(price="eins fünfzig"), "mapping.items[1].unit_price ($.price)"),
        (lambda p: p["lines"][0].update(qty=0), "mapping.items[0].quantity ($.qty)"),
        (lambda p: p.update(id=None), "mapping.external_id ($.id)"),
        (lambda p: p["shipping"].update(lat=123), "mapping.dropoff.location.lat ($.shipping.lat)"),
        (lambda p: p.update(lines=[]), "mapping.items"),
        (lambda p: p.update(updated_at="gestern"), "mapping.version ($.updated_at)"),
    ],
)
def test_a_payload_that_does_not_fit_names_the_mapping_field_and_its_path(change: Any, field: str) -> None:
    # Given the payload with one value wrong
    payload = copy.deepcopy(PAYLOAD)
    change(payload)

    # When it is mapped
    # Then the error names the Doorstep field and the JSONPath it came from
    with pytest.raises(UnmappablePayload) as caught:
        adapter.map_order(payload, settings=SETTINGS)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        (MAPPING | {"dropoff.colour": "$.x"}, "settings.mapping.dropoff.colour"),
        (MAPPING | {"customer.name": "$.buyer[name"}, "settings.mapping.customer.name"),
        (MAPPING | {"tip": {"path": "$.tip", "round": True}}, "settings.mapping.tip"),
        (MAPPING | {"tip": {"path": "$.tip", "decimal": "yes"}}, "settings.mapping.tip.decimal"),
        (MAPPING | {"notes": 42}, "settings.mapping.notes"),
        ({k: v for k, v in MAPPING.items() if k != "external_id"}, "settings.mapping.external_id"),
        (MAPPING | {"items": "$.lines[*]"}, "settings.mapping.items"),
        (
            MAPPING | {"items": {"path": "$.lines[*]", "fields": {"name": "$.t", "qty": "$.q"}}},
            "settings.mapping.items.fields.qty",
        ),
        (
            MAPPING | {"items": {"path": "$.lines[*]", "fields": {"name": "$.t", "unit_price": "$.p"}}},
            "settings.mapping.items.fields.quantity",
        ),
        (
            MAPPING | {"items": {"path": "lines", "fields": MAPPING["items"]["fields"]}},
            "settings.mapping.items",
        ),
        ("$.id", "settings.mapping"),
    ],
)
def test_a_wrong_mapping_is_refused_naming_the_field(mapping: Any, field: str) -> None:
    # Given a mapping with an unknown target, an invalid JSONPath or a missing required field
    # When it is checked
    # Then the field is named
    with pytest.raises(UnmappablePayload) as caught:
        compile_mapping(mapping)
    assert caught.value.field == field


def test_an_encrypted_body_is_decrypted_with_the_connections_key() -> None:
    # Given an AES-256-GCM key in the settings and a body encrypted with it
    key = os.urandom(32)
    settings = SETTINGS | {"encryption_key": base64.b64encode(key).decode()}
    body = encrypt_payload(PAYLOAD, key, os.urandom(12))

    # When it is decoded and mapped
    payload = adapter.decode(body, settings=settings)

    # Then it is the sender's payload
    assert payload == PAYLOAD
    assert adapter.map_order(payload, settings=settings).external_id == "9001"


def test_a_body_encrypted_with_another_key_or_tampered_is_refused() -> None:
    # Given the connection's key and bodies sealed with another key, or changed after sealing
    key = os.urandom(32)
    settings = SETTINGS | {"encryption_key": base64.b64encode(key).decode()}
    other = encrypt_payload(PAYLOAD, os.urandom(32), os.urandom(12))
    sealed = json.loads(encrypt_payload(PAYLOAD, key, os.urandom(12)))
    raw = bytearray(base64.b64decode(sealed["ciphertext"]))
    raw[0] ^= 1
    tampered = json.dumps(sealed | {"ciphertext": base64.b64encode(bytes(raw)).decode()}).encode()

    # When they are decoded
    # Then both are refused naming the ciphertext; a plain body names the missing iv
    for body in (other, tampered):
        with pytest.raises(UnmappablePayload) as caught:
            adapter.decode(body, settings=settings)
        assert caught.value.field == "ciphertext"
    with pytest.raises(UnmappablePayload) as caught:
        adapter.decode(json.dumps(PAYLOAD).encode(), settings=settings)
    assert caught.value.field == "iv"


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_the_signature_is_an_hmac_in_the_configured_header_and_encoding(encoding: str) -> None:
    # Given a connection signing in X-Shop-Signature with that encoding
    settings = SETTINGS | {"signature_header": "X-Shop-Signature", "signature_encoding": encoding}
    body = json.dumps(PAYLOAD).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    good = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()

    # When it is verified
    adapter.verify(headers={"x-shop-signature": good}, body=body, secret=SECRET, settings=settings)

    # Then a wrong one, or the right one in the default header, is refused
    for headers in ({"x-shop-signature": good[:-2] + "AA"}, {"x-signature": good}):
        with pytest.raises(SignatureInvalid):
            adapter.verify(headers=headers, body=body, secret=SECRET, settings=settings)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"encryption_key": "c2hvcnQ="}, "settings.encryption_key"),
        ({"encryption_key": "not base64!"}, "settings.encryption_key"),
        ({"signature_encoding": "rot13"}, "settings.signature_encoding"),
        ({"signature_header": "X-Doorstep-Signature"}, "settings.signature_header"),
        ({"mapping": None}, "settings.mapping"),
    ],
)
def test_wrong_settings_are_named(settings: dict[str, Any], field: str) -> None:
    # Given settings with one wrong value
    # When they are checked
    # Then it is named
    with pytest.raises(UnmappablePayload) as caught:
        adapter.check_settings(SETTINGS | settings)
    assert caught.value.field == field
