"""Travel times without a road network: great-circle distance stretched by a detour factor, at a speed
per vehicle profile. Good enough to rank drivers and plan a city's routes; OSRM knows the streets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from doorstep.dispatch.domain.geometry import Point, distance_m
from doorstep.dispatch.routing.model import TravelMatrices

# Roads are not straight: a typical city detour over the great-circle distance.
DETOUR = 1.3
# Average speeds in a city, stops and lights included (m/s).
SPEEDS: Mapping[str, float] = MappingProxyType(
    {
        "foot": 1.4,
        "robot": 1.6,
        "bicycle": 4.2,
        "cargo_bike": 3.6,
        "scooter": 6.4,
        "car": 7.0,
        "van": 6.4,
    }
)


class GreatCircleTravelTimes:
    def __init__(self, *, speeds: Mapping[str, float] = SPEEDS, detour: float = DETOUR) -> None:
        if detour < 1.0:
            raise ValueError("the detour factor is at least 1")
        if any(speed <= 0 for speed in speeds.values()):
            raise ValueError("speeds must be positive")
        self.speeds = dict(speeds)
        self.detour = detour

    def speed(self, profile: str) -> float:
        """Metres per second; an unknown profile travels by car."""
        return self.speeds.get(profile, self.speeds.get("car", SPEEDS["car"]))

    def matrices_now(self, points: Sequence[Point], profile: str) -> TravelMatrices:
        speed = self.speed(profile)
        distances = tuple(tuple(round(distance_m(a, b) * self.detour) for b in points) for a in points)
        durations = tuple(tuple(round(metres / speed) for metres in row) for row in distances)
        return TravelMatrices(durations=durations, distances=distances)

    async def matrices(self, points: Sequence[Point], profile: str) -> TravelMatrices:
        return self.matrices_now(points, profile)
