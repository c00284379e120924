"""Rate-card pricing: base + distance + time, size, peak windows at their edges, zones with holes, minimum."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from doorstep.contracts.orders import GeoPoint
from doorstep.integrations.deliveries.domain.geo import in_polygon
from doorstep.integrations.deliveries.domain.rate_card import FeeLine, RateCard, Size, price

# A square around Kreuzberg with a square hole in its middle (GeoJSON: [lon, lat], rings closed).
OUTER = [[13.40, 52.49], [13.44, 52.49], [13.44, 52.51], [13.40, 52.51], [13.40, 52.49]]
HOLE = [[13.415, 52.495], [13.425, 52.495], [13.425, 52.505], [13.415, 52.505], [13.415, 52.495]]
IN_ZONE = GeoPoint(lat=52.50, lon=13.405)
IN_HOLE = GeoPoint(lat=52.50, lon=13.42)
OUTSIDE = GeoPoint(lat=52.52, lon=13.38)
# Monday 23 November 2026; Berlin is UTC+1 then.
MONDAY_NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def card(**overrides: Any) -> RateCard:
    body: dict[str, Any] = {"currency": "EUR", "base_fee": 300, "per_km": 100, "per_minute": 20}
    body.update(overrides)
    return RateCard.model_validate(body)


def priced(rate_card: RateCard, **overrides: Any) -> tuple[list[tuple[str, int]], int]:
    arguments: dict[str, Any] = {
        "distance_m": 5000,
        "duration_s": 900,
        "size": Size.MEDIUM,
        "pickup_at": MONDAY_NOON,
        "pickup": OUTSIDE,
        "dropoff": OUTSIDE,
    }
    arguments.update(overrides)
    result = price(rate_card, **arguments)
    return [(line.kind, line.amount) for line in result.lines], result.total


def test_base_plus_distance_plus_minutes() -> None:
    # Given 3.00 base, 1.00 per km and 0.20 per minute
    # When 5 km taking 15 minutes are priced
    result = price(
        card(),
        distance_m=5000,
        duration_s=900,
        size=Size.MEDIUM,
        pickup_at=MONDAY_NOON,
        pickup=OUTSIDE,
        dropoff=OUTSIDE,
    )

    # Then the lines are 300 + 500 + 300, in the card's currency
    assert result.lines == (
        FeeLine("base", "Base fee", 300),
        FeeLine("distance", "5.00 km at 100/km", 500),
        FeeLine("time", "15.0 min at 20/min", 300),
    )
    assert (result.total, result.currency) == (1100, "EUR")


def test_each_line_is_rounded_half_up_to_minor_units_and_the_total_is_their_sum() -> None:
    # Given rates with decimals: 43 per km over 3.5 km is 150.5; 0.35 per minute over 7.5 minutes is 2.625
    rate_card = card(base_fee=0, per_km=43, per_minute=0.35)

    # When priced
    lines, total = priced(rate_card, distance_m=3500, duration_s=450)

    # Then halves round up (not to even), and the total adds the rounded lines
    assert lines == [("base", 0), ("distance", 151), ("time", 3)]
    assert total == 154


@pytest.mark.parametrize(
    ("local_time", "expected_peak"),
    [
        ((16, 59, 59), None),  # just before the window
        ((17, 0, 0), 550),  # its start is inside
        ((19, 59, 59), 550),  # the last second is inside
        ((20, 0, 0), None),  # its end is outside
    ],
)
def test_a_peak_multiplier_applies_from_its_start_up_to_its_end_in_the_cards_time_zone(
    local_time: tuple[int, int, int], expected_peak: int | None
) -> None:
    # Given a peak on Mondays 17:00-20:00 Berlin time at 1.5 (and 1.2 on Tuesdays, which is not today)
    rate_card = card(
        time_zone="Europe/Berlin",
        peak_windows=[
            {"weekdays": ["mon"], "start": "17:00", "end": "20:00", "multiplier": 1.5},
            {"weekdays": ["tue"], "start": "00:00", "end": "24:00", "multiplier": 1.2},
        ],
    )
    hour, minute, second = local_time
    # When a Monday pickup at that Berlin time (an hour earlier in UTC) is priced
    lines, total = priced(rate_card, pickup_at=datetime(2026, 11, 23, hour - 1, minute, second, tzinfo=UTC))

    # Then the peak adds half of the 1,100 only inside the window
    peak = [amount for kind, amount in lines if kind == "peak"]
    assert peak == ([] if expected_peak is None else [expected_peak])
    assert total == 1100 + (expected_peak or 0)


def test_overlapping_peaks_take_the_highest_multiplier() -> None:
    # Given two windows covering Monday noon UTC
    rate_card = card(
        peak_windows=[
            {"weekdays": ["mon", "tue"], "start": "10:00", "end": "14:00", "multiplier": 1.25},
            {"weekdays": ["mon"], "start": "11:00", "end": "12:00", "multiplier": 2},
        ]
    )

    # When priced
    lines, total = priced(rate_card)

    # Then the doubling applies once
    assert lines[-1] == ("peak", 1100)
    assert total == 2200


def test_point_in_polygon_honours_holes() -> None:
    # Given a polygon with a hole
    rings = [OUTER, HOLE]

    # Then a point in the ring is in, one in the hole and one outside are not
    assert in_polygon(IN_ZONE.lon, IN_ZONE.lat, rings) is True
    assert in_polygon(IN_HOLE.lon, IN_HOLE.lat, rings) is False
    assert in_polygon(OUTSIDE.lon, OUTSIDE.lat, rings) is False
    # And without the hole the middle is in
    assert in_polygon(IN_HOLE.lon, IN_HOLE.lat, [OUTER]) is True


@pytest.mark.parametrize(
    ("pickup", "dropoff", "zone_lines"),
    [
        (IN_ZONE, OUTSIDE, [("zone", 250)]),
        (OUTSIDE, IN_ZONE, [("zone", 250)]),
        (IN_ZONE, IN_ZONE, [("zone", 250)]),  # once, even when both ends are in it
        (IN_HOLE, OUTSIDE, []),  # the hole is not the zone
        (OUTSIDE, OUTSIDE, []),
    ],
)
def test_a_zone_surcharge_applies_once_when_either_end_lies_in_the_zone(
    pickup: GeoPoint, dropoff: GeoPoint, zone_lines: list[tuple[str, int]]
) -> None:
    # Given a 2.50 surcharge for a zone with a hole
    rate_card = card(
        zones=[
            {"name": "Kreuzberg", "area": {"type": "Polygon", "coordinates": [OUTER, HOLE]}, "amount": 250}
        ]
    )

    # When priced
    lines, total = priced(rate_card, pickup=pickup, dropoff=dropoff)

    # Then the surcharge is one line, or none
    assert lines[3:] == zone_lines
    assert total == 1100 + sum(amount for _, amount in zone_lines)


def test_a_multipolygon_zone_covers_each_of_its_polygons() -> None:
    # Given a zone of two squares, the second far away
    far = [[13.0, 52.0], [13.1, 52.0], [13.1, 52.1], [13.0, 52.1], [13.0, 52.0]]
    area = {"type": "MultiPolygon", "coordinates": [[far], [OUTER, HOLE]]}
    rate_card = card(zones=[{"name": "Two parts", "area": area, "amount": 99}])

    # When a drop-off in the second square is priced
    lines, _ = priced(rate_card, dropoff=IN_ZONE)

    # Then the surcharge applies
    assert lines[-1] == ("zone", 99)


def test_the_minimum_fee_tops_up_a_cheap_delivery() -> None:
    # Given a 20.00 minimum
    rate_card = card(minimum_fee=2000)

    # When 1,100 worth is priced, and then 2,500 worth
    cheap, cheap_total = priced(rate_card)
    dear, dear_total = priced(rate_card, distance_m=19000)

    # Then the cheap one gets a top-up line to exactly the minimum, the dear one none
    assert cheap[-1] == ("minimum", 900)
    assert cheap_total == 2000
    assert [kind for kind, _ in dear] == ["base", "distance", "time"]
    assert dear_total == 2500


def test_a_size_multiplies_the_trip_and_adds_its_surcharge_before_the_peak() -> None:
    # Given large parcels at 1.2 plus 0.50, and a peak of 1.5 all Monday
    rate_card = card(
        sizes={"medium": {}, "large": {"multiplier": 1.2, "surcharge": 50}},
        peak_windows=[{"weekdays": ["mon"], "start": "00:00", "end": "24:00", "multiplier": 1.5}],
    )

    # When a large and a medium parcel are priced
    large, large_total = priced(rate_card, size=Size.LARGE)
    medium, medium_total = priced(rate_card, size=Size.MEDIUM)

    # Then the size line is 220 + 50, and the peak applies to the trip with it
    assert large[3:] == [("size", 270), ("peak", 685)]
    assert large_total == 2055
    assert medium[3:] == [("peak", 550)]
    assert medium_total == 1650


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {"peak_windows": [{"weekdays": ["mon"], "start": "20:00", "end": "17:00", "multiplier": 1.5}]},
            "peak_windows.0",
        ),
        (
            {"peak_windows": [{"weekdays": ["mon"], "start": "7:00", "end": "9:00", "multiplier": 1.5}]},
            "peak_windows.0.start",
        ),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        (
            {
                "zones": [
                    {
                        "name": "open",
                        "area": {"type": "Polygon", "coordinates": [[*OUTER[:-1], [13.0, 52.0]]]},
                        "amount": 1,
                    }
                ]
            },
            "zones.0.area.Polygon.coordinates.0",
        ),
        ({"per_km": -1}, "per_km"),
        ({"currency": "euro"}, "currency"),
    ],
)
def test_a_rate_card_that_makes_no_sense_is_refused_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    # When such a card is read
    with pytest.raises(ValidationError) as raised:
        card(**overrides)

    # Then the first error is located at the field
    assert ".".join(str(part) for part in raised.value.errors()[0]["loc"]) == field
