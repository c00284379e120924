"""The fleet over the API on the all-in-one platform: drivers, zones, teams, vehicles, shifts, duty states."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.identity.integration.test_users import PROBLEM_JSON, assert_problem, fields_of, signed_in
from tests.platform import RunningPlatform, Tenant, running_platform, scratch_postgres_database, settings_for

from doorstep.dispatch.adapters.tables import outbox
from doorstep.kernel.permissions import Role

MITTE = {
    "type": "Polygon",
    "coordinates": [[[13.37, 52.50], [13.43, 52.50], [13.43, 52.54], [13.37, 52.54], [13.37, 52.50]]],
}


@pytest.fixture
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """The all-in-one platform on SQLite files; on PostgreSQL too for the tests marked `BOTH_DATABASES`."""
    if getattr(request, "param", "sqlite") == "sqlite":
        async with running_platform(settings_for(tmp_path)) as running:
            yield running
        return
    server_url: str = request.getfixturevalue("postgres_server_url")
    async with (
        scratch_postgres_database(server_url) as url,
        running_platform(settings_for(tmp_path, database_url=url)) as running,
    ):
        yield running


BOTH_DATABASES = pytest.mark.parametrize(
    "platform", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)], indirect=True
)


async def post(platform: RunningPlatform, path: str, body: Any, headers: dict[str, str]) -> Any:
    response = await platform.client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def a_zone(platform: RunningPlatform, headers: dict[str, str], name: str = "Mitte") -> Any:
    return await post(platform, "/v1/dispatch/zones", {"name": name, "geometry": MITTE}, headers)


async def a_team(platform: RunningPlatform, headers: dict[str, str], name: str = "Bikes") -> Any:
    return await post(platform, "/v1/dispatch/teams", {"name": name}, headers)


def driver_body(user_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "name": "Ada Rider",
        "phone": "+49 30 1234567",
        "vehicle_type": "cargo_bike",
        "capacity": 4,
        "skills": ["hot_bag", "age_check"],
        **overrides,
    }


async def a_driver(
    platform: RunningPlatform, tenant: Tenant, headers: dict[str, str], email: str = "ada@a.test"
) -> tuple[Any, dict[str, str]]:
    """A driver user, signed in, and the driver profile a dispatcher registered for them."""
    user_id, driver_headers = await signed_in(platform, tenant, email, [Role.DRIVER.value])
    driver = await post(platform, "/v1/dispatch/drivers", driver_body(user_id), headers)
    return driver, driver_headers


async def dispatch_events(platform: RunningPlatform, event_type: str) -> list[dict[str, Any]]:
    async with platform.services["dispatch"].database.reader() as session:
        rows = (
            await session.execute(
                select(outbox.c.envelope).where(outbox.c.type == event_type).order_by(outbox.c.seq)
            )
        ).all()
    return [json.loads(row.envelope)["data"] for row in rows]


async def dispatcher(platform: RunningPlatform, tenant: Tenant) -> dict[str, str]:
    _, headers = await signed_in(platform, tenant, "dispatch@a.test", [Role.DISPATCHER.value])
    return headers


@BOTH_DATABASES
async def test_a_dispatcher_registers_reads_changes_and_removes_a_driver(platform: RunningPlatform) -> None:
    # Given a dispatcher, a zone and a team
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    zone, team = await a_zone(platform, headers), await a_team(platform, headers)

    # When they register a driver in that zone and team
    user_id, _ = await signed_in(platform, tenant, "ada@a.test", [Role.DRIVER.value])
    created = await post(
        platform,
        "/v1/dispatch/drivers",
        driver_body(user_id, home_zone_id=zone["id"], team_id=team["id"]),
        headers,
    )

    # Then the driver is offline, without a position, and reads back the same
    assert {k: created[k] for k in ("user_id", "state", "position", "stale", "skills", "home_zone_id")} == {
        "user_id": user_id,
        "state": "offline",
        "position": None,
        "stale": True,
        "skills": ["age_check", "hot_bag"],
        "home_zone_id": zone["id"],
    }
    read = await platform.client.get(f"/v1/dispatch/drivers/{created['id']}", headers=headers)
    assert read.json() == created

    # When the dispatcher changes the capacity and clears the team
    changed = await platform.client.patch(
        f"/v1/dispatch/drivers/{created['id']}", json={"capacity": 6, "team_id": None}, headers=headers
    )

    # Then only those change, and a removal afterwards leaves nothing to read
    assert changed.status_code == 200, changed.text
    assert (changed.json()["capacity"], changed.json()["team_id"], changed.json()["name"]) == (
        6,
        None,
        "Ada Rider",
    )
    removed = await platform.client.delete(f"/v1/dispatch/drivers/{created['id']}", headers=headers)
    assert removed.status_code == 204
    gone = await platform.client.get(f"/v1/dispatch/drivers/{created['id']}", headers=headers)
    assert_problem(gone, 404, "driver-not-found")
    # And each step was published and audited
    assert [
        e["driver_id"] for e in await dispatch_events(platform, "doorstep.dispatch.driver.registered.v1")
    ] == [created["id"]]
    [change] = await dispatch_events(platform, "doorstep.dispatch.driver.changed.v1")
    assert change["changed"] == ["capacity", "team_id"]
    audited = await dispatch_events(platform, "doorstep.audit.recorded.v1")
    assert [e["action"] for e in audited if e["object_id"] == created["id"]] == [
        "driver.registered",
        "driver.changed",
        "driver.removed",
    ]


async def test_drivers_are_listed_newest_first_in_cursor_pages_and_filtered(
    platform: RunningPlatform,
) -> None:
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    team = await a_team(platform, headers)
    ids = []
    for i in range(3):
        user_id, _ = await signed_in(platform, tenant, f"d{i}@a.test", [Role.DRIVER.value])
        body = driver_body(user_id, name=f"Driver {i}", team_id=team["id"] if i != 1 else None)
        ids.append((await post(platform, "/v1/dispatch/drivers", body, headers))["id"])

    first = (await platform.client.get("/v1/dispatch/drivers?limit=2", headers=headers)).json()
    second = (
        await platform.client.get(
            f"/v1/dispatch/drivers?limit=2&cursor={first['next_cursor']}", headers=headers
        )
    ).json()
    in_team = (
        await platform.client.get(f"/v1/dispatch/drivers?team_id={team['id']}", headers=headers)
    ).json()

    assert [d["id"] for d in first["items"]] + [d["id"] for d in second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert [d["id"] for d in in_team["items"]] == [ids[2], ids[0]]


async def test_a_driver_goes_on_duty_takes_a_break_and_a_dispatcher_ends_the_day(
    platform: RunningPlatform,
) -> None:
    # Given a registered driver, signed in
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, me = await a_driver(platform, tenant, headers)

    # When the driver goes on duty and on a break, and the dispatcher sends them off duty
    steps = [
        await platform.client.post("/v1/dispatch/drivers/me/state", json={"state": "available"}, headers=me),
        await platform.client.post("/v1/dispatch/drivers/me/state", json={"state": "on_break"}, headers=me),
        await platform.client.post(
            f"/v1/dispatch/drivers/{driver['id']}/state", json={"state": "offline"}, headers=headers
        ),
    ]

    # Then each step answered the driver in the new state, and each was published once, in order
    assert [(r.status_code, r.json()["state"]) for r in steps] == [
        (200, "available"),
        (200, "on_break"),
        (200, "offline"),
    ]
    changes = await dispatch_events(platform, "doorstep.dispatch.driver.state_changed.v1")
    assert [(c["previous"], c["state"], c["actor"].split(":")[0]) for c in changes] == [
        ("offline", "available", "user"),
        ("available", "on_break", "user"),
        ("on_break", "offline", "user"),
    ]


async def test_a_move_outside_the_duty_cycle_is_a_409_naming_the_allowed_states(
    platform: RunningPlatform,
) -> None:
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    _, me = await a_driver(platform, tenant, headers)

    response = await platform.client.post(
        "/v1/dispatch/drivers/me/state", json={"state": "on_break"}, headers=me
    )

    body = assert_problem(response, 409, "illegal-driver-transition")
    assert (body["current_state"], body["allowed_states"]) == ("offline", ["available"])


async def test_who_may_do_what_on_the_fleet(platform: RunningPlatform) -> None:
    # Given a dispatcher, a driver, merchant staff and a driver without a profile
    tenant = await platform.new_tenant()
    headers = await dispatcher(platform, tenant)
    driver, me = await a_driver(platform, tenant, headers)
    _, merchant = await signed_in(
        platform, tenant, "shop@a.test", [Role.MERCHANT_STAFF.value], merchant_ids=["m1"]
    )
    _, stranger = await signed_in(platform, tenant, "new@a.test", [Role.DRIVER.value])

    # When each tries what is not theirs to do
    answers = {
        "driver lists drivers": await platform.client.get("/v1/dispatch/drivers", headers=me),
        "driver registers a driver": await platform.client.post(
            "/v1/dispatch/drivers", json=driver_body("u-x"), headers=me
        ),
        "driver moves another": await platform.client.post(
            f"/v1/dispatch/drivers/{driver['id']}/state", json={"state": "available"}, headers=me
        ),
        "merchant reads the fleet": await platform.client.get("/v1/dispatch/zones", headers=merchant),
        "merchant goes on duty": await platform.client.post(
            "/v1/dispatch/drivers/me/state", json={"state": "available"}, headers=merchant
        ),
        "dispatcher sends positions": await platform.client.post(
            "/v1/dispatch/drivers/me/positions", json={"pings": []}, headers=headers
        ),
        "profile-less driver goes on duty": await platform.client.post(
            "/v1/dispatch/drivers/me/state", json={"state": "available"}, headers=stranger
        ),
    }

    # Then each is refused: 403 short of the permission, 404 for a driver without a profile
    assert {what: r.status_code for what, r in answers.items()} == {
        "driver lists drivers": 403,
        "driver registers a driver": 403,
        "driver moves another": 403,
        "merchant reads the fleet": 403,
        "merchant goes on duty": 403,
        "dispatcher sends positions": 403,
        "profile-less driver goes on duty": 404,
    }
    assert answers["profile-less driver goes on duty"].json()["type"].endswith("/not-a-driver")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"vehicle_type": "horse"}, "vehicle_type"),
        ({"capacity": 0}, "capacity"),
        ({"skills": ["juggling"]}, "skills.0"),
        ({"skills": ["cash", "cash"]}, "skills"),
        ({"phone": "call me"}, "phone"),
        ({"name": ""}, "name"),
        ({"home_zone_id": "no-such-zone"}, "home_zone_id"),
        ({"team_id": "no-such-team"}, "team_id"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_bad_driver_is_a_422_naming_the_field(
    platform: RunningPlatform, body: dict[str, Any], field: str
) -> None:
    tenant = await platform.new_tenant()
    response = await platform.client.post(
        "/v1/dispatch/drivers", json=driver_body("u-1", **body), headers=tenant.headers
    )

    assert fields_of(response) == [field]


async def test_a_user_has_one_driver_profile(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    await post(platform, "/v1/dispatch/drivers", driver_body("u-1"), tenant.headers)

    again = await platform.client.post(
        "/v1/dispatch/drivers", json=driver_body("u-1"), headers=tenant.headers
    )

    assert_problem(again, 409, "user-already-a-driver")


async def test_a_patch_that_clears_a_required_field_is_a_422(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    driver = await post(platform, "/v1/dispatch/drivers", driver_body("u-1"), tenant.headers)

    response = await platform.client.patch(
        f"/v1/dispatch/drivers/{driver['id']}", json={"capacity": None}, headers=tenant.headers
    )

    assert fields_of(response) == ["capacity"]


@BOTH_DATABASES
async def test_zones_teams_and_vehicles_have_their_crud(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    h = tenant.headers
    zone = await a_zone(platform, h)
    team = await a_team(platform, h)
    vehicle = await post(
        platform,
        "/v1/dispatch/vehicles",
        {"name": "Van 1", "plate": "B-DS 1", "vehicle_type": "van", "capacity": 40},
        h,
    )

    redrawn_square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    changes = [
        await platform.client.patch(
            f"/v1/dispatch/zones/{zone['id']}", json={"geometry": redrawn_square}, headers=h
        ),
        await platform.client.patch(f"/v1/dispatch/teams/{team['id']}", json={"name": "Vans"}, headers=h),
        await platform.client.patch(
            f"/v1/dispatch/vehicles/{vehicle['id']}", json={"plate": None}, headers=h
        ),
    ]

    assert [r.status_code for r in changes] == [200, 200, 200]
    assert changes[0].json()["bbox"] == [0, 0, 1, 1]
    assert (changes[1].json()["name"], changes[2].json()["plate"]) == ("Vans", None)
    listed = {
        kind: [
            item["id"]
            for item in (await platform.client.get(f"/v1/dispatch/{kind}", headers=h)).json()["items"]
        ]
        for kind in ("zones", "teams", "vehicles")
    }
    assert listed == {"zones": [zone["id"]], "teams": [team["id"]], "vehicles": [vehicle["id"]]}
    for kind, made in (("zones", zone), ("teams", team), ("vehicles", vehicle)):
        assert (
            await platform.client.delete(f"/v1/dispatch/{kind}/{made['id']}", headers=h)
        ).status_code == 204
        assert (await platform.client.get(f"/v1/dispatch/{kind}/{made['id']}", headers=h)).status_code == 404


async def test_a_zone_or_team_a_driver_refers_to_is_not_removed(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    zone, team = await a_zone(platform, tenant.headers), await a_team(platform, tenant.headers)
    await post(
        platform,
        "/v1/dispatch/drivers",
        driver_body("u-1", home_zone_id=zone["id"], team_id=team["id"]),
        tenant.headers,
    )

    zone_removal = await platform.client.delete(f"/v1/dispatch/zones/{zone['id']}", headers=tenant.headers)
    team_removal = await platform.client.delete(f"/v1/dispatch/teams/{team['id']}", headers=tenant.headers)

    assert_problem(zone_removal, 409, "still-referenced")
    assert_problem(team_removal, 409, "still-referenced")


@pytest.mark.parametrize(
    ("geometry", "field"),
    [
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "geometry.coordinates.0"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 95], [1, 1], [0, 0]]]},
            "geometry.coordinates.0.1.1",
        ),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "geometry.type"),
    ],
)
async def test_a_bad_zone_is_a_422_naming_the_part(
    platform: RunningPlatform, geometry: Any, field: str
) -> None:
    tenant = await platform.new_tenant()

    response = await platform.client.post(
        "/v1/dispatch/zones", json={"name": "Bad", "geometry": geometry}, headers=tenant.headers
    )

    assert response.headers["content-type"] == PROBLEM_JSON
    assert fields_of(response) == [field]


@BOTH_DATABASES
async def test_shifts_with_breaks_are_scheduled_moved_and_cancelled(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    h = tenant.headers
    driver = await post(platform, "/v1/dispatch/drivers", driver_body("u-1"), h)
    body = {
        "driver_id": driver["id"],
        "starts_at": "2026-05-04T10:00:00+02:00",
        "ends_at": "2026-05-04T18:00:00+02:00",
        "breaks": [{"starts_at": "2026-05-04T13:00:00+02:00", "ends_at": "2026-05-04T13:30:00+02:00"}],
    }

    shift = await post(platform, "/v1/dispatch/shifts", body, h)
    overlapping = await platform.client.post(
        "/v1/dispatch/shifts",
        json={
            **body,
            "breaks": [],
            "starts_at": "2026-05-04T17:00:00+02:00",
            "ends_at": "2026-05-04T20:00:00+02:00",
        },
        headers=h,
    )
    moved = await platform.client.patch(
        f"/v1/dispatch/shifts/{shift['id']}", json={"ends_at": "2026-05-04T19:00:00+02:00"}, headers=h
    )
    listed = await platform.client.get(f"/v1/dispatch/shifts?driver_id={driver['id']}", headers=h)
    cancelled = await platform.client.delete(f"/v1/dispatch/shifts/{shift['id']}", headers=h)

    assert (shift["starts_at"], shift["breaks"][0]["ends_at"]) == (
        "2026-05-04T08:00:00Z",
        "2026-05-04T11:30:00Z",
    )
    assert fields_of(overlapping) == ["starts_at"]
    assert moved.json()["ends_at"] == "2026-05-04T17:00:00Z"
    assert [s["id"] for s in listed.json()["items"]] == [shift["id"]]
    assert cancelled.status_code == 204
    assert [
        e["shift_id"] for e in await dispatch_events(platform, "doorstep.dispatch.shift.cancelled.v1")
    ] == [shift["id"]]


async def test_a_shift_for_an_unknown_driver_or_ending_first_is_a_422(platform: RunningPlatform) -> None:
    tenant = await platform.new_tenant()
    driver = await post(platform, "/v1/dispatch/drivers", driver_body("u-1"), tenant.headers)
    times = {"starts_at": "2026-05-04T10:00:00Z", "ends_at": "2026-05-04T18:00:00Z"}

    unknown = await platform.client.post(
        "/v1/dispatch/shifts", json={"driver_id": "nobody", **times}, headers=tenant.headers
    )
    backwards = await platform.client.post(
        "/v1/dispatch/shifts",
        json={"driver_id": driver["id"], "starts_at": times["ends_at"], "ends_at": times["starts_at"]},
        headers=tenant.headers,
    )
    naive = await platform.client.post(
        "/v1/dispatch/shifts",
        json={"driver_id": driver["id"], "starts_at": "2026-05-04T10:00:00", "ends_at": times["ends_at"]},
        headers=tenant.headers,
    )

    assert (fields_of(unknown), fields_of(backwards), fields_of(naive)) == (
        ["driver_id"],
        ["ends_at"],
        ["starts_at"],
    )
