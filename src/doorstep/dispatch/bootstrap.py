"""Builds the dispatch service from settings. The one place its dependencies are wired."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from doorstep.dispatch import api, consumers, files_api, fleet_api, jobs_api, workers
from doorstep.dispatch.adapters.geo_memory import MemoryGeoStore
from doorstep.dispatch.adapters.geo_redis import RedisGeoStore
from doorstep.dispatch.adapters.tables import inbox, outbox
from doorstep.dispatch.adapters.travel_greatcircle import GreatCircleTravelTimes
from doorstep.dispatch.adapters.unit_of_work import DispatchUnitOfWork
from doorstep.dispatch.handlers import HANDLERS
from doorstep.dispatch.ports import GeoStore, TravelTimes
from doorstep.dispatch.service import DispatchService, LivePositions
from doorstep.infra.service import assemble
from doorstep.infra.shared import Shared, make_shared
from doorstep.kernel.settings import Settings

NAME = "dispatch"


def geo_store(settings: Settings, shared: Shared) -> GeoStore:
    """Redis GEO when the processes share a Redis (the distributed shape), else an in-process index."""
    stale_after = timedelta(seconds=settings.dispatch_stale_seconds)
    if shared.redis is not None:
        return RedisGeoStore(
            shared.redis, prefix=f"{settings.redis_prefix}dispatch:", stale_after=stale_after
        )
    return MemoryGeoStore(stale_after=stale_after)


def travel_times(settings: Settings) -> TravelTimes:
    """Great-circle distance with a speed per vehicle profile."""
    return GreatCircleTravelTimes()


def build(settings: Settings, shared: Shared | None = None) -> DispatchService:
    shared = shared or make_shared(settings)
    live = LivePositions(
        store=geo_store(settings, shared), stale_after=timedelta(seconds=settings.dispatch_stale_seconds)
    )
    travel = travel_times(settings)
    service = assemble(
        name=NAME,
        settings=settings,
        unit_of_work=DispatchUnitOfWork,
        outbox=outbox,
        inbox=inbox,
        handlers=HANDLERS,
        shared=shared,
        migrations=Path(__file__).parent / "migrations",
        routers=[api.router, fleet_api.router, jobs_api.router, files_api.router],
        consumers=consumers.subscriptions,
        dependencies={"geo_store": live.store, "travel": travel},
    )
    dispatch = DispatchService.of(service, live, travel)
    # Offers time out while the app runs, in every process that serves dispatch.
    dispatch.routers = [
        *dispatch.routers,
        workers.offer_expiry(dispatch.bus),
        files_api.files_router(settings),
    ]
    return dispatch
