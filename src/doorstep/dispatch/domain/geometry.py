"""Points, great-circle distances and GeoJSON service zones: validation and point-in-zone. No I/O."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from doorstep.dispatch.domain.errors import InvalidZone

EARTH_RADIUS_M = 6_371_008.8
# Web Mercator's limit, which Redis GEO shares: positions beyond it cannot be indexed.
MAX_LATITUDE = 85.05112878
MAX_ZONE_VERTICES = 2_000

Position = tuple[float, float]  # (lon, lat), GeoJSON's order
Ring = tuple[Position, ...]


@dataclass(frozen=True, slots=True)
class Point:
    lat: float
    lon: float


def distance_m(a: Point, b: Point) -> float:
    """Great-circle (haversine) distance in metres."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Polygon:
    """An outer ring and its holes, each closed (first position == last)."""

    outer: Ring
    holes: tuple[Ring, ...] = ()

    def contains(self, point: Point) -> bool:
        return _in_ring(self.outer, point) and not any(_in_ring(hole, point) for hole in self.holes)


@dataclass(frozen=True, slots=True)
class Area:
    """A validated Polygon or MultiPolygon, with its bounding box for a quick first test."""

    polygons: tuple[Polygon, ...]
    bbox: tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat

    def contains(self, point: Point) -> bool:
        min_lon, min_lat, max_lon, max_lat = self.bbox
        if not (min_lon <= point.lon <= max_lon and min_lat <= point.lat <= max_lat):
            return False
        return any(polygon.contains(point) for polygon in self.polygons)

    def geojson(self) -> dict[str, Any]:
        def rings(polygon: Polygon) -> list[list[list[float]]]:
            return [[list(p) for p in ring] for ring in (polygon.outer, *polygon.holes)]

        if len(self.polygons) == 1:
            return {"type": "Polygon", "coordinates": rings(self.polygons[0])}
        return {"type": "MultiPolygon", "coordinates": [rings(p) for p in self.polygons]}


def parse_area(geometry: Any, *, field: str = "geometry", max_vertices: int = MAX_ZONE_VERTICES) -> Area:
    """Check a GeoJSON Polygon or MultiPolygon (RFC 7946); `InvalidZone` names the part that is wrong."""
    if not isinstance(geometry, dict):
        raise InvalidZone("a zone is a GeoJSON Polygon or MultiPolygon object", field=field)
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [_polygon(coordinates, f"{field}.coordinates")]
    elif kind == "MultiPolygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise InvalidZone("a MultiPolygon has a list of polygons", field=f"{field}.coordinates")
        polygons = [_polygon(part, f"{field}.coordinates.{i}") for i, part in enumerate(coordinates)]
    else:
        raise InvalidZone("the type is Polygon or MultiPolygon", field=f"{field}.type")
    vertices = sum(len(ring) for polygon in polygons for ring in (polygon.outer, *polygon.holes))
    if vertices > max_vertices:
        raise InvalidZone(
            f"a zone has at most {max_vertices} vertices, this one {vertices}", field=f"{field}.coordinates"
        )
    lons = [lon for polygon in polygons for lon, _ in polygon.outer]
    lats = [lat for polygon in polygons for _, lat in polygon.outer]
    return Area(tuple(polygons), (min(lons), min(lats), max(lons), max(lats)))


def _polygon(rings: Any, field: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise InvalidZone("a polygon is a list of linear rings, the outer one first", field=field)
    parsed = [_ring(ring, f"{field}.{i}") for i, ring in enumerate(rings)]
    return Polygon(parsed[0], tuple(parsed[1:]))


def _ring(ring: Any, field: str) -> Ring:
    if not isinstance(ring, list) or len(ring) < 4:
        raise InvalidZone("a linear ring has at least 4 positions", field=field)
    positions = tuple(_position(p, f"{field}.{i}") for i, p in enumerate(ring))
    if positions[0] != positions[-1]:
        raise InvalidZone("a linear ring is closed: its last position equals its first", field=field)
    if len(set(positions)) < 3:
        raise InvalidZone("a linear ring has at least 3 distinct positions", field=field)
    if _signed_area(positions) == 0:
        raise InvalidZone("a linear ring encloses an area", field=field)
    return positions


def _position(position: Any, field: str) -> Position:
    if (
        not isinstance(position, list | tuple)
        or len(position) not in (2, 3)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in position)
    ):
        raise InvalidZone("a position is [longitude, latitude]", field=field)
    lon, lat = float(position[0]), float(position[1])
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise InvalidZone("the longitude is between -180 and 180", field=f"{field}.0")
    if not (math.isfinite(lat) and -MAX_LATITUDE <= lat <= MAX_LATITUDE):
        raise InvalidZone(f"the latitude is between -{MAX_LATITUDE} and {MAX_LATITUDE}", field=f"{field}.1")
    return lon, lat


def _signed_area(ring: Sequence[Position]) -> float:
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring)) / 2


def _in_ring(ring: Ring, point: Point) -> bool:
    """Ray casting (even-odd rule) on plane lon/lat: exact enough for city-sized zones."""
    x, y = point.lon, point.lat
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside
