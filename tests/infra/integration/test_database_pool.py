"""A request that finds no free database connection within the pool timeout is a 503 problem, never a
500, on SQLite (one writer connection) and on PostgreSQL (a fixed pool)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.pool import QueuePool
from tests.platform import RunningPlatform, running_platform, settings_for

from doorstep.kernel.errors import PROBLEM_BASE

ORDER: dict[str, Any] = {
    "external_id": "P-1",
    "pickup": {
        "name": "Curry Corner",
        "address": "Oranienstraße 12",
        "location": {"lat": 52.5, "lon": 13.41},
    },
    "dropoff": {"name": "Lena", "address": "Skalitzer Straße 3", "location": {"lat": 52.49, "lon": 13.43}},
    "customer": {"name": "Lena Müller"},
    "items": [{"name": "Currywurst", "quantity": 2, "unit_price": 450}],
    "currency": "EUR",
}
TIMEOUT = 1.0  # long enough for the start-up of the other services on a busy machine, short for the test


async def assert_busy_then_served(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    await platform.settle()
    engine = platform.services["orders"].database.writer_engine

    # Given every connection of the orders pool checked out and held
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    held = [await engine.connect() for _ in range(pool.size())]
    try:
        # When an order is placed
        busy = await platform.client.post("/v1/orders", json=copy.deepcopy(ORDER), headers=tenant.headers)
    finally:
        for connection in held:
            await connection.close()

    # Then it is refused with a 503 problem that says why and when to retry, and nothing is stored
    assert busy.status_code == 503, busy.text
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.headers["retry-after"] == "1"
    problem = busy.json()
    assert (problem["type"], problem["status"], problem["detail"]) == (
        PROBLEM_BASE + "service-unavailable",
        503,
        f"no database connection became free within {TIMEOUT:g} s; retry shortly",
    )
    listed = await platform.client.get("/v1/orders", headers=tenant.headers)
    assert listed.json()["items"] == []

    # And once the connections are back, the same request places the order
    placed = await platform.client.post("/v1/orders", json=copy.deepcopy(ORDER), headers=tenant.headers)
    assert placed.status_code == 201, placed.text


@pytest.fixture
async def sqlite_platform(tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    async with running_platform(settings_for(tmp_path, database_pool_timeout=TIMEOUT)) as platform:
        yield platform


async def test_on_sqlite_a_request_that_waits_out_the_pool_timeout_is_a_503_problem(
    sqlite_platform: RunningPlatform,
) -> None:
    await assert_busy_then_served(sqlite_platform)


@pytest.mark.integration
async def test_on_postgresql_a_request_that_waits_out_the_pool_timeout_is_a_503_problem(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = settings_for(
        tmp_path,
        database_url=postgres_url,
        database_pool_size=2,
        database_max_overflow=0,
        database_pool_timeout=TIMEOUT,
    )
    async with running_platform(settings) as platform:
        await assert_busy_then_served(platform)
