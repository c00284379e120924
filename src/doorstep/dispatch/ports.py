"""What the dispatch service needs from outside: the geo store of live positions, travel times."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from doorstep.dispatch.domain.geometry import Point
from doorstep.dispatch.routing.model import TravelMatrices


@dataclass(frozen=True, slots=True)
class LivePosition:
    point: Point
    at: datetime  # when the driver's device recorded it


@dataclass(frozen=True, slots=True)
class Nearby:
    driver_id: str
    distance_m: float


class GeoStore(Protocol):
    """Each driver's latest position, per tenant, searchable by distance.

    High-frequency and disposable: it is not in the database and not behind the outbox. In the
    all-in-one shape an in-process index; in the distributed shape Redis GEO, shared by every process.
    """

    async def update(self, tenant_id: str, driver_id: str, point: Point, at: datetime) -> bool:
        """Keep `point` as the driver's position unless a newer one is there; whether it was kept."""

    async def nearest(self, tenant_id: str, point: Point, radius_m: float, limit: int) -> list[Nearby]:
        """Up to `limit` drivers within `radius_m`, nearest first, leaving out those gone stale."""

    async def remove(self, tenant_id: str, driver_id: str) -> None:
        """Forget the driver's position (off duty, removed)."""

    async def position(self, tenant_id: str, driver_id: str) -> LivePosition | None: ...

    async def positions(self, tenant_id: str, driver_ids: Sequence[str]) -> dict[str, LivePosition]:
        """The positions of those of the drivers that have one."""


class TravelTimes(Protocol):
    """How long and how far between places, by vehicle profile (`car`, `bicycle`, ... `robot`).

    Great-circle distance with a speed profile by default; a road network (OSRM) where one is set up.
    """

    async def matrices(self, points: Sequence[Point], profile: str) -> TravelMatrices:
        """Durations (s) and distances (m) from every point to every point, in the points' order."""
        ...
