"""The geo store in the process, for the all-in-one shape: a grid of cells per tenant."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from doorstep.dispatch.domain.geometry import EARTH_RADIUS_M, Point, distance_m
from doorstep.dispatch.ports import LivePosition, Nearby
from doorstep.kernel.clock import utcnow

# About 1.1 km of latitude: a city-sized radius reads a few dozen cells rather than every driver.
CELL_DEGREES = 0.01
# Beyond this many cells a search reads every driver of the tenant instead.
MAX_CELLS = 400
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180

Cell = tuple[int, int]


class _TenantIndex:
    def __init__(self) -> None:
        self.positions: dict[str, LivePosition] = {}
        self.cells: dict[Cell, set[str]] = {}

    def put(self, driver_id: str, position: LivePosition) -> None:
        self.drop(driver_id)
        self.positions[driver_id] = position
        self.cells.setdefault(_cell(position.point), set()).add(driver_id)

    def drop(self, driver_id: str) -> None:
        old = self.positions.pop(driver_id, None)
        if old is None:
            return
        cell = _cell(old.point)
        members = self.cells[cell]
        members.discard(driver_id)
        if not members:
            del self.cells[cell]

    def candidates(self, point: Point, radius_m: float) -> list[str]:
        lat_span = radius_m / METRES_PER_DEGREE
        cos_lat = math.cos(math.radians(min(89.0, abs(point.lat) + lat_span)))
        lon_span = radius_m / (METRES_PER_DEGREE * max(cos_lat, 1e-6))
        low = _cell(Point(lat=point.lat - lat_span, lon=point.lon - lon_span))
        high = _cell(Point(lat=point.lat + lat_span, lon=point.lon + lon_span))
        rows, columns = high[0] - low[0] + 1, high[1] - low[1] + 1
        if rows * columns > MAX_CELLS or rows * columns > len(self.cells):
            return list(self.positions)
        found: list[str] = []
        for row in range(low[0], high[0] + 1):
            for column in range(low[1], high[1] + 1):
                found.extend(self.cells.get((row, column), ()))
        return found


def _cell(point: Point) -> Cell:
    return math.floor(point.lat / CELL_DEGREES), math.floor(point.lon / CELL_DEGREES)


class MemoryGeoStore:
    """Latest positions in dictionaries; only this process sees them (the all-in-one shape)."""

    def __init__(self, *, stale_after: timedelta, clock: Callable[[], datetime] = utcnow) -> None:
        self._stale_after = stale_after
        self._clock = clock
        self._tenants: dict[str, _TenantIndex] = {}

    async def update(self, tenant_id: str, driver_id: str, point: Point, at: datetime) -> bool:
        index = self._tenants.setdefault(tenant_id, _TenantIndex())
        current = index.positions.get(driver_id)
        if current is not None and current.at > at:
            return False
        index.put(driver_id, LivePosition(point=point, at=at))
        return True

    async def nearest(self, tenant_id: str, point: Point, radius_m: float, limit: int) -> list[Nearby]:
        index = self._tenants.get(tenant_id)
        if index is None:
            return []
        fresh_since = self._clock() - self._stale_after
        found: list[Nearby] = []
        for driver_id in index.candidates(point, radius_m):
            position = index.positions[driver_id]
            if position.at < fresh_since:
                continue
            distance = distance_m(point, position.point)
            if distance <= radius_m:
                found.append(Nearby(driver_id=driver_id, distance_m=distance))
        found.sort(key=lambda nearby: (nearby.distance_m, nearby.driver_id))
        return found[:limit]

    async def remove(self, tenant_id: str, driver_id: str) -> None:
        index = self._tenants.get(tenant_id)
        if index is not None:
            index.drop(driver_id)

    async def position(self, tenant_id: str, driver_id: str) -> LivePosition | None:
        index = self._tenants.get(tenant_id)
        return index.positions.get(driver_id) if index else None

    async def positions(self, tenant_id: str, driver_ids: Sequence[str]) -> dict[str, LivePosition]:
        index = self._tenants.get(tenant_id)
        if index is None:
            return {}
        return {d: index.positions[d] for d in driver_ids if d in index.positions}
