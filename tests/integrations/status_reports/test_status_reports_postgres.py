"""Status reports on PostgreSQL: two reporters side by side send each report once, in order, and retry
on the schedule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.integrations.status_reports.platform_apis import PlatformApis, platform_apis
from tests.integrations.status_reports.test_status_reports_e2e import (
    FakeClock,
    moved,
    reports,
    woo_connection,
    woo_order,
    woo_settings,
)
from tests.platform import LOCAL_NETWORKS, RunningPlatform, running_platform, settings_for

from doorstep.integrations.adapters.platforms.http_client import HttpxPlatformClient
from doorstep.integrations.outbound.ssrf import parse_networks
from doorstep.integrations.status_reports.worker import Reporter

pytestmark = pytest.mark.integration


@pytest.fixture
async def apis() -> AsyncIterator[PlatformApis]:
    async with platform_apis() as running:
        yield running


@pytest.fixture
async def two_reporters(
    tmp_path: Path, postgres_url: str
) -> AsyncIterator[tuple[RunningPlatform, Reporter, Reporter, FakeClock]]:
    settings = settings_for(tmp_path, database_url=postgres_url, webhooks_allowed_networks=LOCAL_NETWORKS)
    async with running_platform(settings) as platform:
        first: Reporter = platform.app.state.status_reporter
        await first.stop()  # the test drives both, one round at a time
        clock = FakeClock()
        first.runtime.clock = clock
        # A second reporter on the same database, as another instance would run
        second = Reporter(
            bus=first.bus,
            client=HttpxPlatformClient(timeout=5, allowed=parse_networks(LOCAL_NETWORKS)),
            runtime=first.runtime,
        )
        try:
            yield platform, first, second, clock
        finally:
            await second.close()


async def both_rounds(first: Reporter, second: Reporter) -> list[int]:
    """One round of each reporter at the same time; how many each sent or tried."""
    return list(await asyncio.gather(first.run_once(), second.run_once()))


async def test_two_reporters_on_postgres_send_each_report_once_and_in_order(
    two_reporters: tuple[RunningPlatform, Reporter, Reporter, FakeClock], apis: PlatformApis
) -> None:
    platform, first, second, _ = two_reporters
    # Given ten WooCommerce orders, each moved along to delivered (three reports each)
    tenant = await platform.new_tenant()
    connection = await woo_connection(platform, tenant, woo_settings(apis))
    for n in range(10):
        order_id = await woo_order(platform, connection, 900 + n)
        await moved(
            platform, tenant, order_id, "accepted", "preparing", "ready_for_pickup", "picked_up", "delivered"
        )

    # When both reporters send at once until nothing is due
    per_reporter = [0, 0]
    while sum(sent := await both_rounds(first, second)):
        per_reporter = [a + b for a, b in zip(per_reporter, sent, strict=True)]

    # Then each report reached the shop exactly once, each order's three in the order they happened
    assert sum(per_reporter) == 30
    assert len(apis.calls) == 30
    for n in range(10):
        assert [body for _, path, body in apis.calls if path == f"/wp-json/wc/v3/orders/{900 + n}"] == [
            {"status": "processing"},
            {"status": "processing"},
            {"status": "completed"},
        ]
    listed = await reports(platform, tenant, "?limit=100")
    assert len(listed) == 30
    assert {(r["status"], r["attempts"]) for r in listed} == {("sent", 1)}


async def test_two_reporters_on_postgres_retry_a_failed_report_once_on_the_schedule(
    two_reporters: tuple[RunningPlatform, Reporter, Reporter, FakeClock], apis: PlatformApis
) -> None:
    platform, first, second, clock = two_reporters
    # Given an accepted WooCommerce order, and a shop that answers the first two calls with a 503
    tenant = await platform.new_tenant()
    connection = await woo_connection(platform, tenant, woo_settings(apis))
    order_id = await woo_order(platform, connection, 950)
    apis.failures = [503, 503]
    await moved(platform, tenant, order_id, "accepted")

    # When both reporters run: the first attempt fails
    assert sorted(await both_rounds(first, second)) == [0, 1]
    # Then nothing is due until the first wait (30 s) is over, and then one of them tries, once
    clock.advance(seconds=29)
    assert await both_rounds(first, second) == [0, 0]
    clock.advance(seconds=1)
    assert sorted(await both_rounds(first, second)) == [0, 1]
    # And after that second failure the next wait is two minutes
    clock.advance(seconds=119)
    assert await both_rounds(first, second) == [0, 0]
    clock.advance(seconds=1)
    assert sorted(await both_rounds(first, second)) == [0, 1]
    assert await both_rounds(first, second) == [0, 0]

    # Then the shop got three calls, the last one taken, and the report was sent on its third attempt
    assert apis.calls == [("PUT", "/wp-json/wc/v3/orders/950", {"status": "processing"})] * 3
    [report] = await reports(platform, tenant)
    assert (report["status"], report["attempts"], report["last_error"]) == ("sent", 3, None)
