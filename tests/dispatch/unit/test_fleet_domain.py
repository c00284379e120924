"""The fleet's rules without I/O: duty states, service zones, shifts and the downsampled track."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorstep.contracts.dispatch import DriverRegistered, DriverStateChanged
from doorstep.dispatch.domain.errors import IllegalDriverTransition, InvalidFleetInput, InvalidZone
from doorstep.dispatch.domain.geometry import Point, distance_m, parse_area
from doorstep.dispatch.domain.model import Break, Driver, DriverState, Shift, Skill, VehicleType
from doorstep.dispatch.domain.tracks import Ping, check_recorded, downsample
from doorstep.kernel.errors import InvalidInput

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
S = DriverState

# Berlin Mitte, roughly, with the Museum Island cut out as a hole.
MITTE = {
    "type": "Polygon",
    "coordinates": [
        [[13.37, 52.50], [13.43, 52.50], [13.43, 52.54], [13.37, 52.54], [13.37, 52.50]],
        [[13.395, 52.515], [13.405, 52.515], [13.405, 52.522], [13.395, 52.522], [13.395, 52.515]],
    ],
}


def a_driver() -> Driver:
    return Driver.register(
        id="d-1",
        tenant_id="t-1",
        user_id="u-1",
        now=NOW,
        name="Ada",
        phone=None,
        vehicle_type=VehicleType.CARGO_BIKE,
        capacity=4,
        skills=frozenset({Skill.HOT_BAG}),
        home_zone_id=None,
        team_id=None,
    )


def test_a_new_driver_is_offline_and_registered() -> None:
    driver = a_driver()

    assert driver.state is S.OFFLINE
    assert driver.events == [
        DriverRegistered(
            driver_id="d-1",
            user_id="u-1",
            name="Ada",
            vehicle_type="cargo_bike",
            capacity=4,
            skills=["hot_bag"],
            home_zone_id=None,
            team_id=None,
            occurred_at=NOW,
        )
    ]


@pytest.mark.parametrize(
    ("path", "final"),
    [
        ([S.AVAILABLE], S.AVAILABLE),
        ([S.AVAILABLE, S.ON_BREAK, S.AVAILABLE], S.AVAILABLE),
        ([S.AVAILABLE, S.ON_JOB, S.AVAILABLE, S.OFFLINE], S.OFFLINE),
        ([S.AVAILABLE, S.ON_BREAK, S.OFFLINE], S.OFFLINE),
        ([S.AVAILABLE, S.ON_JOB, S.OFFLINE], S.OFFLINE),
    ],
)
def test_the_duty_cycle_moves_along_its_transitions(path: list[DriverState], final: DriverState) -> None:
    # Given an offline driver
    driver = a_driver()
    driver.events.clear()

    # When it walks the path
    moved = [driver.move_to(state, actor="user:u-1", now=NOW) for state in path]

    # Then each step changed the state and published it
    assert moved == [True] * len(path)
    assert driver.state is final
    previous = [S.OFFLINE, *path[:-1]]
    assert [(e.previous, e.state) for e in driver.events if isinstance(e, DriverStateChanged)] == [
        (p.value, s.value) for p, s in zip(previous, path, strict=True)
    ]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], S.ON_JOB),
        ([], S.ON_BREAK),
        ([S.AVAILABLE, S.ON_BREAK], S.ON_JOB),
        ([S.AVAILABLE, S.ON_JOB], S.ON_BREAK),
    ],
)
def test_a_move_outside_the_cycle_is_refused_naming_what_is_allowed(
    path: list[DriverState], refused: DriverState
) -> None:
    driver = a_driver()
    for state in path:
        driver.move_to(state, actor="user:u-1", now=NOW)
    before = (driver.state, len(driver.events))

    with pytest.raises(IllegalDriverTransition) as raised:
        driver.move_to(refused, actor="user:u-1", now=NOW)

    assert raised.value.extensions["requested_state"] == refused.value
    assert raised.value.extensions["allowed_states"] == sorted(s.value for s in driver.allowed_states)
    assert (driver.state, len(driver.events)) == before


def test_moving_to_the_same_state_changes_nothing() -> None:
    driver = a_driver()
    driver.events.clear()

    assert driver.move_to(S.OFFLINE, actor="user:u-1", now=NOW) is False
    assert driver.events == []


def test_a_zone_knows_which_points_it_contains() -> None:
    area = parse_area(MITTE)

    assert area.contains(Point(lat=52.5200, lon=13.3850))  # inside, west of the hole
    assert not area.contains(Point(lat=52.5180, lon=13.4000))  # inside the hole
    assert not area.contains(Point(lat=52.4900, lon=13.4000))  # south of the zone
    assert not area.contains(Point(lat=52.5200, lon=13.4500))  # east of the zone
    assert area.bbox == (13.37, 52.50, 13.43, 52.54)


def test_a_multipolygon_contains_the_points_of_each_part() -> None:
    area = parse_area(
        {
            "type": "MultiPolygon",
            "coordinates": [
                [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
                [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]],
            ],
        }
    )

    assert [area.contains(Point(lat=y, lon=x)) for x, y in [(0.5, 0.5), (5.5, 5.5), (3, 3)]] == [
        True,
        True,
        False,
    ]
    assert area.geojson()["type"] == "MultiPolygon"


@pytest.mark.parametrize(
    ("geometry", "field"),
    [
        ([1, 2], "geometry"),
        ({"type": "Point", "coordinates": [13.4, 52.5]}, "geometry.type"),
        ({"type": "Polygon", "coordinates": []}, "geometry.coordinates"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0.5]]]}, "geometry.coordinates.0"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "geometry.coordinates.0"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]}, "geometry.coordinates.0"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [181, 0], [1, 1], [0, 0]]]},
            "geometry.coordinates.0.1.0",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 91], [1, 1], [0, 0]]]},
            "geometry.coordinates.0.1.1",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], ["1", 0], [1, 1], [0, 0]]]},
            "geometry.coordinates.0.1",
        ),
        (
            {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[0, 0]]]]},
            "geometry.coordinates.1.0",
        ),
    ],
)
def test_an_invalid_zone_names_the_part_that_is_wrong(geometry: object, field: str) -> None:
    with pytest.raises(InvalidZone) as raised:
        parse_area(geometry)

    assert raised.value.field == field


def test_a_zone_has_at_most_the_vertex_limit() -> None:
    ring = [[i / 1000, (i % 2) / 1000] for i in range(10)]
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    zigzag = {"type": "Polygon", "coordinates": [[*ring, [0, 1], ring[0]]]}

    assert parse_area(square, max_vertices=5).bbox == (0, 0, 1, 1)
    with pytest.raises(InvalidZone) as raised:
        parse_area(zigzag, max_vertices=11)
    assert raised.value.field == "geometry.coordinates"


def test_distances_are_great_circle_metres() -> None:
    # One degree of latitude is 111.2 km; Berlin's TV tower to the Brandenburg Gate about 2.3 km.
    assert round(distance_m(Point(lat=0, lon=0), Point(lat=1, lon=0))) == 111_195
    assert round(distance_m(Point(lat=52.5208, lon=13.4094), Point(lat=52.5163, lon=13.3777))) == 2_203


def test_breaks_lie_within_their_shift_in_order() -> None:
    start = NOW
    shift = Shift(
        id="s-1",
        tenant_id="t-1",
        driver_id="d-1",
        starts_at=start,
        ends_at=start + timedelta(hours=8),
        breaks=(Break(start + timedelta(hours=4), start + timedelta(hours=4, minutes=30)),),
        created_at=NOW,
    )

    assert shift.covers(start + timedelta(hours=1))
    assert not shift.covers(start + timedelta(hours=8))
    assert shift.on_break(start + timedelta(hours=4, minutes=10))
    assert not shift.on_break(start + timedelta(hours=5))


@pytest.mark.parametrize(
    ("ends_after", "breaks", "field"),
    [
        (timedelta(0), (), "ends_at"),
        (timedelta(hours=25), (), "ends_at"),
        (timedelta(hours=8), ((timedelta(hours=2), timedelta(hours=1)),), "breaks.0.ends_at"),
        (timedelta(hours=8), ((timedelta(hours=7), timedelta(hours=9)),), "breaks.0.starts_at"),
        (
            timedelta(hours=8),
            ((timedelta(hours=3), timedelta(hours=4)), (timedelta(hours=3, minutes=30), timedelta(hours=5))),
            "breaks.1.starts_at",
        ),
    ],
)
def test_an_impossible_shift_names_the_field(
    ends_after: timedelta, breaks: tuple[tuple[timedelta, timedelta], ...], field: str
) -> None:
    with pytest.raises(InvalidFleetInput) as raised:
        Shift(
            id="s-1",
            tenant_id="t-1",
            driver_id="d-1",
            starts_at=NOW,
            ends_at=NOW + ends_after,
            breaks=tuple(Break(NOW + a, NOW + b) for a, b in breaks),
            created_at=NOW,
        )

    assert raised.value.field == field


def ping(seconds: float, north_m: float = 0.0) -> Ping:
    # 1 m of latitude is 1 / 111_195 degrees.
    return Ping(Point(lat=52.5 + north_m / 111_195, lon=13.4), NOW + timedelta(seconds=seconds))


def test_the_track_keeps_a_point_per_15_seconds_or_per_25_metres() -> None:
    # Given pings every 5 s: standing still for 30 s, then moving 10 m a second
    pings = [ping(t) for t in range(0, 35, 5)] + [ping(30 + t, 10 * t) for t in range(1, 7)]

    # When it is downsampled from an empty track
    kept = downsample(reversed(pings), last_kept=None)

    # Then the first point, one each 15 s while still, and one per 25 m while moving are kept, in order
    assert [(p.recorded_at - NOW).total_seconds() for p in kept] == [0, 15, 30, 33, 36]


def test_a_batch_sent_again_adds_nothing_to_the_track() -> None:
    batch = [ping(0), ping(20), ping(40)]
    kept = downsample(batch, last_kept=None)

    assert downsample(batch, last_kept=kept[-1]) == []


def test_a_ping_from_the_future_is_refused_naming_it() -> None:
    check_recorded([ping(0), ping(30)], now=NOW)

    with pytest.raises(InvalidInput) as raised:
        check_recorded([ping(0), ping(31)], now=NOW)
    assert raised.value.field == "pings.1.recorded_at"
