"""Courier adapters without a network: status mapping, DoorDash's JWT, Uber's webhook signature."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from tests.platform import LOCAL_NETWORKS

from doorstep.contracts.orders import GeoPoint
from doorstep.integrations.couriers import doordash_drive, uber_direct
from doorstep.integrations.couriers.domain import Provider, advances
from doorstep.integrations.couriers.networks import credential_problem
from doorstep.integrations.couriers.ports import (
    CourierInfo,
    CourierStatus,
    WebhookNotAuthentic,
    WebhookUnreadable,
)
from doorstep.integrations.couriers.provider_http import ProviderHttp
from doorstep.integrations.outbound.ssrf import parse_networks

SECRET = base64.urlsafe_b64encode(b"0123456789abcdef0123456789abcdef").decode().rstrip("=")
NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def test_the_doordash_jwt_is_what_drive_documents() -> None:
    # Given a developer id, key id and the base64url signing secret DoorDash shows
    # When a token is made
    token = doordash_drive.drive_jwt(developer_id="dev-1", key_id="key-1", signing_secret=SECRET, now=NOW)

    # Then PyJWT verifies it with the decoded secret, with DoorDash's header and claims
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(
        token,
        base64.urlsafe_b64decode(SECRET + "=="),
        algorithms=["HS256"],
        audience="doordash",
        options={"verify_exp": False},
    )
    assert (header["alg"], header["dd-ver"], header["kid"]) == ("HS256", "DD-JWT-V1", "key-1")
    expected_iat = int(NOW.timestamp())
    assert claims == {
        "aud": "doordash",
        "iss": "dev-1",
        "kid": "key-1",
        "iat": expected_iat,
        "exp": expected_iat + 300,
    }


@pytest.mark.parametrize(
    ("event_name", "status"),
    [
        ("DASHER_CONFIRMED", CourierStatus.ASSIGNED),
        ("DASHER_CONFIRMED_PICKUP_ARRIVAL", CourierStatus.ASSIGNED),
        ("DASHER_PICKED_UP", CourierStatus.PICKED_UP),
        ("DASHER_DROPPED_OFF", CourierStatus.DELIVERED),
        ("DELIVERY_CANCELLED", CourierStatus.CANCELLED),
        ("DASHER_ENROUTE_TO_RETURN", CourierStatus.FAILED),
        ("DELIVERY_RETURNED", CourierStatus.RETURNED),
        ("DELIVERY_BATCHED", None),
    ],
)
def test_doordash_events_map_to_doorstep_statuses(event_name: str, status: CourierStatus | None) -> None:
    assert doordash_drive.status_of_event(event_name) == status


@pytest.mark.parametrize(
    ("uber_status", "status"),
    [
        ("pending", CourierStatus.REQUESTED),
        ("pickup", CourierStatus.ASSIGNED),
        ("pickup_complete", CourierStatus.PICKED_UP),
        ("dropoff", CourierStatus.PICKED_UP),
        ("delivered", CourierStatus.DELIVERED),
        ("canceled", CourierStatus.CANCELLED),
        ("returned", CourierStatus.RETURNED),
        ("scheduled", None),
    ],
)
def test_uber_statuses_map_to_doorstep_statuses(uber_status: str, status: CourierStatus | None) -> None:
    assert uber_direct.status_of(uber_status) == status


def test_a_status_only_moves_forward() -> None:
    assert advances(CourierStatus.ASSIGNED, CourierStatus.PICKED_UP) is True
    assert advances(CourierStatus.PICKED_UP, CourierStatus.ASSIGNED) is False
    assert advances(CourierStatus.DELIVERED, CourierStatus.RETURNED) is False
    assert advances(CourierStatus.CANCELLED, CourierStatus.RETURNED) is True
    assert advances(CourierStatus.ASSIGNED, CourierStatus.ASSIGNED) is False


def _uber() -> uber_direct.UberDirect:
    return uber_direct.UberDirect(
        http=ProviderHttp(allowed=parse_networks(LOCAL_NETWORKS)),
        customer_id="cus_1",
        client_id="c",
        client_secret="s",
        webhook_signing_key="key",
    )


UBER_EVENT = {
    "kind": "event.delivery_status",
    "id": "evt_1",
    "delivery_id": "del_1",
    "status": "delivered",
    "created": "2026-11-21T18:31:00Z",
    "data": {
        "id": "del_1",
        "status": "delivered",
        "courier": {"name": "Mia", "phone_number": "+49 30 1", "location": {"lat": 52.5, "lng": 13.43}},
        "dropoff": {"verification": {"picture": {"image_url": "https://uber.example/pod.jpg"}}},
    },
}


def test_an_uber_webhook_signed_with_the_key_is_read() -> None:
    # Given an Uber status webhook signed with the account's key
    body = json.dumps(UBER_EVENT).encode()
    headers = {"X-Postmates-Signature": uber_direct.signature("key", body)}

    # When it is parsed
    update = _uber().parse_webhook(headers, body)

    # Then it says what Uber said, in Doorstep's terms
    assert (update.event_key, update.provider_delivery_id, update.status) == (
        "evt_1",
        "del_1",
        CourierStatus.DELIVERED,
    )
    assert update.occurred_at == datetime(2026, 11, 21, 18, 31, tzinfo=UTC)
    assert update.courier is not None
    assert (update.courier.name, update.courier.phone) == ("Mia", "+49 30 1")
    assert update.proof_of_delivery == ("https://uber.example/pod.jpg",)


def test_an_uber_webhook_with_a_wrong_or_missing_signature_is_refused() -> None:
    body = json.dumps(UBER_EVENT).encode()
    with pytest.raises(WebhookNotAuthentic):
        _uber().parse_webhook({"X-Postmates-Signature": uber_direct.signature("other", body)}, body)
    with pytest.raises(WebhookNotAuthentic):
        _uber().parse_webhook({}, body)


def test_an_authentic_uber_webhook_of_another_kind_is_unreadable() -> None:
    body = json.dumps({**UBER_EVENT, "kind": "event.refund_request"}).encode()
    with pytest.raises(WebhookUnreadable, match=r"'event\.refund_request' is not one of"):
        _uber().parse_webhook({"X-Postmates-Signature": uber_direct.signature("key", body)}, body)


def test_an_uber_courier_update_brings_the_courier_position() -> None:
    # Given Uber's courier_update webhook as documented: the position at the top and in data.courier
    payload = {
        "kind": "event.courier_update",
        "id": "evt_c1",
        "delivery_id": "del_1",
        "status": "pickup",
        "created": "2026-11-21T18:09:07.173Z",
        "live_mode": False,
        "location": {"lat": 52.5001, "lng": 13.4201},
        "data": {
            "id": "del_1",
            "status": "pickup",
            "courier": {
                "name": "Cori R.",
                "phone_number": "+11111111111",
                "location": {"lat": 52.4990, "lng": 13.4190},
            },
        },
    }
    body = json.dumps(payload).encode()

    # When it is parsed, and again without the top-level position
    update = _uber().parse_webhook({"X-Postmates-Signature": uber_direct.signature("key", body)}, body)
    del payload["location"]
    body = json.dumps(payload).encode()
    nested = _uber().parse_webhook({"X-Postmates-Signature": uber_direct.signature("key", body)}, body)

    # Then the status is the delivery's, and the position the event's (else the courier's copy)
    assert (update.event_key, update.status, update.provider_status) == (
        "evt_c1",
        CourierStatus.ASSIGNED,
        "pickup",
    )
    assert update.occurred_at == datetime(2026, 11, 21, 18, 9, 7, 173000, tzinfo=UTC)
    assert update.courier == CourierInfo(
        name="Cori R.", phone="+11111111111", location=GeoPoint(lat=52.5001, lon=13.4201)
    )
    assert nested.courier is not None
    assert nested.courier.location == GeoPoint(lat=52.4990, lon=13.4190)


@pytest.mark.parametrize(
    "position",
    [
        {"dasher_location": {"lat": 52.51, "lng": 13.41}},
        {"dasher_location": {"lat": "52.51", "lng": "13.41"}},
        {"dasher_location_lat": 52.51, "dasher_location_lng": 13.41},
    ],
)
def test_a_doordash_dasher_event_brings_the_dasher_position(position: dict[str, Any]) -> None:
    # Given a Dasher event with the Dasher's position (as an object, or as two fields)
    body = json.dumps(
        {
            "event_name": "DASHER_ENROUTE_TO_DROPOFF",
            "created_at": "2026-11-21T18:20:00Z",
            "external_delivery_id": "ext-1",
            **position,
        }
    ).encode()

    # When it is parsed
    update = _drive().parse_webhook({"Authorization": "Bearer s3cret"}, body)

    # Then the position is the courier's
    assert update.status == CourierStatus.PICKED_UP
    assert update.courier == CourierInfo(location=GeoPoint(lat=52.51, lon=13.41))


def test_a_position_off_the_map_is_left_out() -> None:
    body = json.dumps(
        {
            "event_name": "DASHER_ENROUTE_TO_DROPOFF",
            "created_at": "2026-11-21T18:20:00Z",
            "external_delivery_id": "ext-1",
            "dasher_name": "Sam",
            "dasher_location": {"lat": 152.5, "lng": 13.4},
        }
    ).encode()
    update = _drive().parse_webhook({"Authorization": "Bearer s3cret"}, body)
    assert update.courier == CourierInfo(name="Sam")


def _drive() -> doordash_drive.DoorDashDrive:
    return doordash_drive.DoorDashDrive(
        http=ProviderHttp(allowed=parse_networks(LOCAL_NETWORKS)),
        developer_id="d",
        key_id="k",
        signing_secret=SECRET,
        webhook_secret="Bearer s3cret",
    )


def test_a_doordash_webhook_needs_the_configured_authorization() -> None:
    # Given a DoorDash adapter whose webhook secret is known
    drive = doordash_drive.DoorDashDrive(
        http=ProviderHttp(allowed=parse_networks(LOCAL_NETWORKS)),
        developer_id="d",
        key_id="k",
        signing_secret=SECRET,
        webhook_secret="Bearer s3cret",
    )
    body = json.dumps(
        {
            "event_name": "DASHER_DROPPED_OFF",
            "created_at": "2026-11-21T18:31:00Z",
            "external_delivery_id": "ext-1",
            "dasher_name": "Sam",
            "dropoff_verification_image_url": "https://dd.example/photo.jpg",
            "dropoff_signature_image_url": "https://dd.example/sign.png",
        }
    ).encode()

    # When it is parsed with the right header, and with a wrong one
    update = drive.parse_webhook({"Authorization": "Bearer s3cret"}, body)
    with pytest.raises(WebhookNotAuthentic):
        drive.parse_webhook({"Authorization": "Bearer guess"}, body)

    # Then the right one maps, with its proof of delivery
    assert (update.provider_delivery_id, update.status) == ("ext-1", CourierStatus.DELIVERED)
    assert update.proof_of_delivery == ("https://dd.example/photo.jpg", "https://dd.example/sign.png")


@pytest.mark.parametrize(
    ("signing_secret", "problem"),
    [
        (SECRET, None),
        (SECRET + "=", None),
        ("my-doordash-secret!", "base64url text"),
        (base64.urlsafe_b64encode(b"sixteen bytes!!!").decode(), "at least 32 bytes"),
    ],
)
def test_a_doordash_signing_secret_must_be_the_one_doordash_shows(
    signing_secret: str, problem: str | None
) -> None:
    # Given DoorDash credentials with this signing secret
    credentials = {"developer_id": "d", "key_id": "k", "signing_secret": signing_secret}

    # When they are checked
    found = credential_problem(Provider.DOORDASH_DRIVE, credentials)

    # Then a secret that is not base64url of a 32-byte key is refused, naming the field
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found[0] == "signing_secret"
        assert problem in found[1]
