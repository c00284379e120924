"""Every platform's sample deliveries, redelivered and shuffled, end where one ordered delivery ends."""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.integrations.partners import PartnerApi, partner_api
from tests.platform import LOCAL_NETWORKS, RunningPlatform, Tenant, running_platform, settings_for

from doorstep.integrations.adapters.platforms.doordash_drive import sign_drive_jwt
from doorstep.integrations.adapters.platforms.drafts import sign_base64
from doorstep.integrations.adapters.platforms.ubereats import sign_uber_payload

FIXTURES = Path(__file__).parent.parent / "fixtures"
SECRET = "shuffled-redelivery-secret-0123456789abcdefg"
PICKUP = {
    "name": "Bäckerei Morgenrot",
    "address": "Kastanienallee 12, 10435 Berlin",
    "location": {"lat": 52.5376, "lon": 13.4083},
}


@dataclass(frozen=True)
class Delivery:
    platform: str
    delivery_id: str
    body: bytes
    headers: dict[str, str]


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def shopify_deliveries() -> list[Delivery]:
    created = _fixture("shopify_orders_create.json")
    updated = copy.deepcopy(created)
    updated["updated_at"] = "2030-01-01T10:00:00+01:00"
    updated["note"] = "Ring twice"
    cancelled = copy.deepcopy(updated)
    cancelled["updated_at"] = "2030-01-01T11:00:00+01:00"
    cancelled["cancelled_at"] = "2030-01-01T11:00:00+01:00"
    cancelled["note"] = "Customer changed their mind"
    out = []
    for n, (topic, body) in enumerate(
        [("orders/create", created), ("orders/updated", updated), ("orders/cancelled", cancelled)]
    ):
        raw = json.dumps(body).encode()
        headers = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": f"shopify-{n}",
            "X-Shopify-Hmac-Sha256": sign_base64(raw, SECRET),
        }
        out.append(Delivery("shopify", f"shopify-{n}", raw, headers))
    return out


def woocommerce_deliveries() -> list[Delivery]:
    created = _fixture("woocommerce_order_created.json")
    updated = copy.deepcopy(created)
    updated["date_modified_gmt"] = "2026-11-20T11:20:00"
    updated["customer_note"] = "Klingeln bei Müller"
    cancelled = copy.deepcopy(updated)
    cancelled["date_modified_gmt"] = "2026-11-20T11:40:00"
    cancelled["status"] = "cancelled"
    cancelled["customer_note"] = "Storniert vom Kunden"
    # A second order that ends updated, not cancelled: an older update arriving late must not win.
    second = copy.deepcopy(created)
    second["id"] = 728
    second_first_edit = copy.deepcopy(second)
    second_first_edit["date_modified_gmt"] = "2026-11-20T11:10:00"
    second_first_edit["customer_note"] = "Erste Änderung"
    second_last_edit = copy.deepcopy(second)
    second_last_edit["date_modified_gmt"] = "2026-11-20T11:30:00"
    second_last_edit["customer_note"] = "Letzte Änderung"
    out = []
    for n, (topic, body) in enumerate(
        [
            ("order.created", created),
            ("order.updated", updated),
            ("order.updated", cancelled),
            ("order.created", second),
            ("order.updated", second_first_edit),
            ("order.updated", second_last_edit),
        ]
    ):
        raw = json.dumps(body).encode()
        headers = {
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Delivery-ID": f"woo-{n}",
            "X-WC-Webhook-Signature": sign_base64(raw, SECRET),
        }
        out.append(Delivery("woocommerce", f"woo-{n}", raw, headers))
    return out


def drive_deliveries() -> list[Delivery]:
    raw = (FIXTURES / "doordash_drive_delivery.json").read_bytes()
    token = sign_drive_jwt(secret=SECRET, developer_id="dev-1", key_id="key-1", now=int(time.time()))
    return [Delivery("doordash_drive", "drive-0", raw, {"Authorization": f"Bearer {token}"})]


SQUARE_URL = "https://doorstep.example.com/v1/integrations/webhooks/square"
SQUARE_ORDER = "eA3vssLHKJrv9H0IdJCM3gNqfdcZY"
UBER_ORDER = "153dd7f1-339d-4619-940c-418943c14636"


def square_deliveries() -> list[Delivery]:
    """Square only says which order changed: the final state is what its API returns (see `_partner`)."""
    created = _fixture("square_order_created.json")
    updated = _fixture("square_order_updated.json")
    cancelled = copy.deepcopy(updated)
    cancelled["event_id"] = "5c9e6d02-2b4d-4d0f-a1f1-3b5d4d2e3f8a"
    cancelled["data"]["object"]["order_updated"] |= {"state": "CANCELED", "version": 4}
    out = []
    for n, body in enumerate([created, updated, cancelled]):
        raw = json.dumps(body).encode()
        headers = {"X-Square-HmacSha256-Signature": sign_base64(SQUARE_URL.encode() + raw, SECRET)}
        out.append(Delivery("square", f"square-{n}", raw, headers))
    return out


