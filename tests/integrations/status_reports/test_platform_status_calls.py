"""Each platform's status calls, through the real `HttpxPlatformClient`, against a local server that speaks
the platforms' documented APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.integrations.status_reports.platform_apis import (
    SHOPIFY_TOKEN,
    SQUARE_TOKEN,
    UBER_CLIENT_ID,
    UBER_SECRET,
    PlatformApis,
    platform_apis,
)
from tests.platform import LOCAL_NETWORKS

from doorstep.integrations.adapters.platforms.http_client import HttpxPlatformClient
from doorstep.integrations.adapters.platforms.shopify import ShopifyAdapter
from doorstep.integrations.adapters.platforms.square import SquareAdapter
from doorstep.integrations.adapters.platforms.ubereats import UberEatsAdapter
from doorstep.integrations.outbound.ssrf import parse_networks
from doorstep.integrations.ports import FetchFailed

pytestmark = pytest.mark.integration

SHOPIFY_ORDER = "5981237460291"
SQUARE_ORDER = "eA3vssLHKJrv9H0IdJCM3gNqfdcZY"
UBER_ORDER = "153dd7f1-339d-4619-940c-418943c14636"


@pytest.fixture
async def apis() -> AsyncIterator[PlatformApis]:
    async with platform_apis() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[HttpxPlatformClient]:
    client = HttpxPlatformClient(timeout=5, allowed=parse_networks(LOCAL_NETWORKS))
    yield client
    await client.close()


async def test_shopify_delivered_fulfils_the_open_fulfillment_orders(
    apis: PlatformApis, client: HttpxPlatformClient
) -> None:
    # Given an order with one open and one closed fulfillment order
    apis.shopify_fulfillment_orders[SHOPIFY_ORDER] = [
        {"id": 1046000790, "status": "open"},
        {"id": 1046000791, "status": "closed"},
    ]
    settings = {"api_base_url": apis.base_url, "access_token": SHOPIFY_TOKEN}

    # When it is reported delivered
    await ShopifyAdapter().report_status(
        client,
        settings=settings,
        secret="",
        external_id=SHOPIFY_ORDER,
        status="delivered",
        idempotency_key="r1",
    )

    # Then the open one is fulfilled, without notifying the customer
    assert apis.calls == [
        ("GET", f"/admin/api/2024-10/orders/{SHOPIFY_ORDER}/fulfillment_orders.json", None),
        (
            "POST",
            "/admin/api/2024-10/fulfillments.json",
            {
                "fulfillment": {
                    "line_items_by_fulfillment_order": [{"fulfillment_order_id": 1046000790}],
                    "notify_customer": False,
                }
            },
        ),
    ]


async def test_shopify_cancelled_and_rejected_cancel_the_order(
    apis: PlatformApis, client: HttpxPlatformClient
) -> None:
    settings = {"api_base_url": apis.base_url, "access_token": SHOPIFY_TOKEN}
    # When one order is cancelled and another rejected
    adapter = ShopifyAdapter()
    await adapter.report_status(
        client, settings=settings, secret="", external_id="1", status="cancelled", idempotency_key="r1"
    )
    await adapter.report_status(
        client, settings=settings, secret="", external_id="2", status="rejected", idempotency_key="r2"
    )
    # Then both are cancelled, the rejected one as declined
    assert apis.calls == [
        ("POST", "/admin/api/2024-10/orders/1/cancel.json", {"reason": "other"}),
        ("POST", "/admin/api/2024-10/orders/2/cancel.json", {"reason": "declined"}),
    ]


async def test_square_updates_the_fulfillment_state_at_the_orders_version(
    apis: PlatformApis, client: HttpxPlatformClient
) -> None:
    # Given a Square order at version 3 with a delivery fulfillment
    apis.square_orders[SQUARE_ORDER] = {
        "id": SQUARE_ORDER,
        "location_id": "L8GJ6Y2XN3PRY",
        "version": 3,
        "fulfillments": [{"uid": "ful-1", "type": "DELIVERY", "state": "PROPOSED"}],
    }
    settings = {"api_base_url": apis.base_url, "access_token": SQUARE_TOKEN}

    # When it is reported accepted, then delivered
    adapter = SquareAdapter()
    for status, key in (("accepted", "r1"), ("delivered", "r2")):
        await adapter.report_status(
            client, settings=settings, secret="", external_id=SQUARE_ORDER, status=status, idempotency_key=key
        )

    # Then each update carried the version read just before it, and the fulfillment is completed
    puts = [body for method, _, body in apis.calls if method == "PUT"]
    assert puts == [
        {
            "order": {
                "location_id": "L8GJ6Y2XN3PRY",
                "version": 3,
                "fulfillments": [{"uid": "ful-1", "state": "RESERVED"}],
            },
            "idempotency_key": "r1",
        },
        {
            "order": {
                "location_id": "L8GJ6Y2XN3PRY",
                "version": 4,
                "fulfillments": [{"uid": "ful-1", "state": "COMPLETED"}],
            },
            "idempotency_key": "r2",
        },
    ]
    assert apis.square_orders[SQUARE_ORDER]["fulfillments"][0]["state"] == "COMPLETED"


async def test_uber_eats_accepts_and_cancels_with_a_client_credentials_token(
    apis: PlatformApis, client: HttpxPlatformClient
) -> None:
    settings = {
        "client_id": UBER_CLIENT_ID,
        "api_base_url": apis.base_url,
        "token_url": f"{apis.base_url}/oauth/v2/token",
    }
    adapter = UberEatsAdapter()
    # When an order is accepted, and another rejected and a third cancelled (Uber answers 204)
    for order, status in (("o-1", "accepted"), ("o-2", "rejected"), ("o-3", "cancelled")):
        await adapter.report_status(
            client,
            settings=settings,
            secret=UBER_SECRET,
            external_id=order,
            status=status,
            reason="kitchen closed",
            idempotency_key=order,
        )
    # Then the documented calls were made
    assert apis.calls == [
        ("POST", "/v1/eats/orders/o-1/accept_pos_order", {"reason": "kitchen closed"}),
        (
            "POST",
            "/v1/eats/orders/o-2/deny_pos_order",
            {"reason": {"explanation": "kitchen closed", "code": "OTHER"}},
        ),
        ("POST", "/v1/eats/orders/o-3/cancel", {"reason": "OTHER", "details": "kitchen closed"}),
    ]


async def test_uber_eats_ready_for_pickup_marks_the_order_ready_on_the_fulfillment_api(
    apis: PlatformApis, client: HttpxPlatformClient
) -> None:
    settings = {
        "client_id": UBER_CLIENT_ID,
        "api_base_url": apis.base_url,
        "token_url": f"{apis.base_url}/oauth/v2/token",
    }
    # When an order is reported ready for pickup
    await UberEatsAdapter().report_status(
        client,
        settings=settings,
        secret=UBER_SECRET,
        external_id=UBER_ORDER,
        status="ready_for_pickup",
        idempotency_key="r1",
    )
    # Then Uber's Order Fulfillment API was told, with an empty body
    assert apis.calls == [("POST", f"/v1/delivery/order/{UBER_ORDER}/ready", {})]


async def test_uber_eats_ready_refused_is_a_failed_fetch(
    apis: PlatformApis, client: HttpxPlatformClient
) -> None:
    settings = {
        "client_id": UBER_CLIENT_ID,
        "api_base_url": apis.base_url,
        "token_url": f"{apis.base_url}/oauth/v2/token",
    }
    # Given Uber answers the ready call with a 409 (the order is not in a state that can be readied)
    apis.failures = [409]
    # When the order is reported ready, then the report fails with Uber's answer
    with pytest.raises(FetchFailed, match="answered 409"):
        await UberEatsAdapter().report_status(
            client,
            settings=settings,
            secret=UBER_SECRET,
            external_id=UBER_ORDER,
            status="ready_for_pickup",
            idempotency_key="r1",
        )
    assert apis.calls == [("POST", f"/v1/delivery/order/{UBER_ORDER}/ready", {})]


async def test_a_refused_call_is_a_failed_fetch_naming_the_status(
    apis: PlatformApis, client: HttpxPlatformClient
) -> None:
    # Given a Shopify connection whose token the shop no longer accepts
    settings = {"api_base_url": apis.base_url, "access_token": "revoked"}
    # When a cancellation is reported, then it fails with the shop's answer
    with pytest.raises(FetchFailed, match="answered 401"):
        await ShopifyAdapter().report_status(
            client, settings=settings, secret="", external_id="1", status="cancelled", idempotency_key="r"
        )
