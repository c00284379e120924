"""The geo store port, the same tests for the in-process index and for Redis GEO (the real Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from doorstep.dispatch.adapters.geo_memory import MemoryGeoStore
from doorstep.dispatch.adapters.geo_redis import RedisGeoStore
from doorstep.dispatch.domain.geometry import Point, distance_m
from doorstep.dispatch.ports import GeoStore, Nearby
from doorstep.infra.redis_client import redis_from_url

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
ALEX = Point(lat=52.5219, lon=13.4132)  # Alexanderplatz
STALE_AFTER = timedelta(seconds=60)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def east_of(point: Point, metres: float) -> Point:
    return Point(lat=point.lat, lon=point.lon + metres / (111_195 * 0.6087))  # cos(52.52°)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[tuple[GeoStore, Clock]]:
    clock = Clock()
    if request.param == "memory":
        yield MemoryGeoStore(stale_after=STALE_AFTER, clock=clock), clock
        return
    client = redis_from_url(request.getfixturevalue("redis_url"))
    prefix = f"doorstep-test-{uuid.uuid4().hex[:8]}:"
    try:
        yield RedisGeoStore(client, prefix=prefix, stale_after=STALE_AFTER, clock=clock), clock
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_nearest_drivers_come_nearest_first_within_the_radius(store: tuple[GeoStore, Clock]) -> None:
    geo, _ = store
    # Given drivers 100 m, 400 m, 900 m and 3 km east of Alexanderplatz, and one of another tenant
    for driver, metres in [("d-400", 400), ("d-100", 100), ("d-3000", 3000), ("d-900", 900)]:
        assert await geo.update("t-1", driver, east_of(ALEX, metres), NOW)
    await geo.update("t-2", "other", ALEX, NOW)

    # When the nearest three within 1 km are asked for
    found = await geo.nearest("t-1", ALEX, 1_000, 3)

    # Then they are the three within 1 km, nearest first, at their distances (to half a metre: GEO's grid)
    assert [n.driver_id for n in found] == ["d-100", "d-400", "d-900"]
    for nearby, metres in zip(found, [100, 400, 900], strict=True):
        assert abs(nearby.distance_m - metres) < 0.5
    assert [n.driver_id for n in await geo.nearest("t-1", ALEX, 1_000, 1)] == ["d-100"]
    assert await geo.nearest("t-3", ALEX, 1_000, 3) == []


async def test_an_older_ping_never_overwrites_a_newer_position(store: tuple[GeoStore, Clock]) -> None:
    geo, _ = store
    assert await geo.update("t-1", "d-1", east_of(ALEX, 500), NOW)

    kept = await geo.update("t-1", "d-1", ALEX, NOW - timedelta(seconds=5))

    assert kept is False
    position = await geo.position("t-1", "d-1")
    assert position is not None
    assert position.at == NOW
    assert distance_m(position.point, east_of(ALEX, 500)) < 1


async def test_a_driver_whose_pings_stopped_is_left_out_of_nearest(store: tuple[GeoStore, Clock]) -> None:
    geo, clock = store
    # Given one driver heard 90 s ago and one 30 s ago, and the stale one is nearer
    await geo.update("t-1", "quiet", east_of(ALEX, 50), NOW - timedelta(seconds=90))
    await geo.update("t-1", "recent", east_of(ALEX, 200), NOW - timedelta(seconds=30))

    # When the nearest driver is asked for
    found = await geo.nearest("t-1", ALEX, 1_000, 1)

    # Then only the recent one is found; its position and the quiet one's are still readable
    assert [n.driver_id for n in found] == ["recent"]
    assert set(await geo.positions("t-1", ["quiet", "recent", "unknown"])) == {"quiet", "recent"}
    # And once the recent one is quiet too, nobody is found
    clock.now = NOW + timedelta(seconds=31)
    assert await geo.nearest("t-1", ALEX, 1_000, 1) == []


async def test_many_stale_drivers_do_not_hide_a_fresh_one_further_away(store: tuple[GeoStore, Clock]) -> None:
    geo, _ = store
    for i in range(50):
        await geo.update("t-1", f"stale-{i:02}", east_of(ALEX, 10 + i), NOW - timedelta(minutes=5))
    await geo.update("t-1", "fresh", east_of(ALEX, 800), NOW)

    found = await geo.nearest("t-1", ALEX, 1_000, 2)

    assert [n.driver_id for n in found] == ["fresh"]


async def test_a_removed_driver_has_no_position_and_is_not_found(store: tuple[GeoStore, Clock]) -> None:
    geo, _ = store
    await geo.update("t-1", "d-1", ALEX, NOW)

    await geo.remove("t-1", "d-1")

    assert await geo.position("t-1", "d-1") is None
    assert await geo.nearest("t-1", ALEX, 1_000, 5) == []
    await geo.remove("t-1", "never-there")


async def test_a_wide_search_finds_drivers_across_cells(store: tuple[GeoStore, Clock]) -> None:
    geo, _ = store
    points = {f"d-{km}": east_of(ALEX, km * 1_000) for km in range(0, 40, 3)}
    for driver, point in points.items():
        await geo.update("t-1", driver, point, NOW)

    found = await geo.nearest("t-1", ALEX, 20_500, 100)

    assert [n.driver_id for n in found] == [f"d-{km}" for km in range(0, 21, 3)]
    assert found[0] == Nearby("d-0", found[0].distance_m)
