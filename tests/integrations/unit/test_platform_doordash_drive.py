"""The `doordash_drive` platform: partners post `POST /drive/v2/deliveries` bodies with a Drive JWT."""

from __future__ import annotations

import base64
import copy
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from tests.platform import running_platform, settings_for

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
from doorstep.integrations.adapters.platforms.doordash_drive import (
    DoorDashDriveAdapter,
    sign_drive_jwt,
    signing_key,
)
from doorstep.integrations.ports import OrderChange, SignatureInvalid, UnmappablePayload

FIXTURES = Path(__file__).parent.parent / "fixtures"
# Shaped like the secrets DoorDash shows: 32 bytes, base64url without padding (43 characters).
KEY = bytes.fromhex("5b1e0c9a7d3f42e8b6a1c4d2f09e87a3316c5fd28e4b7a90c1d3e5f7a9b2c4d6")
SECRET = base64.urlsafe_b64encode(KEY).decode().rstrip("=")
SETTINGS: dict[str, Any] = {"merchant_id": "mer_drive", "developer_id": "dev-1", "key_id": "key-1"}

adapter = DoorDashDriveAdapter()


def delivery() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "doordash_drive_delivery.json").read_text())
    return loaded


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def unmappable(payload: Any) -> UnmappablePayload:
    with pytest.raises(UnmappablePayload) as caught:
        adapter.map_order(payload, settings=SETTINGS)
    return caught.value


def test_a_create_delivery_request_maps_with_string_coordinates_and_unicode_names() -> None:
    # Given DoorDash's documented create-delivery body (drop-off coordinates as strings)
    # When it is mapped
    result = adapter.map_order(delivery(), settings=SETTINGS)

    # Then both stops come from the request and the partner is invoiced
    assert (result.external_id, result.change, result.version) == ("D-1763-ÄÖÜ", OrderChange.PLACED, None)
    assert result.draft == OrderDraft(
        merchant_id="mer_drive",
        pickup=Stop(
            name="Wells Fargo SF Downtown",
            address="901 Market Street 6th Floor San Francisco, CA 94103",
            phone="+16505555555",
            location=GeoPoint(lat=37.7825, lon=-122.4079),
        ),
        dropoff=Stop(
            name="José Núñez",
            address="901 Market Street 6th Floor San Francisco, CA 94103",
            phone="+16505555555",
            location=GeoPoint(lat=37.7822, lon=-122.4083),
        ),
        customer=Customer(name="José Núñez", phone="+16505555555"),
        items=[Item(name="Arugula salad", sku="123-123443434b", quantity=1, unit_price=1999)],
        currency="USD",
        tip=599,
        notes="pickup: Enter gate code 1234 on the callbox.; "
        "dropoff: Enter gate code 1234 on the callbox.; pickup at 2026-11-20T18:00:00Z",
        payment=Payment(method=PaymentMethod.INVOICE, status=PaymentStatus.PENDING),
    )


def test_a_request_without_coordinates_or_items_keeps_the_addresses_and_the_order_value() -> None:
    # Given the minimal request: addresses, phone numbers and the order value only
    payload = delivery()
    for key in (
        "pickup_location",
        "dropoff_location",
        "items",
        "dropoff_contact_given_name",
        "dropoff_contact_family_name",
        "tip",
        "pickup_instructions",
        "dropoff_instructions",
        "pickup_time",
    ):
        del payload[key]

    # When it is mapped
    draft = adapter.map_order(payload, settings=SETTINGS).draft

    # Then the stops have no coordinates (the orders service geocodes them), one line holds the value,
    # and the business receives it
    assert draft.pickup.location is None
    assert draft.dropoff.location is None
    assert draft.dropoff.name == "Wells Fargo SF Downtown"
    assert draft.items == [Item(name="Delivery D-1763-ÄÖÜ", quantity=1, unit_price=1999)]
    assert (draft.tip, draft.notes) == (0, None)


