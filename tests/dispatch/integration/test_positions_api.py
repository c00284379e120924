"""Live positions over the API: pings in, the live position and staleness, nearby drivers, the track."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.dispatch.integration.test_fleet_api import a_driver, dispatcher
from tests.identity.integration.test_users import assert_problem, fields_of
from tests.platform import RunningPlatform, running_platform, settings_for

from doorstep.kernel.clock import utcnow


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """The all-in-one platform with the in-process geo store, or with Redis GEO (the real Redis)."""
    overrides: dict[str, Any] = {}
    if request.param == "redis":
        overrides = {
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": f"test-{tmp_path.name}:",
        }
    async with running_platform(settings_for(tmp_path, **overrides)) as running:
        yield running


def ping(seconds_ago: float, lat: float = 52.5219, lon: float = 13.4132, **extra: Any) -> dict[str, Any]:
    at = utcnow() - timedelta(seconds=seconds_ago)
    return {"lat": lat, "lon": lon, "recorded_at": at.isoformat(), **extra}


async def on_duty(platform: RunningPlatform, me: dict[str, str]) -> None:
    response = await platform.client.post(
        "/v1/dispatch/drivers/me/state", json={"state": "available"}, headers=me
    )
    assert response.status_code == 200, response.text


async def test_pings_set_the_live_position_and_a_downsampled_track(platform: RunningPlatform) -> None:
    # Given a driver on duty
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, me = await a_driver(platform, tenant, headers)
    await on_duty(platform, me)

    # When they send 12 pings 5 s apart, standing still, newest position last
    pings = [ping(60 - 5 * i, speed=0.0, heading=90.0, accuracy_m=8.0) for i in range(12)]
    sent = await platform.client.post("/v1/dispatch/drivers/me/positions", json={"pings": pings}, headers=me)

    # Then all are taken, one per 15 s joins the track, and the newest is the live position
    assert sent.status_code == 200, sent.text
    assert (sent.json()["received"], sent.json()["kept"]) == (12, 4)
    read = (await platform.client.get(f"/v1/dispatch/drivers/{driver['id']}", headers=headers)).json()
    assert read["stale"] is False
    assert (round(read["position"]["lat"], 4), round(read["position"]["lon"], 4)) == (52.5219, 13.4132)
    track = (await platform.client.get(f"/v1/dispatch/drivers/{driver['id']}/track", headers=headers)).json()
    assert len(track["items"]) == 4
    assert [p["heading"] for p in track["items"]] == [90.0] * 4
    # And the same batch sent again adds nothing to the track
    again = await platform.client.post("/v1/dispatch/drivers/me/positions", json={"pings": pings}, headers=me)
    assert again.json()["kept"] == 0


async def test_the_track_is_read_in_pages_between_two_times(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, me = await a_driver(platform, tenant, headers)
    await on_duty(platform, me)
    pings = [ping(300 - 20 * i) for i in range(10)]
    await platform.client.post("/v1/dispatch/drivers/me/positions", json={"pings": pings}, headers=me)
    path = f"/v1/dispatch/drivers/{driver['id']}/track"

    first = (await platform.client.get(path, params={"limit": 6}, headers=headers)).json()
    rest = (
        await platform.client.get(path, params={"limit": 6, "cursor": first["next_cursor"]}, headers=headers)
    ).json()
    window = (
        await platform.client.get(
            path,
            params={"from": pings[2]["recorded_at"], "to": pings[5]["recorded_at"]},
            headers=headers,
        )
    ).json()

    assert [len(first["items"]), len(rest["items"]), rest["next_cursor"]] == [6, 4, None]
    times = [p["recorded_at"] for p in first["items"] + rest["items"]]
    assert times == sorted(times)
    assert len(window["items"]) == 3


async def test_a_driver_who_stops_pinging_is_stale_and_not_nearby(platform: RunningPlatform) -> None:
    # Given two drivers on duty near Alexanderplatz: one pinged 2 minutes ago, one just now further away
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    quiet, quiet_me = await a_driver(platform, tenant, headers, "quiet@a.test")
    recent, recent_me = await a_driver(platform, tenant, headers, "recent@a.test")
    for me in (quiet_me, recent_me):
        await on_duty(platform, me)
    await platform.client.post(
        "/v1/dispatch/drivers/me/positions", json={"pings": [ping(120)]}, headers=quiet_me
    )
    await platform.client.post(
        "/v1/dispatch/drivers/me/positions", json={"pings": [ping(1, lon=13.4200)]}, headers=recent_me
    )

    # When the dispatcher lists the drivers and asks who is near Alexanderplatz
    listed = (await platform.client.get("/v1/dispatch/drivers", headers=headers)).json()["items"]
    nearby = await platform.client.get(
        "/v1/dispatch/drivers/nearby",
        params={"lat": 52.5219, "lon": 13.4132, "radius_m": 2000},
        headers=headers,
    )

    # Then the quiet one is stale and left out; the recent one is found at its distance
    assert {d["id"]: d["stale"] for d in listed} == {quiet["id"]: True, recent["id"]: False}
    assert nearby.status_code == 200, nearby.text
    assert [(d["driver_id"], d["state"], round(d["distance_m"], -1)) for d in nearby.json()["items"]] == [
        (recent["id"], "available", 460.0)
    ]


async def test_an_off_duty_driver_sends_no_positions_and_is_forgotten(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, me = await a_driver(platform, tenant, headers)

    refused = await platform.client.post(
        "/v1/dispatch/drivers/me/positions", json={"pings": [ping(1)]}, headers=me
    )
    await on_duty(platform, me)
    await platform.client.post("/v1/dispatch/drivers/me/positions", json={"pings": [ping(1)]}, headers=me)
    await platform.client.post("/v1/dispatch/drivers/me/state", json={"state": "offline"}, headers=me)
    read = (await platform.client.get(f"/v1/dispatch/drivers/{driver['id']}", headers=headers)).json()

    assert_problem(refused, 409, "driver-offline")
    assert (read["position"], read["stale"]) == (None, True)


@pytest.mark.parametrize(
    ("pings", "field"),
    [
        ([], "pings"),
        ([ping(1)] * 101, "pings"),
        ([ping(1, lat=91)], "pings.0.lat"),
        ([ping(1, lon=-181)], "pings.0.lon"),
        # A day ahead: the pings are made when the tests are collected, maybe minutes before this runs.
        ([ping(1), ping(-86_400)], "pings.1.recorded_at"),
        ([{**ping(1), "recorded_at": "2026-05-04T10:00:00"}], "pings.0.recorded_at"),
        ([ping(1, accuracy_m=-1)], "pings.0.accuracy_m"),
        ([ping(1, heading=360)], "pings.0.heading"),
        ([ping(1, speed=-2)], "pings.0.speed"),
    ],
)
async def test_bad_pings_are_a_422_naming_the_ping(
    platform: RunningPlatform, pings: list[dict[str, Any]], field: str
) -> None:
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    _, me = await a_driver(platform, tenant, headers)
    await on_duty(platform, me)

    response = await platform.client.post(
        "/v1/dispatch/drivers/me/positions", json={"pings": pings}, headers=me
    )

    assert fields_of(response) == [field]


async def test_a_track_window_the_wrong_way_round_is_a_422(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, _ = await a_driver(platform, tenant, headers)

    response = await platform.client.get(
        f"/v1/dispatch/drivers/{driver['id']}/track",
        params={"from": "2026-05-04T12:00:00Z", "to": "2026-05-04T11:00:00Z"},
        headers=headers,
    )

    assert fields_of(response) == ["from"]
