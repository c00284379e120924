"""Great-circle distances and point-in-polygon for GeoJSON rings, in plain Python."""

from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_KM = 6371.0088

# A GeoJSON position is [lon, lat] (an altitude may follow); a ring is closed (first == last).
Position = Sequence[float]
Ring = Sequence[Position]


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The haversine distance between two points on the mean Earth sphere."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def in_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Ray casting (even-odd rule) on planar lon/lat: fine for zones a city wide."""
    inside = False
    count = len(ring)
    j = count - 1
    for i in range(count):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def in_polygon(lon: float, lat: float, rings: Sequence[Ring]) -> bool:
    """Inside the exterior ring (the first) and outside every hole (the others)."""
    if not rings or not in_ring(lon, lat, rings[0]):
        return False
    return not any(in_ring(lon, lat, hole) for hole in rings[1:])
