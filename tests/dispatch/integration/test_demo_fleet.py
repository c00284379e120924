"""The demo tenant has a fleet: a Mitte zone, a team, three drivers on today's shift, on duty with a position."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.platform import RunningPlatform, settings_for

from doorstep.infra.redis_client import redis_from_url
from doorstep.infra.service import Service
from doorstep.kernel.settings import Settings
from doorstep.runtime.app import build_app
from doorstep.runtime.demo import DEMO_PASSWORD, seed_demo
from doorstep.runtime.services import build_services, make_broker


@asynccontextmanager
async def serving(settings: Settings, services: Sequence[Service]) -> AsyncIterator[httpx.AsyncClient]:
    """The all-in-one app over the services the demo was seeded with, as `doorstep demo` runs it."""
    app = build_app(settings, services, make_broker(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            platform = RunningPlatform(app=app, client=client, settings=settings)
            # The seed's events first: the relays publishing them hold the writers a while at start.
            await platform.settle()
            yield client


async def as_dispatcher(client: httpx.AsyncClient, tenant_id: str) -> dict[str, str]:
    response = await client.post(
        "/v1/identity/login",
        json={"tenant_id": tenant_id, "email": "dispatcher@demo.doorstep.test", "password": DEMO_PASSWORD},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def summary(driver: dict[str, Any]) -> tuple[Any, ...]:
    return (
        driver["name"],
        driver["vehicle_type"],
        driver["skills"],
        driver["state"],
        driver["position"] is not None,
        driver["stale"],
    )


async def test_the_demo_seeded_twice_has_one_zone_and_three_drivers_on_duty(tmp_path: Path) -> None:
    # Given the demo seeded, and seeded again by a second start (a new process: its own services)
    settings = settings_for(tmp_path)
    first = await seed_demo(settings, public_url="http://testserver", orders=5)
    services = build_services(settings)
    second = await seed_demo(settings, public_url="http://testserver", orders=5, services=services)

    # When the dispatcher looks at the fleet of the server that runs with the second start's services
    async with serving(settings, services) as client:
        headers = await as_dispatcher(client, second["tenant_id"])
        drivers = await client.get("/v1/dispatch/drivers", headers=headers)
        zones = await client.get("/v1/dispatch/zones", headers=headers)
        teams = await client.get("/v1/dispatch/teams", headers=headers)
        shifts = await client.get("/v1/dispatch/shifts", headers=headers)
        nearby = await client.get(
            "/v1/dispatch/drivers/nearby",
            params={"lat": 52.5200, "lon": 13.4050, "radius_m": 3_000},
            headers=headers,
        )

    # Then it is one tenant with one Mitte zone, one team and three drivers, each with one shift,
    # available where the demo put them and fresh
    assert first == second
    assert drivers.status_code == 200, drivers.text
    assert sorted(summary(driver) for driver in drivers.json()["items"]) == [
        ("Can Öztürk", "cargo_bike", ["age_check"], "available", True, False),
        ("Jan Wójcik", "car", ["cash"], "available", True, False),
        ("Mia Bauer", "bicycle", ["hot_bag"], "available", True, False),
    ]
    [zone] = zones.json()["items"]
    [team] = teams.json()["items"]
    assert (zone["name"], team["name"]) == ("Mitte", "Mitte couriers")
    assert {(d["home_zone_id"], d["team_id"]) for d in drivers.json()["items"]} == {(zone["id"], team["id"])}
    assert sorted(s["driver_id"] for s in shifts.json()["items"]) == sorted(
        d["id"] for d in drivers.json()["items"]
    )
    positions = {d["name"]: (d["position"]["lat"], d["position"]["lon"]) for d in drivers.json()["items"]}
    assert positions == {
        "Mia Bauer": (52.5251, 13.3889),
        "Can Öztürk": (52.5297, 13.4016),
        "Jan Wójcik": (52.5128, 13.4175),
    }
    assert nearby.status_code == 200, nearby.text
    assert len(nearby.json()["items"]) == 3


async def test_a_driver_of_the_demo_logs_in_as_a_driver(tmp_path: Path) -> None:
    # Given the demo
    settings = settings_for(tmp_path)
    services = build_services(settings)
    demo = await seed_demo(settings, public_url="http://testserver", orders=5, services=services)

    # When the cargo-bike driver logs in and takes a break
    async with serving(settings, services) as client:
        login = await client.post(
            "/v1/identity/login",
            json={
                "tenant_id": demo["tenant_id"],
                "email": "driver2@demo.doorstep.test",
                "password": DEMO_PASSWORD,
            },
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        state = await client.post(
            "/v1/dispatch/drivers/me/state", json={"state": "on_break"}, headers=headers
        )

    # Then the profile is theirs, and they take a break like any driver
    assert login.status_code == 200, login.text
    assert state.status_code == 200, state.text
    assert (state.json()["name"], state.json()["state"]) == ("Can Öztürk", "on_break")


@pytest.mark.integration
async def test_in_the_distributed_shape_every_process_sees_the_demo_drivers_positions(
    tmp_path: Path, redis_url: str
) -> None:
    # Given the demo seeded with positions in Redis (the distributed shape)
    prefix = f"doorstep-test-{uuid.uuid4().hex[:8]}:"
    settings = settings_for(tmp_path, redis_url=redis_url, redis_prefix=prefix)
    demo = await seed_demo(settings, public_url="http://testserver", orders=5)
    try:
        # When another process (services of its own) answers the dispatcher
        async with serving(settings, build_services(settings)) as client:
            headers = await as_dispatcher(client, demo["tenant_id"])
            drivers = await client.get("/v1/dispatch/drivers", headers=headers)

        # Then it sees the three drivers where the seed put them
        assert drivers.status_code == 200, drivers.text
        assert sorted(
            # Redis GEO keeps a point to within a metre (a 52-bit geohash): compare at 4 decimals.
            (d["name"], round(d["position"]["lat"], 4), d["stale"])
            for d in drivers.json()["items"]
        ) == [
            ("Can Öztürk", 52.5297, False),
            ("Jan Wójcik", 52.5128, False),
            ("Mia Bauer", 52.5251, False),
        ]
    finally:
        redis = redis_from_url(redis_url)
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