def test_the_currency_defaults_to_the_connections() -> None:
    # Given a request without currency and a connection in euros
    payload = delivery()
    del payload["currency"]

    # When it is mapped
    # Then the connection's currency is used
    assert adapter.map_order(payload, settings=SETTINGS | {"currency": "eur"}).draft.currency == "EUR"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.update(external_delivery_id=" "), "external_delivery_id"),
        (lambda p: p["items"][0].update(price="19.99"), "items[0].price"),
        (lambda p: p.update(tip=-1), "tip"),
        (lambda p: p.update(order_value=12.5), "order_value"),
        (lambda p: p["dropoff_location"].update(lat="north"), "dropoff_location.lat"),
        (lambda p: p["pickup_location"].update(lng=None), "pickup_location.lng"),
        (lambda p: p.update(dropoff_address=None), "dropoff_address"),
        (lambda p: p.update(currency="dollars"), "currency"),
    ],
)
def test_a_request_that_cannot_be_mapped_names_drives_field(change: Any, field: str) -> None:
    # Given the request with one field wrong
    payload = copy.deepcopy(delivery())
    change(payload)

    # When it is mapped
    # Then the error names Drive's field
    assert unmappable(payload).field == field


def test_a_valid_drive_jwt_verifies() -> None:
    # Given a token signed as DoorDash's documentation shows (HS256, aud doordash, kid, dd-ver header)
    token = sign_drive_jwt(secret=SECRET, developer_id="dev-1", key_id="key-1", now=int(time.time()))

    # When it is verified
    # Then it passes
    adapter.verify(headers=bearer(token), body=b"{}", secret=SECRET, settings=SETTINGS)


def test_the_token_is_signed_with_the_decoded_secret_as_doordash_signs_it() -> None:
    # Given a Drive client that signs as DoorDash's docs show: HS256 over urlsafe_b64decode(signing_secret)
    now = int(time.time())
    claims = {"aud": "doordash", "iss": "dev-1", "kid": "key-1", "iat": now, "exp": now + 300}
    theirs = jwt.encode(claims, base64.urlsafe_b64decode(SECRET + "="), algorithm="HS256")
    # And one that (wrongly) signs with the secret's text
    raw = jwt.encode(claims, SECRET, algorithm="HS256")

    # When Doorstep signs the same claims, and verifies both
    ours = sign_drive_jwt(secret=SECRET, developer_id="dev-1", key_id="key-1", now=now)
    adapter.verify(headers=bearer(theirs), body=b"{}", secret=SECRET, settings=SETTINGS)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        adapter.verify(headers=bearer(raw), body=b"{}", secret=SECRET, settings=SETTINGS)

    # Then Doorstep's token carries the same signature as DoorDash's recipe
    assert (
        ours.split(".")[2]
        == jwt.encode(claims, KEY, algorithm="HS256", headers={"dd-ver": "DD-JWT-V1"}).split(".")[2]
    )


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        (SECRET, KEY),
        (SECRET + "=", KEY),
        # 34 bytes, of which the last two encode to `-` and `_`: padded with `==`, or not
        (base64.urlsafe_b64encode(KEY + b"\xfb\xff").decode(), KEY + b"\xfb\xff"),
        (base64.urlsafe_b64encode(KEY + b"\xfb\xff").decode().rstrip("="), KEY + b"\xfb\xff"),
    ],
)
def test_a_secret_with_or_without_padding_gives_the_key_it_encodes(secret: str, key: bytes) -> None:
    # Given a base64url secret, padded or not
    # When its key is read
    # Then it is the bytes it encodes
    assert signing_key(secret) == key


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("drive-signing-secret-8c1f2a9e4b7d!", "base64url text"),
        (SECRET.replace("-", "+") + "+/", "base64url text"),
        (SECRET + "AB", "whole bytes"),
        (base64.urlsafe_b64encode(KEY[:16]).decode(), "at least 32 bytes"),
        ("", "base64url text"),
    ],
)
def test_a_secret_that_is_not_a_drive_secret_is_refused_with_the_reason(secret: str, reason: str) -> None:
    # Given a secret that is not base64url, not whole bytes, or too short for HS256
    # When its key is read
    # Then it is refused, saying why
    with pytest.raises(ValueError, match=reason):
        signing_key(secret)


