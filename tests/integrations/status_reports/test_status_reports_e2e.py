"""Status back to the platform an order came from, on the all-in-one platform: a WooCommerce order placed
by webhook and moved along by the orders API reaches a local WooCommerce as PUTs, in order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.integrations.integration.test_webhooks_api import (
    PICKUP,
    fixture_json,
    open_connection,
    webhook_path,
)
from tests.integrations.status_reports.platform_apis import WOO_KEY, WOO_SECRET, PlatformApis, platform_apis
from tests.orders.integration.test_orders_api import move
from tests.platform import LOCAL_NETWORKS, RunningPlatform, Tenant, running_platform, settings_for

from doorstep.integrations.adapters.platforms.drafts import sign_base64
from doorstep.integrations.status_reports.worker import Reporter

pytestmark = pytest.mark.integration

WOO_SECRET_HOOK = "woocommerce-webhook-secret-0123456789"
PROBLEM_JSON = "application/problem+json"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
async def apis() -> AsyncIterator[PlatformApis]:
    async with platform_apis() as running:
        yield running


@pytest.fixture
async def reporting(tmp_path: Path) -> AsyncIterator[tuple[RunningPlatform, Reporter, FakeClock]]:
    async with running_platform(settings_for(tmp_path, webhooks_allowed_networks=LOCAL_NETWORKS)) as platform:
        reporter: Reporter = platform.app.state.status_reporter
        await reporter.stop()  # the test drives it, one round at a time
        clock = FakeClock()
        reporter.runtime.clock = clock
        yield platform, reporter, clock


def woo_settings(apis: PlatformApis) -> dict[str, Any]:
    return {
        "pickup": PICKUP,
        "api_base_url": apis.base_url,
        "consumer_key": WOO_KEY,
        "consumer_secret": WOO_SECRET,
    }


async def woo_order(platform: RunningPlatform, connection: dict[str, Any], order_id: int) -> str:
    """Deliver WooCommerce's order.created webhook; the Doorstep order's id."""
    payload = fixture_json("woocommerce_order_created.json")
    payload["id"] = order_id
    # An address the offline geocoder knows, so the order is placed (not waiting for attention).
    payload["shipping"] |= {"address_1": "Skalitzer Straße 80", "address_2": "", "postcode": "10997"}
    raw = json.dumps(payload).encode()
    response = await platform.client.post(
        webhook_path(connection),
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-WC-Webhook-Topic": "order.created",
            "X-WC-Webhook-Delivery-Id": f"delivery-{order_id}",
            "X-WC-Webhook-Signature": sign_base64(raw, WOO_SECRET_HOOK),
        },
    )
    assert response.status_code == 202, response.text
    await platform.settle()
    return await order_id_of(platform, connection, str(order_id))


async def order_id_of(platform: RunningPlatform, connection: dict[str, Any], external_id: str) -> str:
    headers = connection["_tenant"].headers
    listed = (await platform.client.get("/v1/orders", headers=headers)).json()["items"]
    [found] = [o for o in listed if o["external_id"] == external_id]
    assert found["status"] == "placed", found
    order_id: str = found["id"]
    return order_id


async def woo_connection(
    platform: RunningPlatform, tenant: Tenant, settings: dict[str, Any]
) -> dict[str, Any]:
    connection = await open_connection(
        platform, tenant, "woocommerce", settings=settings, secret=WOO_SECRET_HOOK
    )
    connection["_tenant"] = tenant
    return connection


async def moved(platform: RunningPlatform, tenant: Tenant, order_id: str, *statuses: str) -> None:
    for status in statuses:
        response = await move(platform, tenant, order_id, status)
        assert response.status_code == 200, response.text
    await platform.settle()


async def drain(reporter: Reporter) -> int:
    total = 0
    while sent := await reporter.run_once():
        total += sent
    return total


async def reports(platform: RunningPlatform, tenant: Tenant, query: str = "") -> list[dict[str, Any]]:
    response = await platform.client.get(f"/v1/integrations/status-reports{query}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_woocommerce_order_moved_along_reaches_the_shop_as_puts_in_order(
    reporting: tuple[RunningPlatform, Reporter, FakeClock], apis: PlatformApis
) -> None:
    platform, reporter, _ = reporting
    # Given a WooCommerce order placed by webhook on a connection with the shop's REST API key
    tenant = await platform.new_tenant()
    connection = await woo_connection(platform, tenant, woo_settings(apis))
    order_id = await woo_order(platform, connection, 727)

    # When the order is moved along to delivered through the orders API, then the reporter runs
    await moved(
        platform, tenant, order_id, "accepted", "preparing", "ready_for_pickup", "picked_up", "delivered"
    )
    sent = await drain(reporter)

    # Then the shop got the statuses it knows, as PUTs of the order, in the order they happened
    assert sent == 3
    assert apis.calls == [
        ("PUT", "/wp-json/wc/v3/orders/727", {"status": "processing"}),
        ("PUT", "/wp-json/wc/v3/orders/727", {"status": "processing"}),
        ("PUT", "/wp-json/wc/v3/orders/727", {"status": "completed"}),
    ]
    listed = await reports(platform, tenant)
    assert [(r["order_status"], r["status"], r["attempts"], r["external_id"]) for r in listed] == [
        ("delivered", "sent", 1, "727"),
        ("preparing", "sent", 1, "727"),
        ("accepted", "sent", 1, "727"),
    ]


async def test_a_platform_that_answers_500_gets_the_report_on_retry_and_the_next_waits(
    reporting: tuple[RunningPlatform, Reporter, FakeClock], apis: PlatformApis
) -> None:
    platform, reporter, clock = reporting
    # Given a WooCommerce order, and a shop that answers the first call with a 500
    tenant = await platform.new_tenant()
    connection = await woo_connection(platform, tenant, woo_settings(apis))
    order_id = await woo_order(platform, connection, 801)
    apis.failures = [500]

    # When the order is accepted then cancelled, and the reporter runs
    await moved(platform, tenant, order_id, "accepted", "cancelled")
    await drain(reporter)

    # Then the acceptance failed once and waits for its retry, holding the cancellation back
    assert apis.calls == [("PUT", "/wp-json/wc/v3/orders/801", {"status": "processing"})]
    [pending_cancel, pending_accept] = await reports(platform, tenant, "?status=pending")
    assert (pending_accept["order_status"], pending_accept["attempts"]) == ("accepted", 1)
    assert "answered 500" in pending_accept["last_error"]
    assert (pending_cancel["order_status"], pending_cancel["attempts"]) == ("cancelled", 0)

    # When the retry is due (30 s later) and the shop answers 200
    clock.advance(seconds=30)
    await drain(reporter)

    # Then both reached the shop, in order
    assert apis.calls[1:] == [
        ("PUT", "/wp-json/wc/v3/orders/801", {"status": "processing"}),
        ("PUT", "/wp-json/wc/v3/orders/801", {"status": "cancelled"}),
    ]
    assert [(r["order_status"], r["status"], r["attempts"]) for r in await reports(platform, tenant)] == [
        ("cancelled", "sent", 1),
        ("accepted", "sent", 2),
    ]


async def test_a_report_that_keeps_failing_fails_after_an_hour_and_can_be_retried(
    reporting: tuple[RunningPlatform, Reporter, FakeClock], apis: PlatformApis
) -> None:
    platform, reporter, clock = reporting
    # Given a WooCommerce order and a shop that is down for five attempts
    tenant = await platform.new_tenant()
    connection = await woo_connection(platform, tenant, woo_settings(apis))
    order_id = await woo_order(platform, connection, 802)
    apis.failures = [503] * 5

    # When it is accepted and the reporter walks the schedule (30 s, 2 min, 10 min, 45 min)
    await moved(platform, tenant, order_id, "accepted")
    await drain(reporter)
    for seconds in (30, 120, 600, 2700):
        clock.advance(seconds=seconds)
        await drain(reporter)

    # Then the report failed after five attempts, listed with its error
    assert len(apis.calls) == 5
    [failed] = await reports(platform, tenant, "?status=failed")
    assert (failed["order_status"], failed["attempts"], failed["next_attempt_at"]) == ("accepted", 5, None)
    assert "answered 503" in failed["last_error"]

    # When an admin retries it and the shop is back
    response = await platform.client.post(
        f"/v1/integrations/status-reports/{failed['id']}/retry", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
    await drain(reporter)

    # Then it reached the shop
    assert apis.calls[-1] == ("PUT", "/wp-json/wc/v3/orders/802", {"status": "processing"})
    assert [(r["status"], r["attempts"]) for r in await reports(platform, tenant)] == [("sent", 1)]


async def test_a_connection_without_credentials_reports_nothing(
    reporting: tuple[RunningPlatform, Reporter, FakeClock], apis: PlatformApis
) -> None:
    platform, reporter, _ = reporting
    # Given a WooCommerce connection without the shop's REST API key
    tenant = await platform.new_tenant()
    connection = await woo_connection(platform, tenant, {"pickup": PICKUP, "api_base_url": apis.base_url})
    order_id = await woo_order(platform, connection, 803)

    # When its order is accepted and delivered
    await moved(platform, tenant, order_id, "accepted", "ready_for_pickup", "picked_up", "delivered")
    sent = await drain(reporter)

    # Then nothing is stored and the shop hears nothing
    assert sent == 0
    assert apis.calls == []
    assert await reports(platform, tenant) == []


async def test_another_tenants_report_is_not_found(
    reporting: tuple[RunningPlatform, Reporter, FakeClock], apis: PlatformApis
) -> None:
    platform, reporter, _ = reporting
    # Given a failed-then-sent report of tenant A
    a, b = await platform.new_tenant("A"), await platform.new_tenant("B")
    connection = await woo_connection(platform, a, woo_settings(apis))
    order_id = await woo_order(platform, connection, 804)
    await moved(platform, a, order_id, "accepted")
    await drain(reporter)
    [report] = await reports(platform, a)

    # When tenant B lists reports and retries A's
    listed = await reports(platform, b)
    response = await platform.client.post(
        f"/v1/integrations/status-reports/{report['id']}/retry", headers=b.headers
    )

    # Then B sees none, and A's report does not exist for B
    assert listed == []
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"].endswith("/status-report-not-found")
    assert len(apis.calls) == 1


async def test_a_report_older_than_one_sent_since_is_not_retried(
    reporting: tuple[RunningPlatform, Reporter, FakeClock], apis: PlatformApis
) -> None:
    platform, reporter, _ = reporting
    # Given an acceptance that was sent, then a delivery that was sent after it
    tenant = await platform.new_tenant()
    connection = await woo_connection(platform, tenant, woo_settings(apis))
    order_id = await woo_order(platform, connection, 805)
    await moved(platform, tenant, order_id, "accepted", "ready_for_pickup", "picked_up", "delivered")
    await drain(reporter)
    [accepted] = [r for r in await reports(platform, tenant) if r["order_status"] == "accepted"]

    # When the acceptance is retried
    response = await platform.client.post(
        f"/v1/integrations/status-reports/{accepted['id']}/retry", headers=tenant.headers
    )

    # Then it is refused: it would move the shop's order back
    assert response.status_code == 409, response.text
    assert response.json()["type"].endswith("/status-report-not-retryable")
    assert len(apis.calls) == 2
