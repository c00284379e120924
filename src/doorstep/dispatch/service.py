"""The dispatch service as the runtime holds it: the standard parts and its live positions."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from fastapi import Request

from doorstep.dispatch.ports import GeoStore, LivePosition, TravelTimes
from doorstep.infra.service import Service


@dataclass(frozen=True, slots=True)
class LivePositions:
    store: GeoStore
    stale_after: timedelta

    def is_stale(self, position: LivePosition | None, now: datetime) -> bool:
        """No position heard within `stale_after`: the driver's pings stopped (or never came)."""
        return position is None or now - position.at > self.stale_after


@dataclass
class DispatchService(Service):
    live: LivePositions | None = None
    travel_times: TravelTimes | None = None

    @classmethod
    def of(cls, service: Service, live: LivePositions, travel: TravelTimes) -> DispatchService:
        return cls(
            **{f.name: getattr(service, f.name) for f in fields(service)}, live=live, travel_times=travel
        )

    @property
    def positions(self) -> LivePositions:
        if self.live is None:
            raise RuntimeError("the dispatch service was built without its geo store")
        return self.live

    @property
    def travel(self) -> TravelTimes:
        if self.travel_times is None:
            raise RuntimeError("the dispatch service was built without travel times")
        return self.travel_times


async def dispatch_service(request: Request) -> DispatchService:
    service = request.app.state.services["dispatch"]
    if not isinstance(service, DispatchService):
        raise TypeError("the dispatch service was not built by doorstep.dispatch.bootstrap")
    return service
