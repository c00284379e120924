"""Great-circle travel times: distances stretched by the detour factor, durations at the profile's speed."""

from __future__ import annotations

import pytest

from doorstep.dispatch.adapters.travel_greatcircle import GreatCircleTravelTimes
from doorstep.dispatch.domain.geometry import Point, distance_m

ALEX = Point(52.5219, 13.4132)
ZOO = Point(52.5079, 13.3377)


async def test_matrices_are_detoured_distances_at_the_profile_speed() -> None:
    # Given a travel-time model with a 1.5 detour and bicycles at 5 m/s
    travel = GreatCircleTravelTimes(speeds={"bicycle": 5.0, "car": 10.0}, detour=1.5)

    # When it measures two places for a bicycle
    matrices = await travel.matrices([ALEX, ZOO], "bicycle")

    # Then the distances are the great-circle ones times 1.5, the durations those metres at 5 m/s
    metres = round(distance_m(ALEX, ZOO) * 1.5)
    assert matrices.distances == ((0, metres), (metres, 0))
    assert matrices.durations == ((0, round(metres / 5.0)), (round(metres / 5.0), 0))


async def test_an_unknown_profile_travels_by_car() -> None:
    travel = GreatCircleTravelTimes(speeds={"car": 10.0}, detour=1.0)

    matrices = await travel.matrices([ALEX, ZOO], "hovercraft")

    assert matrices.durations[0][1] == round(round(distance_m(ALEX, ZOO)) / 10.0)


@pytest.mark.parametrize(("speeds", "detour"), [({"car": 0.0}, 1.3), ({"car": 7.0}, 0.9)])
def test_nonsense_settings_are_refused(speeds: dict[str, float], detour: float) -> None:
    with pytest.raises(ValueError, match=r"detour|speeds"):
        GreatCircleTravelTimes(speeds=speeds, detour=detour)
