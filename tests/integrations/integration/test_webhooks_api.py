"""Partner webhooks end to end on the all-in-one platform: connection, signed intake, inbound log, orders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from tests.platform import RunningPlatform, Tenant

from doorstep.integrations.adapters.platforms.doorstep_json import sign_doorstep_payload
from doorstep.integrations.adapters.platforms.shopify import sign_shopify_payload
from doorstep.integrations.adapters.tables import inbound_deliveries, order_links
from doorstep.kernel.errors import PROBLEM_BASE

FIXTURES = Path(__file__).parent.parent / "fixtures"
SHOPIFY_SECRET = "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"
DOORSTEP_SECRET = "whsec_integration_tests_only_0123456789"
SHOPIFY_ORDER_ID = "5981237460291"
SHOPIFY_JPY_ORDER_ID = "6102938475610"
PICKUP: dict[str, Any] = {
    "name": "Bäckerei Morgenrot",
    "address": "Kastanienallee 12, 10435 Berlin, Germany",
    "phone": "+49 30 4401234",
    "location": {"lat": 52.5376, "lon": 13.4083},
}
SHOPIFY_SETTINGS: dict[str, Any] = {"merchant_id": "mer_01JC8Z4W6Q9R2T5Y7U1I3O5P7A", "pickup": PICKUP}
PROBLEM_JSON = "application/problem+json"
API_ORDER: dict[str, Any] = {
    "external_id": "A-1",
    "pickup": PICKUP,
    "dropoff": {
        "name": "Lena",
        "address": "Skalitzer Straße 3, Berlin",
        "location": {"lat": 52.49, "lon": 13.43},
    },
    "customer": {"name": "Lena Müller"},
    "items": [{"name": "Currywurst", "quantity": 2, "unit_price": 450}],
    "currency": "EUR",
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(fixture_bytes(name))
    return loaded


def webhook_path(connection: dict[str, Any]) -> str:
    url: str = connection["webhook_url"]
    return urlsplit(url).path


async def open_connection(
    platform: RunningPlatform,
    tenant: Tenant,
    platform_name: str = "shopify",
    settings: dict[str, Any] | None = None,
    secret: str = SHOPIFY_SECRET,
) -> dict[str, Any]:
    response = await platform.client.post(
        "/v1/integrations/connections",
        json={
            "platform": platform_name,
            "settings": SHOPIFY_SETTINGS if settings is None else settings,
            "secret": secret,
        },
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    connection: dict[str, Any] = response.json()
    return connection


async def send_shopify(
    platform: RunningPlatform,
    connection: dict[str, Any],
    body: bytes,
    *,
    webhook_id: str,
    secret: str = SHOPIFY_SECRET,
    path: str | None = None,
) -> httpx.Response:
    return await platform.client.post(
        path or webhook_path(connection),
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Hmac-Sha256": sign_shopify_payload(body, secret),
        },
    )


async def send_doorstep(
    platform: RunningPlatform, connection: dict[str, Any], body: bytes, *, delivery_id: str
) -> httpx.Response:
    return await platform.client.post(
        webhook_path(connection),
        content=body,
        headers={
            "Content-Type": "application/json",
            "Doorstep-Delivery-Id": delivery_id,
            "Doorstep-Signature": sign_doorstep_payload(body, DOORSTEP_SECRET),
        },
    )


async def orders_of(platform: RunningPlatform, tenant: Tenant) -> list[dict[str, Any]]:
    response = await platform.client.get("/v1/orders", headers=tenant.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def inbound_of(platform: RunningPlatform, tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    response = await platform.client.get("/v1/integrations/inbound", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def without_coordinates(order: dict[str, Any]) -> bytes:
    order["shipping_address"].pop("latitude")
    order["shipping_address"].pop("longitude")
    return json.dumps(order).encode()


# --- connections ----------------------------------------------------------------------------------


async def test_opening_a_shopify_connection_returns_its_webhook_url_and_secret(
    platform: RunningPlatform,
) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it connects Shopify with the shop's location and the app's secret
    connection = await open_connection(platform, tenant)

    # Then the webhook URL lies under the public URL and carries the platform, and the secret is echoed
    assert connection["platform"] == "shopify"
    assert connection["settings"] == SHOPIFY_SETTINGS
    assert connection["secret"] == SHOPIFY_SECRET
    prefix = "http://testserver/v1/integrations/webhooks/shopify/"
    assert connection["webhook_url"].startswith(prefix)
    assert len(connection["webhook_url"].removeprefix(prefix)) >= 32
    # And the list shows the connection without its secret
    listed = await platform.client.get("/v1/integrations/connections", headers=tenant.headers)
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["connection_id"] == connection["connection_id"]
    assert item["webhook_url"] == connection["webhook_url"]
    assert "secret" not in item
    assert SHOPIFY_SECRET not in listed.text


async def test_a_connection_without_a_secret_gets_a_generated_one(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it connects the Doorstep format without giving a secret
    response = await platform.client.post(
        "/v1/integrations/connections", json={"platform": "doorstep"}, headers=tenant.headers
    )

    # Then a secret is generated for it
    assert response.status_code == 201
    assert response.json()["secret"].startswith("whsec_")


async def test_a_shopify_connection_without_a_pickup_is_a_422_naming_settings_pickup(
    platform: RunningPlatform,
) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it connects Shopify without the shop's location
    response = await platform.client.post(
        "/v1/integrations/connections",
        json={"platform": "shopify", "settings": {"merchant_id": "m-1"}, "secret": SHOPIFY_SECRET},
        headers=tenant.headers,
    )

    # Then the problem names settings.pickup and no connection exists
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == PROBLEM_BASE + "invalid-connection-settings"
    assert [error["field"] for error in problem["errors"]] == ["settings.pickup"]
    listed = await platform.client.get("/v1/integrations/connections", headers=tenant.headers)
    assert listed.json()["items"] == []


async def test_an_invalid_pickup_names_the_bad_part_of_it(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When its pickup stop has a latitude beyond the pole
    bad_pickup = {**PICKUP, "location": {"lat": 123, "lon": 13.4}}
    response = await platform.client.post(
        "/v1/integrations/connections",
        json={"platform": "shopify", "settings": {"pickup": bad_pickup}, "secret": SHOPIFY_SECRET},
        headers=tenant.headers,
    )

    # Then the problem names the latitude inside settings.pickup
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["settings.pickup.location.lat"]


async def test_an_unknown_platform_is_a_422_naming_platform(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it connects a platform Doorstep has no adapter for
    response = await platform.client.post(
        "/v1/integrations/connections",
        json={"platform": "magento", "settings": {"pickup": PICKUP}},
        headers=tenant.headers,
    )

    # Then the problem names the platform field
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == PROBLEM_BASE + "unsupported-platform"
    assert [error["field"] for error in problem["errors"]] == ["platform"]


# --- intake ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing X-Shopify-Hmac-Sha256 header"),
        ({"X-Shopify-Hmac-Sha256": "not base64!"}, "malformed X-Shopify-Hmac-Sha256 header: not base64"),
        (
            {"X-Shopify-Hmac-Sha256": sign_shopify_payload(b"another body", SHOPIFY_SECRET)},
            "X-Shopify-Hmac-Sha256 does not match the body",
        ),
        (
            {
                "X-Shopify-Hmac-Sha256": sign_shopify_payload(
                    fixture_bytes("shopify_orders_create.json"), "x" * 32
                )
            },
            "X-Shopify-Hmac-Sha256 does not match the body",
        ),
    ],
    ids=["missing", "malformed", "other-body", "other-secret"],
)
async def test_a_delivery_without_a_valid_signature_is_refused_and_nothing_is_stored(
    platform: RunningPlatform, headers: dict[str, str], detail: str
) -> None:
    # Given a Shopify connection
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)

    # When an order arrives without a signature that verifies
    response = await platform.client.post(
        webhook_path(connection),
        content=fixture_bytes("shopify_orders_create.json"),
        headers={"Content-Type": "application/json", "X-Shopify-Webhook-Id": "wh-1", **headers},
    )

    # Then it is a 401 problem that says why
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == PROBLEM_BASE + "webhook-signature-invalid"
    assert problem["detail"] == detail
    # And nothing was logged and no order was made
    await platform.settle()
    assert await inbound_of(platform, tenant) == []
    assert await orders_of(platform, tenant) == []


async def test_a_signed_shopify_order_becomes_one_order_of_the_connections_tenant(
    platform: RunningPlatform,
) -> None:
    # Given a Shopify connection of tenant A, and another tenant B
    tenant_a = await platform.new_tenant("A")
    tenant_b = await platform.new_tenant("B")
    connection = await open_connection(platform, tenant_a)

    # When Shopify delivers a signed orders/create webhook
    response = await send_shopify(
        platform, connection, fixture_bytes("shopify_orders_create.json"), webhook_id="wh-1"
    )

    # Then it is accepted as mapped
    assert response.status_code == 202
    receipt = response.json()
    assert set(receipt) == {"delivery_id", "status", "duplicate"}
    assert receipt["status"] == "mapped"
    assert receipt["duplicate"] is False
    # And once the events have flowed, tenant A has exactly that order, placed by the connection
    await platform.settle()
    [order] = await orders_of(platform, tenant_a)
    assert order["source"] == "shopify"
    assert order["external_id"] == SHOPIFY_ORDER_ID
    assert order["merchant_id"] == SHOPIFY_SETTINGS["merchant_id"]
    assert order["pickup"]["name"] == PICKUP["name"]
    assert order["dropoff"]["location"] == {"lat": 52.5439061, "lon": 13.4138419}
    assert order["status"] == "placed"
    detail = await platform.client.get(f"/v1/orders/{order['id']}", headers=tenant_a.headers)
    assert detail.json()["status_history"][0]["actor"] == f"connection:{connection['connection_id']}"
    # And tenant B has none
    assert await orders_of(platform, tenant_b) == []
    # And the inbound log holds the delivery as mapped
    [delivery] = await inbound_of(platform, tenant_a)
    assert delivery["id"] == receipt["delivery_id"]
    assert delivery["connection_id"] == connection["connection_id"]
    assert delivery["platform"] == "shopify"
    assert delivery["platform_delivery_id"] == "wh-1"
    assert delivery["status"] == "mapped"
    assert delivery["external_id"] == SHOPIFY_ORDER_ID
    assert delivery["failure_field"] is None
    assert delivery["failure_reason"] is None
    assert delivery["attempts"] == 1


async def test_the_inbound_detail_keeps_the_raw_body_but_not_the_callers_credentials(
    platform: RunningPlatform,
) -> None:
    # Given a Shopify connection
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)
    body = fixture_bytes("shopify_orders_create.json")

    # When a signed delivery arrives that also carries an Authorization header
    response = await platform.client.post(
        webhook_path(connection),
        content=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer should-not-be-kept",
            "X-Shopify-Webhook-Id": "wh-1",
            "X-Shopify-Hmac-Sha256": sign_shopify_payload(body, SHOPIFY_SECRET),
        },
    )
    assert response.status_code == 202

    # Then its detail shows the body byte for byte and the platform's headers, without Authorization
    detail = await platform.client.get(
        f"/v1/integrations/inbound/{response.json()['delivery_id']}", headers=tenant.headers
    )
    assert detail.status_code == 200
    logged = detail.json()
    assert logged["body"] == body.decode()
    assert logged["headers"]["x-shopify-webhook-id"] == "wh-1"
    assert "authorization" not in logged["headers"]


async def test_a_redelivery_with_the_same_webhook_id_is_answered_as_a_duplicate(
    platform: RunningPlatform,
) -> None:
    # Given a Shopify order that was delivered and turned into an order
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)
    body = fixture_bytes("shopify_orders_create.json")
    first = (await send_shopify(platform, connection, body, webhook_id="wh-1")).json()
    await platform.settle()

    # When Shopify retries the same delivery
    again = await send_shopify(platform, connection, body, webhook_id="wh-1")

    # Then it is answered with the first receipt, marked duplicate
    assert again.status_code == 202
    assert again.json() == {"delivery_id": first["delivery_id"], "status": "mapped", "duplicate": True}
    # And there is still one delivery and one order
    await platform.settle()
    assert [d["id"] for d in await inbound_of(platform, tenant)] == [first["delivery_id"]]
    [order] = await orders_of(platform, tenant)
    assert order["external_id"] == SHOPIFY_ORDER_ID


async def test_the_same_order_under_a_new_webhook_id_is_still_one_order(platform: RunningPlatform) -> None:
    # Given a Shopify order that was delivered and turned into an order
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)
    body = fixture_bytes("shopify_orders_create.json")
    first = (await send_shopify(platform, connection, body, webhook_id="wh-1")).json()
    await platform.settle()

    # When the platform sends the same order again as a new delivery
    second = await send_shopify(platform, connection, body, webhook_id="wh-2")

    # Then the new delivery is logged and mapped on its own
    assert second.status_code == 202
    receipt = second.json()
    assert receipt["delivery_id"] != first["delivery_id"]
    assert receipt["status"] == "mapped"
    assert receipt["duplicate"] is False
    # But the orders service keeps one order for the Shopify id
    await platform.settle()
    assert len(await inbound_of(platform, tenant)) == 2
    [order] = await orders_of(platform, tenant)
    assert order["external_id"] == SHOPIFY_ORDER_ID


async def test_credentials_in_a_connection_s_settings_are_never_shown_again(
    platform: RunningPlatform,
) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    settings = {
        **SHOPIFY_SETTINGS,
        "access_token": "shpat_secret_0123",
        "api": {"consumer_secret": "cs_secret_4567", "base_url": "https://shop.example"},
    }

    # When it connects a platform with an API token and a nested consumer secret in its settings
    opened = await open_connection(platform, tenant, settings=settings)
    listed = await platform.client.get("/v1/integrations/connections", headers=tenant.headers)
    await platform.settle()
    audit = await platform.client.get(
        "/v1/identity/audit", params={"action": "connection.opened"}, headers=tenant.headers
    )

    # Then the answers and the audit log show that they are set, never what they are
    shown = {
        **SHOPIFY_SETTINGS,
        "access_token": "***",
        "api": {"consumer_secret": "***", "base_url": "https://shop.example"},
    }
    assert opened["settings"] == shown
    assert listed.json()["items"][0]["settings"] == shown
    [entry] = audit.json()["items"]
    assert entry["after"]["settings"] == shown
    assert "secret_0123" not in listed.text + audit.text
    assert "secret_4567" not in listed.text + audit.text


async def test_an_order_without_coordinates_is_kept_and_waits_for_a_dispatcher(
    platform: RunningPlatform,
) -> None:
    # Given a Shopify connection
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)

    # When an authentic order arrives whose shipping address has no coordinates
    response = await send_shopify(
        platform,
        connection,
        without_coordinates(fixture_json("shopify_orders_create.json")),
        webhook_id="wh-1",
    )

    # Then it is accepted and mapped: the address alone is enough, nothing is dropped
    assert response.status_code == 202
    receipt = response.json()
    assert (receipt["status"], receipt["duplicate"]) == ("mapped", False)
    assert await inbound_of(platform, tenant, status="failed") == []
    [mapped] = await inbound_of(platform, tenant, status="mapped")
    assert (mapped["id"], mapped["external_id"]) == (receipt["delivery_id"], SHOPIFY_ORDER_ID)
    # And the order exists, its drop-off without a location, waiting for a dispatcher
    await platform.settle()
    [order] = await orders_of(platform, tenant)
    assert (order["source"], order["external_id"]) == ("shopify", SHOPIFY_ORDER_ID)
    assert order["status"] == "needs_attention"
    assert order["dropoff"]["location"] is None


async def test_an_order_without_coordinates_at_an_address_the_geocoder_knows_is_placed_located(
    platform: RunningPlatform,
) -> None:
    # Given a Shopify connection, and a shipping address the (offline) geocoder knows
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)
    order = fixture_json("shopify_orders_create.json")
    order["shipping_address"]["address1"] = "Torstraße 110"

    # When the order arrives without coordinates
    response = await send_shopify(platform, connection, without_coordinates(order), webhook_id="wh-1")

    # Then the order is placed with the geocoded drop-off
    assert response.status_code == 202
    await platform.settle()
    [placed] = await orders_of(platform, tenant)
    assert placed["status"] == "placed"
    assert placed["dropoff"]["address"].startswith("Torstraße 110, ")
    assert placed["dropoff"]["location"] is not None


async def test_a_body_that_is_not_json_is_logged_as_failed(platform: RunningPlatform) -> None:
    # Given a Shopify connection
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)

    # When a signed body that is not JSON arrives
    response = await send_shopify(platform, connection, b"<order/>", webhook_id="wh-1")

    # Then it is recorded as failed without a field
    assert response.status_code == 202
    assert response.json()["status"] == "failed"
    [failed] = await inbound_of(platform, tenant, status="failed")
    assert failed["failure_field"] is None
    assert failed["failure_reason"].startswith("the body is not JSON")


async def test_replaying_a_failed_delivery_maps_it_again_and_counts_the_attempt(
    platform: RunningPlatform,
) -> None:
    # Given a Doorstep-format connection and a delivery that lacks the customer
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant, "doorstep", settings={}, secret=DOORSTEP_SECRET)
    draft = fixture_json("doorstep_order.json")
    del draft["customer"]
    response = await send_doorstep(platform, connection, json.dumps(draft).encode(), delivery_id="d-1")
    assert response.status_code == 202
    receipt = response.json()
    assert receipt["status"] == "failed"
    [failed] = await inbound_of(platform, tenant, status="failed")
    assert failed["failure_field"] == "customer"

    # When the delivery is replayed
    replayed = await platform.client.post(
        f"/v1/integrations/inbound/{receipt['delivery_id']}/replay", headers=tenant.headers
    )

    # Then it was mapped again: still failed for the same field, now on its second attempt
    assert replayed.status_code == 200
    body = replayed.json()
    assert body["id"] == receipt["delivery_id"]
    assert body["status"] == "failed"
    assert body["failure_field"] == "customer"
    assert body["attempts"] == 2
    [logged] = await inbound_of(platform, tenant)
    assert logged["attempts"] == 2
    await platform.settle()
    assert await orders_of(platform, tenant) == []


async def test_replaying_a_mapped_delivery_does_not_make_a_second_order(platform: RunningPlatform) -> None:
    # Given a Doorstep-format delivery that became an order
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant, "doorstep", settings={}, secret=DOORSTEP_SECRET)
    response = await send_doorstep(
        platform, connection, fixture_bytes("doorstep_order.json"), delivery_id="d-1"
    )
    assert response.json()["status"] == "mapped"
    await platform.settle()
    [order] = await orders_of(platform, tenant)
    assert order["source"] == "doorstep"
    assert order["external_id"] == "web-2024-000731"

    # When the delivery is replayed
    replayed = await platform.client.post(
        f"/v1/integrations/inbound/{response.json()['delivery_id']}/replay", headers=tenant.headers
    )

    # Then it is mapped again on a second attempt, but the order is not placed twice
    assert replayed.status_code == 200
    assert replayed.json()["status"] == "mapped"
    assert replayed.json()["attempts"] == 2
    await platform.settle()
    assert [o["id"] for o in await orders_of(platform, tenant)] == [order["id"]]


async def test_replaying_an_unknown_delivery_is_a_404(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it replays a delivery id that does not exist
    response = await platform.client.post(
        "/v1/integrations/inbound/no-such-id/replay", headers=tenant.headers
    )

    # Then it is a 404 problem
    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM_BASE + "inbound-delivery-not-found"


async def test_a_wrong_token_or_another_platforms_url_is_a_404_and_stores_nothing(
    platform: RunningPlatform,
) -> None:
    # Given a Shopify connection
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)
    body = fixture_bytes("shopify_orders_create.json")
    token = webhook_path(connection).rsplit("/", 1)[1]

    # When correctly signed deliveries go to a made-up token, and to the Doorstep URL with its token
    wrong_token = await send_shopify(
        platform, connection, body, webhook_id="wh-1", path="/v1/integrations/webhooks/shopify/not-a-token"
    )
    other_platform = await send_shopify(
        platform, connection, body, webhook_id="wh-2", path=f"/v1/integrations/webhooks/doorstep/{token}"
    )

    # Then both are 404 problems and nothing was stored
    for response in (wrong_token, other_platform):
        assert response.status_code == 404
        assert response.json()["type"] == PROBLEM_BASE + "connection-not-found"
    await platform.settle()
    assert await inbound_of(platform, tenant) == []
    assert await orders_of(platform, tenant) == []


async def test_another_tenant_can_neither_see_nor_replay_the_deliveries(platform: RunningPlatform) -> None:
    # Given tenant A with a logged delivery, and tenant B
    tenant_a = await platform.new_tenant("A")
    tenant_b = await platform.new_tenant("B")
    connection = await open_connection(platform, tenant_a)
    response = await send_shopify(
        platform, connection, fixture_bytes("shopify_orders_create.json"), webhook_id="wh-1"
    )
    delivery_id = response.json()["delivery_id"]

    # When B lists, reads and replays A's delivery
    listed = await inbound_of(platform, tenant_b)
    read = await platform.client.get(f"/v1/integrations/inbound/{delivery_id}", headers=tenant_b.headers)
    replayed = await platform.client.post(
        f"/v1/integrations/inbound/{delivery_id}/replay", headers=tenant_b.headers
    )

    # Then B sees nothing and gets 404 for the rest, while A still reads it on its first attempt
    assert listed == []
    assert read.status_code == 404
    assert read.json()["type"] == PROBLEM_BASE + "inbound-delivery-not-found"
    assert replayed.status_code == 404
    own = await platform.client.get(f"/v1/integrations/inbound/{delivery_id}", headers=tenant_a.headers)
    assert own.status_code == 200
    assert own.json()["attempts"] == 1
    # And B's connection list is empty
    connections_b = await platform.client.get("/v1/integrations/connections", headers=tenant_b.headers)
    assert connections_b.json()["items"] == []


async def test_the_inbound_log_is_paged_newest_first(platform: RunningPlatform) -> None:
    # Given three deliveries
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)
    body = fixture_bytes("shopify_orders_create.json")
    ids = [
        (await send_shopify(platform, connection, body, webhook_id=f"wh-{n}")).json()["delivery_id"]
        for n in range(3)
    ]

    # When the log is read two at a time
    first = await platform.client.get("/v1/integrations/inbound", params={"limit": 2}, headers=tenant.headers)
    cursor = first.json()["next_cursor"]
    second = await platform.client.get(
        "/v1/integrations/inbound", params={"limit": 2, "cursor": cursor}, headers=tenant.headers
    )

    # Then the pages hold all three, newest first, and the last page has no cursor
    assert [d["id"] for d in first.json()["items"]] + [d["id"] for d in second.json()["items"]] == ids[::-1]
    assert second.json()["next_cursor"] is None


async def test_order_links_are_kept_for_platform_orders_and_not_for_api_orders(
    platform: RunningPlatform,
) -> None:
    # Given a Shopify connection
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)

    # When two Shopify orders arrive by webhook and one order is placed over the API
    for name, webhook_id in (
        ("shopify_orders_create.json", "wh-1"),
        ("shopify_orders_create_jpy.json", "wh-2"),
    ):
        response = await send_shopify(platform, connection, fixture_bytes(name), webhook_id=webhook_id)
        assert response.json()["status"] == "mapped"
    placed = await platform.client.post("/v1/orders", json=API_ORDER, headers=tenant.headers)
    assert placed.status_code == 201
    await platform.settle()

    # Then integrations links exactly the two Shopify orders to their Shopify ids
    orders = {(o["source"], o["external_id"]): o["id"] for o in await orders_of(platform, tenant)}
    assert set(orders) == {("shopify", SHOPIFY_ORDER_ID), ("shopify", SHOPIFY_JPY_ORDER_ID), ("api", "A-1")}
    database = platform.services["integrations"].database
    async with database.reader() as session:
        rows = (
            await session.execute(
                select(
                    order_links.c.order_id,
                    order_links.c.tenant_id,
                    order_links.c.source,
                    order_links.c.external_id,
                )
            )
        ).all()
    assert sorted(tuple(row) for row in rows) == sorted(
        [
            (orders["shopify", SHOPIFY_ORDER_ID], tenant.tenant_id, "shopify", SHOPIFY_ORDER_ID),
            (orders["shopify", SHOPIFY_JPY_ORDER_ID], tenant.tenant_id, "shopify", SHOPIFY_JPY_ORDER_ID),
        ]
    )
    # And the deliveries are stored under the connection's tenant
    async with database.reader() as session:
        tenants = (await session.execute(select(inbound_deliveries.c.tenant_id))).scalars().all()
    assert tenants == [tenant.tenant_id, tenant.tenant_id]
