"""`json_mapping` connections through the API: validated on save, tried on a sample, audited, and
deliveries (also AES-GCM encrypted) becoming orders."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

import pytest
from tests.integrations.integration.test_webhooks_api import webhook_path
from tests.platform import RunningPlatform, Tenant

from doorstep.integrations.adapters.platforms.json_mapping import encrypt_payload

pytestmark = pytest.mark.integration

SECRET = "json-mapping-api-secret-0123456789"
PICKUP = {"name": "Küche Nord", "address": "Müllerstraße 1, 13353 Berlin"}
MAPPING: dict[str, Any] = {
    "external_id": "$.id",
    "currency": "$.currency",
    "customer.name": "$.buyer.name",
    "dropoff.address": "$.shipping.street",
    "dropoff.location.lat": "$.shipping.lat",
    "dropoff.location.lon": "$.shipping.lng",
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
SAMPLE: dict[str, Any] = {
    "id": "so-77",
    "currency": "EUR",
    "state": "open",
    "updated_at": "2026-11-20T11:04:11Z",
    "buyer": {"name": "Ayşe Yücel"},
    "shipping": {"street": "Sonnenallee 101, 12045 Berlin", "lat": 52.4839, "lng": 13.442},
    "lines": [{"title": "Börek", "qty": 2, "price": "4.20"}],
}


async def open_mapping(
    platform: RunningPlatform, tenant: Tenant, **settings: Any
) -> tuple[int, dict[str, Any]]:
    response = await platform.client.post(
        "/v1/integrations/connections",
        json={
            "platform": "json_mapping",
            "settings": {"pickup": PICKUP, "mapping": MAPPING} | settings,
            "secret": SECRET,
        },
        headers=tenant.headers,
    )
    body: dict[str, Any] = response.json()
    return response.status_code, body


def signed(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }


async def test_a_mapping_with_an_unknown_field_or_bad_jsonpath_is_refused_on_save(
    platform: RunningPlatform,
) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When connections are opened with an unknown target field and with an invalid JSONPath
    unknown = await open_mapping(platform, tenant, mapping=MAPPING | {"customer.colour": "$.c"})
    invalid = await open_mapping(platform, tenant, mapping=MAPPING | {"customer.name": "$.buyer[name"})

    # Then both are 422 naming the field, and no connection exists
    assert unknown[0] == 422
    assert unknown[1]["errors"][0]["field"] == "settings.mapping.customer.colour"
    assert invalid[0] == 422
    assert invalid[1]["errors"][0]["field"] == "settings.mapping.customer.name"
    listed = await platform.client.get("/v1/integrations/connections", headers=tenant.headers)
    assert listed.json()["items"] == []


async def test_changing_the_mapping_is_validated_stored_and_audited(platform: RunningPlatform) -> None:
    # Given a json_mapping connection
    tenant = await platform.new_tenant()
    status, connection = await open_mapping(platform, tenant)
    assert status == 201, connection
    url = f"/v1/integrations/connections/{connection['connection_id']}/mapping"

    # When a mapping with an invalid JSONPath is put, then a valid one
    refused = await platform.client.put(
        url, json={"mapping": MAPPING | {"notes": "$..[?"}}, headers=tenant.headers
    )
    changed_mapping = MAPPING | {"notes": "$.buyer.note"}
    changed = await platform.client.put(url, json={"mapping": changed_mapping}, headers=tenant.headers)

    # Then the first is a 422 naming the field, the second is stored and audited with both mappings
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "mapping.notes"
    assert changed.status_code == 200, changed.text
    assert changed.json()["settings"]["mapping"] == changed_mapping
    await platform.settle()
    audit = await platform.client.get(
        "/v1/identity/audit", params={"action": "connection.mapping_changed"}, headers=tenant.headers
    )
    [entry] = audit.json()["items"]
    assert entry["object_id"] == connection["connection_id"]
    assert entry["before"] == {"mapping": MAPPING}
    assert entry["after"] == {"mapping": changed_mapping}


async def test_a_sample_payload_is_tried_against_the_stored_or_a_draft_mapping(
    platform: RunningPlatform,
) -> None:
    # Given a json_mapping connection
    tenant = await platform.new_tenant()
    _, connection = await open_mapping(platform, tenant)
    url = f"/v1/integrations/connections/{connection['connection_id']}/mapping/test"

    # When the sample is tried, then a broken sample, then a draft mapping that reads another field
    tried = await platform.client.post(url, json={"payload": SAMPLE}, headers=tenant.headers)
    broken = await platform.client.post(
        url,
        json={"payload": SAMPLE | {"lines": [{"title": "Börek", "qty": 2, "price": "vier"}]}},
        headers=tenant.headers,
    )
    draft = await platform.client.post(
        url,
        json={"payload": SAMPLE | {"ref": "R-1"}, "mapping": MAPPING | {"external_id": "$.ref"}},
        headers=tenant.headers,
    )

    # Then the first is the draft order, the second a 422 naming the field, the third uses the draft
    assert tried.status_code == 200, tried.text
    assert tried.json()["external_id"] == "so-77"
    assert (tried.json()["change"], tried.json()["version"]) == ("updated", 1_795_172_651_000_000)
    assert tried.json()["draft"]["items"] == [
        {"name": "Börek", "sku": None, "quantity": 2, "unit_price": 420}
    ]
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "payload: mapping.items[0].unit_price ($.price)"
    assert draft.status_code == 200, draft.text
    assert draft.json()["external_id"] == "R-1"
    # And nothing was stored: the connection still has its mapping, no order exists
    listed = await platform.client.get("/v1/integrations/connections", headers=tenant.headers)
    assert listed.json()["items"][0]["settings"]["mapping"] == MAPPING


async def test_a_mapping_of_another_platforms_connection_is_a_422(platform: RunningPlatform) -> None:
    # Given a doorstep connection (no mapping)
    tenant = await platform.new_tenant()
    opened = await platform.client.post(
        "/v1/integrations/connections",
        json={"platform": "doorstep", "settings": {}, "secret": SECRET},
        headers=tenant.headers,
    )
    connection_id = opened.json()["connection_id"]

    # When its mapping is changed
    response = await platform.client.put(
        f"/v1/integrations/connections/{connection_id}/mapping",
        json={"mapping": MAPPING},
        headers=tenant.headers,
    )

    # Then it is refused naming the connection
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "connection_id"


async def test_an_encrypted_signed_delivery_becomes_an_order_and_a_later_cancellation_cancels_it(
    platform: RunningPlatform,
) -> None:
    # Given a json_mapping connection with an AES-256-GCM key
    tenant = await platform.new_tenant()
    key = os.urandom(32)
    _, connection = await open_mapping(platform, tenant, encryption_key=base64.b64encode(key).decode())
    path = webhook_path(connection)

    # When the sample arrives encrypted and signed, then its cancellation
    first = encrypt_payload(SAMPLE, key, os.urandom(12))
    cancel = encrypt_payload(
        SAMPLE | {"state": "cancelled", "updated_at": "2026-11-20T12:00:00Z"}, key, os.urandom(12)
    )
    placed = await platform.client.post(path, content=first, headers=signed(first))
    await platform.settle()
    cancelled = await platform.client.post(path, content=cancel, headers=signed(cancel))
    await platform.settle()

    # Then both are mapped, and the one order ends cancelled
    assert (placed.status_code, placed.json()["status"]) == (202, "mapped")
    assert (cancelled.status_code, cancelled.json()["status"]) == (202, "mapped")
    orders = (await platform.client.get("/v1/orders", headers=tenant.headers)).json()["items"]
    assert [(o["source"], o["external_id"], o["status"]) for o in orders] == [
        ("json_mapping", "so-77", "cancelled")
    ]


async def test_a_delivery_encrypted_with_another_key_is_kept_failed_naming_the_ciphertext(
    platform: RunningPlatform,
) -> None:
    # Given a json_mapping connection with a key
    tenant = await platform.new_tenant()
    _, connection = await open_mapping(
        platform, tenant, encryption_key=base64.b64encode(os.urandom(32)).decode()
    )

    # When a signed body sealed with another key arrives
    body = encrypt_payload(SAMPLE, os.urandom(32), os.urandom(12))
    response = await platform.client.post(webhook_path(connection), content=body, headers=signed(body))

    # Then it is kept, failed, naming the ciphertext
    assert (response.status_code, response.json()["status"]) == (202, "failed"), response.text
    detail = await platform.client.get(
        f"/v1/integrations/inbound/{response.json()['delivery_id']}", headers=tenant.headers
    )
    assert detail.json()["failure_field"] == "ciphertext"


async def test_a_delivery_with_a_wrong_signature_is_refused(platform: RunningPlatform) -> None:
    # Given a json_mapping connection
    tenant = await platform.new_tenant()
    _, connection = await open_mapping(platform, tenant)

    # When a body signed with another secret arrives
    body = json.dumps(SAMPLE).encode()
    wrong = hmac.new(b"another-secret-0123456789", body, hashlib.sha256).hexdigest()
    response = await platform.client.post(
        webhook_path(connection), content=body, headers={"X-Signature": wrong}
    )

    # Then it is a 401
    assert response.status_code == 401