def test_a_connection_whose_stored_secret_is_not_a_drive_secret_refuses_every_token() -> None:
    # Given a connection saved before secrets were checked, whose secret is not base64url
    token = sign_drive_jwt(secret=SECRET, developer_id="dev-1", key_id="key-1", now=int(time.time()))

    # When a token is verified against it
    # Then it is refused, saying the secret is the problem (not a 500)
    with pytest.raises(SignatureInvalid, match="the connection's secret cannot sign Drive tokens"):
        adapter.verify(headers=bearer(token), body=b"{}", secret="whsec_not-base64url!", settings=SETTINGS)


def _token(**claims: Any) -> str:
    # Made when the tests are collected, maybe minutes before one runs: valid for a day, not DoorDash's 5 min.
    now = int(time.time())
    payload = {"aud": "doordash", "iss": "dev-1", "kid": "key-1", "iat": now, "exp": now + 86_400} | claims
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, KEY, algorithm="HS256")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing Authorization"),
        ({"authorization": "Basic ZGV2OnNlY3JldA=="}, "missing Authorization"),
        (bearer("not.a.jwt"), "does not verify"),
        (
            bearer(
                jwt.encode(
                    {"aud": "doordash", "kid": "key-1", "exp": 9_999_999_999},
                    bytes(reversed(KEY)),
                )
            ),
            "does not verify",
        ),
        (bearer(_token(exp=int(time.time()) - 60)), "does not verify"),
        (bearer(_token(aud="someone-else")), "does not verify"),
        (bearer(_token(kid=None)), "does not verify"),
        (bearer(_token(kid="key-2")), "kid"),
        (bearer(_token(iss="dev-2")), "iss"),
    ],
)
def test_a_missing_wrong_expired_or_foreign_token_is_refused(headers: dict[str, str], reason: str) -> None:
    # Given a request with a bad bearer token
    # When it is verified
    # Then it is refused with the reason
    with pytest.raises(SignatureInvalid, match=reason):
        adapter.verify(headers=headers, body=b"{}", secret=SECRET, settings=SETTINGS)


def test_drive_sends_no_delivery_id() -> None:
    # Given a Drive request
    # When its delivery id is read
    # Then there is none: the orders service is idempotent by external_delivery_id
    assert adapter.delivery_id(headers={}, body=b"{}") is None


def test_the_adapter_is_registered_under_its_webhook_name() -> None:
    # Given the platforms by webhook name
    # When doordash_drive is looked up
    # Then it is this adapter
    assert isinstance(platform_adapter("doordash_drive"), DoorDashDriveAdapter)


async def test_a_drive_connection_takes_only_a_drive_secret_and_is_given_one_otherwise(
    tmp_path: Path,
) -> None:
    async with running_platform(settings_for(tmp_path), names=["identity", "integrations"]) as platform:
        # Given a tenant
        tenant = await platform.new_tenant()

        async def connect(**secret: str) -> httpx.Response:
            return await platform.client.post(
                "/v1/integrations/connections",
                json={"platform": "doordash_drive", "settings": SETTINGS, **secret},
                headers=tenant.headers,
            )

        # When it connects a Drive partner with a secret that is not base64url, with DoorDash's kind,
        # and with none
        refused = await connect(secret="drive-signing-secret-8c1f2a9e4b7d!")
        given = await connect(secret=SECRET)
        made = await connect()
        # And the partner signs a delivery with the secret Doorstep made
        token = sign_drive_jwt(
            secret=made.json()["secret"], developer_id="dev-1", key_id="key-1", now=int(time.time())
        )
        delivered = await platform.client.post(
            made.json()["webhook_url"].removeprefix("http://testserver"),
            content=json.dumps(delivery()).encode(),
            headers=bearer(token),
        )

    # Then the first is a problem naming the secret, the second keeps it, the third gets a 32-byte one
    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "secret")
    assert "base64url" in refused.json()["errors"][0]["message"]
    assert (given.status_code, given.json()["secret"]) == (201, SECRET)
    assert (made.status_code, len(signing_key(made.json()["secret"]))) == (201, 32)
    # And the delivery signed with it is taken
    assert (delivered.status_code, delivered.json()["status"]) == (202, "mapped")
