"""Square and Uber Eats notifications only point at the order: it is fetched from a local server that
speaks their documented APIs, through the real `HttpxPlatformClient`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.integrations.partners import PartnerApi, partner_api
from tests.platform import LOCAL_NETWORKS, running_platform, settings_for

from doorstep.integrations.adapters.platforms.drafts import sign_base64
from doorstep.integrations.adapters.platforms.http_client import HttpxPlatformClient
from doorstep.integrations.adapters.platforms.square import SQUARE_VERSION, SquareAdapter
from doorstep.integrations.adapters.platforms.ubereats import UberEatsAdapter
from doorstep.integrations.outbound.ssrf import parse_networks
from doorstep.integrations.ports import FetchFailed, OrderChange

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures"
SECRET = "fetching-platforms-secret-0123456789"
LOCAL = parse_networks(LOCAL_NETWORKS)
SQUARE_URL = "https://doorstep.example.com/hooks/square"
SQUARE_ORDER = "eA3vssLHKJrv9H0IdJCM3gNqfdcZY"
UBER_ORDER = "153dd7f1-339d-4619-940c-418943c14636"
PICKUP = {"name": "Bäckerei Morgenrot", "address": "Kastanienallee 12, 10435 Berlin"}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def square_settings(api: PartnerApi) -> dict[str, Any]:
    return {
        "pickup": PICKUP,
        "notification_url": SQUARE_URL,
        "access_token": api.square_token,
        "api_base_url": api.base_url,
    }


def uber_settings(api: PartnerApi) -> dict[str, Any]:
    return {
        "pickup": PICKUP,
        "client_id": api.uber_client_id,
        "api_base_url": api.base_url,
        "token_url": f"{api.base_url}/oauth/v2/token",
    }


async def test_square_fetches_the_order_with_its_bearer_token_and_api_version() -> None:
    async with partner_api() as api:
        # Given Square's Orders API holding the order
        api.square_orders[SQUARE_ORDER] = fixture("square_retrieve_order.json")["order"]
        client = HttpxPlatformClient(allowed=LOCAL)
        adapter = SquareAdapter()

        # When an order.updated notification is fetched and mapped
        payload = await adapter.fetch(
            fixture("square_order_updated.json"), settings=square_settings(api), secret=SECRET, client=client
        )
        await client.close()
        mapped = adapter.map_order(payload, settings=square_settings(api))

    # Then RetrieveOrder was called as documented, and the fetched order is what is mapped
    [(method, path, headers, _)] = api.requests
    assert (method, path) == ("GET", f"/v2/orders/{SQUARE_ORDER}")
    assert headers["Authorization"] == f"Bearer {api.square_token}"
    assert headers["Square-Version"] == SQUARE_VERSION
    assert (mapped.external_id, mapped.change, mapped.version) == (SQUARE_ORDER, OrderChange.UPDATED, 3)


async def test_square_refusing_the_token_is_a_failed_fetch() -> None:
    async with partner_api() as api:
        # Given a connection whose access token Square no longer accepts
        settings = square_settings(api) | {"access_token": "revoked"}
        client = HttpxPlatformClient(allowed=LOCAL)

        # When the notification is fetched
        # Then the fetch fails with Square's answer
        with pytest.raises(FetchFailed, match="answered 401"):
            await SquareAdapter().fetch(
                fixture("square_order_created.json"), settings=settings, secret=SECRET, client=client
            )
        await client.close()


async def test_a_square_notification_while_the_api_is_down_is_kept_and_replay_fetches_it(
    tmp_path: Path,
) -> None:
    async with (
        partner_api() as api,
        running_platform(settings_for(tmp_path, webhooks_allowed_networks=LOCAL_NETWORKS)) as platform,
    ):
        # Given a Square connection, and Square's API down
        tenant = await platform.new_tenant()
        opened = await platform.client.post(
            "/v1/integrations/connections",
            json={"platform": "square", "settings": square_settings(api), "secret": SECRET},
            headers=tenant.headers,
        )
        assert opened.status_code == 201, opened.text
        path = opened.json()["webhook_url"].removeprefix("http://testserver")
        api.square_orders[SQUARE_ORDER] = fixture("square_retrieve_order.json")["order"]
        api.down = True

        # When a signed notification arrives
        body = json.dumps(fixture("square_order_created.json")).encode()
        signature = sign_base64(SQUARE_URL.encode() + body, SECRET)
        received = await platform.client.post(
            path, content=body, headers={"X-Square-HmacSha256-Signature": signature}
        )

        # Then it is accepted and kept failed with the reason, and no order exists
        assert received.status_code == 202, received.text
        delivery_id = received.json()["delivery_id"]
        assert received.json()["status"] == "failed"
        logged = await platform.client.get(f"/v1/integrations/inbound/{delivery_id}", headers=tenant.headers)
        assert logged.json()["failure_reason"].startswith("fetching the order from square failed:")
        assert "answered 503" in logged.json()["failure_reason"]
        await platform.settle()
        assert (await platform.client.get("/v1/orders", headers=tenant.headers)).json()["items"] == []

        # And when Square is back and the delivery is replayed
        api.down = False
        replayed = await platform.client.post(
            f"/v1/integrations/inbound/{delivery_id}/replay", headers=tenant.headers
        )
        await platform.settle()

        # Then the order is fetched again and placed, once
        assert replayed.status_code == 200, replayed.text
        assert (replayed.json()["status"], replayed.json()["attempts"]) == ("mapped", 2)
        orders = (await platform.client.get("/v1/orders", headers=tenant.headers)).json()["items"]
        assert [(o["source"], o["external_id"]) for o in orders] == [("square", SQUARE_ORDER)]
        assert api.paths("GET") == [f"/v2/orders/{SQUARE_ORDER}"] * 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_uber_eats_gets_a_client_credentials_token_once_and_renews_it_when_it_expires() -> None:
    async with partner_api() as api:
        # Given Uber's API with the order and tokens that live one hour, and an adapter on a test clock
        api.uber_client_secret = SECRET
        api.uber_token_lifetime = 3600
        api.uber_orders[UBER_ORDER] = fixture("ubereats_order.json")
        clock = Clock()
        adapter = UberEatsAdapter(clock=clock)
        client = HttpxPlatformClient(allowed=LOCAL)
        notification = fixture("ubereats_orders_notification.json")

        # When two notifications are fetched, then a third after the token expired
        first = await adapter.fetch(notification, settings=uber_settings(api), secret=SECRET, client=client)
        await adapter.fetch(notification, settings=uber_settings(api), secret=SECRET, client=client)
        clock.now += 3600 - 60
        await adapter.fetch(notification, settings=uber_settings(api), secret=SECRET, client=client)
        await client.close()

    # Then a token was asked for as documented, reused, and asked for again once it expired
    token_requests = [form for method, path, _, form in api.requests if path == "/oauth/v2/token"]
    assert (
        token_requests
        == [
            {
                "client_id": "uber-client-id",
                "client_secret": SECRET,
                "grant_type": "client_credentials",
                "scope": "eats.order",
            }
        ]
        * 2
    )
    order_calls = [(path, h["Authorization"]) for m, path, h, _ in api.requests if m == "GET"]
    assert order_calls == [
        (f"/v2/eats/order/{UBER_ORDER}", "Bearer uber-token-1"),
        (f"/v2/eats/order/{UBER_ORDER}", "Bearer uber-token-1"),
        (f"/v2/eats/order/{UBER_ORDER}", "Bearer uber-token-2"),
    ]
    assert first["order"]["id"] == UBER_ORDER


async def test_uber_eats_never_calls_the_host_named_in_resource_href() -> None:
    async with partner_api() as api:
        # Given a notification whose resource_href names another host
        api.uber_client_secret = SECRET
        api.uber_orders[UBER_ORDER] = fixture("ubereats_order.json")
        notification = fixture("ubereats_orders_cancel.json")
        notification["resource_href"] = f"http://169.254.169.254/v1/eats/order/{UBER_ORDER}"
        client = HttpxPlatformClient(allowed=LOCAL)

        # When it is fetched and mapped
        adapter = UberEatsAdapter()
        payload = await adapter.fetch(notification, settings=uber_settings(api), secret=SECRET, client=client)
        await client.close()
        mapped = adapter.map_order(payload, settings=uber_settings(api))

    # Then only its path was used, on the connection's API base, and the order is cancelled
    assert api.paths("GET") == [f"/v1/eats/order/{UBER_ORDER}"]
    assert (mapped.external_id, mapped.change) == (UBER_ORDER, OrderChange.CANCELLED)


async def test_uber_eats_refusing_the_client_secret_is_a_failed_fetch() -> None:
    async with partner_api() as api:
        # Given Uber knowing another client secret
        api.uber_client_secret = "another-client-secret-0123456789"
        client = HttpxPlatformClient(allowed=LOCAL)

        # When a notification is fetched
        # Then the token request fails and no order is asked for
        with pytest.raises(FetchFailed, match="answered 401"):
            await UberEatsAdapter().fetch(
                fixture("ubereats_orders_notification.json"),
                settings=uber_settings(api),
                secret=SECRET,
                client=client,
            )
        await client.close()
    assert api.paths("GET") == []


async def test_uber_eats_asks_for_a_new_token_after_a_failed_order_fetch() -> None:
    async with partner_api() as api:
        # Given Uber's API without the order yet, and tokens that live one hour
        api.uber_client_secret = SECRET
        api.uber_token_lifetime = 3600
        adapter = UberEatsAdapter(clock=Clock())
        client = HttpxPlatformClient(allowed=LOCAL)
        notification = fixture("ubereats_orders_notification.json")

        # When the fetch fails, and is tried again once the order is there
        with pytest.raises(FetchFailed):
            await adapter.fetch(notification, settings=uber_settings(api), secret=SECRET, client=client)
        api.uber_orders[UBER_ORDER] = fixture("ubereats_order.json")
        again = await adapter.fetch(notification, settings=uber_settings(api), secret=SECRET, client=client)
        await client.close()

    # Then the second try did not reuse the token of the failed one (it may have been revoked)
    order_calls = [h["Authorization"] for m, path, h, _ in api.requests if m == "GET"]
    assert order_calls == ["Bearer uber-token-1", "Bearer uber-token-2"]
    assert again["order"]["id"] == UBER_ORDER


async def test_a_connection_whose_api_is_on_a_private_address_is_never_called(tmp_path: Path) -> None:
    async with partner_api() as api, running_platform(settings_for(tmp_path)) as platform:
        # Given a Square connection whose API base a tenant pointed at this machine (not allowed)
        tenant = await platform.new_tenant()
        opened = await platform.client.post(
            "/v1/integrations/connections",
            json={"platform": "square", "settings": square_settings(api), "secret": SECRET},
            headers=tenant.headers,
        )
        path = opened.json()["webhook_url"].removeprefix("http://testserver")
        api.square_orders[SQUARE_ORDER] = fixture("square_retrieve_order.json")["order"]

        # When a signed notification arrives
        body = json.dumps(fixture("square_order_created.json")).encode()
        signature = sign_base64(SQUARE_URL.encode() + body, SECRET)
        received = await platform.client.post(
            path, content=body, headers={"X-Square-HmacSha256-Signature": signature}
        )

        # Then the delivery is kept, failed with the reason, and the address was never called
        assert received.status_code == 202, received.text
        delivery_id = received.json()["delivery_id"]
        logged = await platform.client.get(f"/v1/integrations/inbound/{delivery_id}", headers=tenant.headers)
        assert "127.0.0.1 is a loopback address" in logged.json()["failure_reason"]
        assert api.paths("GET") == []