def ubereats_deliveries() -> list[Delivery]:
    out = []
    for n, name in enumerate(["ubereats_orders_notification.json", "ubereats_orders_cancel.json"]):
        raw = (FIXTURES / name).read_bytes()
        out.append(
            Delivery("ubereats", f"uber-{n}", raw, {"X-Uber-Signature": sign_uber_payload(raw, SECRET)})
        )
    return out


def _partner(api: PartnerApi) -> None:
    """The platforms' APIs answer with each order as it is now: Square's cancelled at version 4, Uber's
    cancelled (an order fetched for a late notification is fetched as it is now, as on the real APIs)."""
    order = copy.deepcopy(_fixture("square_retrieve_order.json")["order"])
    order |= {"state": "CANCELED", "version": 4}
    api.square_orders[SQUARE_ORDER] = order
    api.uber_orders[UBER_ORDER] = _fixture("ubereats_order.json") | {"current_state": "CANCELED"}
    api.uber_client_id = "uber-client-id"
    api.uber_client_secret = SECRET


def _settings(api: PartnerApi) -> dict[str, dict[str, Any]]:
    return {
        "shopify": {"pickup": PICKUP},
        "woocommerce": {"pickup": PICKUP},
        "doordash_drive": {"developer_id": "dev-1", "key_id": "key-1"},
        "square": {
            "pickup": PICKUP,
            "notification_url": SQUARE_URL,
            "access_token": api.square_token,
            "api_base_url": api.base_url,
        },
        "ubereats": {
            "pickup": PICKUP,
            "client_id": api.uber_client_id,
            "api_base_url": api.base_url,
            "token_url": f"{api.base_url}/oauth/v2/token",
        },
    }


async def _connect(platform: RunningPlatform, tenant: Tenant, api: PartnerApi) -> dict[str, str]:
    paths = {}
    for name, settings in _settings(api).items():
        response = await platform.client.post(
            "/v1/integrations/connections",
            json={"platform": name, "settings": settings, "secret": SECRET},
            headers=tenant.headers,
        )
        assert response.status_code == 201, response.text
        paths[name] = response.json()["webhook_url"].removeprefix("http://testserver")
    return paths


async def _final_orders(deliveries: list[Delivery], tmp_path: Path) -> list[tuple[Any, ...]]:
    async with (
        partner_api() as api,
        running_platform(settings_for(tmp_path, webhooks_allowed_networks=LOCAL_NETWORKS)) as platform,
    ):
        _partner(api)
        tenant = await platform.new_tenant()
        paths = await _connect(platform, tenant, api)
        for delivery in deliveries:
            response = await platform.client.post(
                paths[delivery.platform],
                content=delivery.body,
                headers={"Content-Type": "application/json", **delivery.headers},
            )
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "mapped", response.text
            # Each delivery reaches the orders service before the next one arrives, as webhooks do.
            await platform.settle()
        listed = await platform.client.get("/v1/orders", headers=tenant.headers)
        assert listed.status_code == 200
        return sorted(
            (o["source"], o["external_id"], o["status"], o.get("notes"), o["totals"]["total"])
            for o in listed.json()["items"]
        )


def _all_deliveries() -> list[Delivery]:
    return [
        *shopify_deliveries(),
        *woocommerce_deliveries(),
        *drive_deliveries(),
        *square_deliveries(),
        *ubereats_deliveries(),
    ]


pytestmark = pytest.mark.integration


async def test_one_ordered_delivery_ends_with_the_platforms_final_states(tmp_path: Path) -> None:
    # Given every platform's deliveries, in order, once
    # When they arrive
    final = await _final_orders(_all_deliveries(), tmp_path)

    # Then each platform order exists once, in the state its last change says
    assert [(source, external_id, status, notes) for source, external_id, status, notes, _ in final] == [
        (
            "doordash_drive",
            "D-1763-ÄÖÜ",
            "placed",
            "pickup: Enter gate code 1234 on the callbox.; "
            "dropoff: Enter gate code 1234 on the callbox.; pickup at 2026-11-20T18:00:00Z",
        ),
        (
            "shopify",
            str(_fixture("shopify_orders_create.json")["id"]),
            "cancelled",
            "Customer changed their mind",
        ),
        ("square", SQUARE_ORDER, "cancelled", "Leave with the front desk"),
        ("ubereats", UBER_ORDER, "cancelled", "Bitte nicht klingeln, Baby schläft; Extra Servietten"),
        ("woocommerce", "727", "cancelled", "Storniert vom Kunden"),
        ("woocommerce", "728", "needs_attention", "Letzte Änderung"),
    ]


@pytest.mark.parametrize("seed", [1, 7, 42, 2026])
async def test_shuffled_redeliveries_end_like_one_ordered_delivery(tmp_path: Path, seed: int) -> None:
    # Given the final orders of one ordered delivery
    expected = await _final_orders(_all_deliveries(), tmp_path / "ordered")
    # And the same deliveries, each sent 1 to 5 times, shuffled
    rng = random.Random(seed)
    shuffled = [d for d in _all_deliveries() for _ in range(rng.randint(1, 5))]
    rng.shuffle(shuffled)

    # When they arrive in that order
    final = await _final_orders(shuffled, tmp_path / "shuffled")

    # Then the orders and their statuses, notes and totals are the same
    assert final == expected
