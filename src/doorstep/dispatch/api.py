"""Dispatch HTTP API for drivers: profiles, duty states, live positions, nearby drivers, tracks."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from doorstep.dispatch import views
from doorstep.dispatch.domain.commands import (
    ChangeDriver,
    ChangeDriverState,
    RecordPositions,
    RegisterDriver,
    RemoveDriver,
)
from doorstep.dispatch.domain.errors import DriverNotFound
from doorstep.dispatch.domain.geometry import MAX_LATITUDE, Point
from doorstep.dispatch.domain.model import Driver, DriverState
from doorstep.dispatch.domain.tracks import MAX_BATCH, Ping
from doorstep.dispatch.handlers import PositionsRecorded
from doorstep.dispatch.schemas import (
    DriverIn,
    DriverOut,
    DriverPatch,
    PositionOut,
    driver_changes,
    in_utc,
)
from doorstep.dispatch.service import DispatchService, dispatch_service
from doorstep.kernel.auth import Principal, Requires
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.pagination import Page

router = APIRouter(prefix="/v1/dispatch", tags=["dispatch"])

Dispatch = Annotated[DispatchService, Depends(dispatch_service)]
Reads = Annotated[Principal, Depends(Requires("dispatch.read"))]
Assigns = Annotated[Principal, Depends(Requires("dispatch.assign"))]
Executes = Annotated[Principal, Depends(Requires("dispatch.execute"))]
MAX_TRACK_SPAN = timedelta(hours=24)


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: DriverState


class PingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-MAX_LATITUDE, le=MAX_LATITUDE)
    lon: float = Field(ge=-180, le=180)
    recorded_at: AwareDatetime = Field(description="When the device took the position (with its offset).")
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    speed: float | None = Field(default=None, ge=0, le=100, description="Metres per second.")
    heading: float | None = Field(default=None, ge=0, lt=360, description="Degrees clockwise from north.")


class PositionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pings: list[PingIn] = Field(min_length=1, max_length=MAX_BATCH)


class PositionsOut(BaseModel):
    received: int
    kept: int = Field(description="How many joined the driver's downsampled track.")
    latest_at: str | None


class NearbyOut(BaseModel):
    driver_id: str
    name: str
    state: DriverState
    distance_m: float
    position: PositionOut


class NearbyList(BaseModel):
    items: list[NearbyOut]


class TrackPointOut(BaseModel):
    lat: float
    lon: float
    recorded_at: AwareDatetime
    accuracy_m: float | None
    speed: float | None
    heading: float | None


async def _with_live(service: DispatchService, tenant_id: str, found: list[Driver]) -> list[DriverOut]:
    live = service.positions
    positions = await live.store.positions(tenant_id, [driver.id for driver in found])
    now = utcnow()
    return [
        DriverOut.of(driver, positions.get(driver.id), stale=live.is_stale(positions.get(driver.id), now))
        for driver in found
    ]


@router.post("/drivers", status_code=201, summary="Register a user of the tenant as a driver")
async def register_driver(body: DriverIn, principal: Assigns, service: Dispatch) -> DriverOut:
    driver: Driver = await service.bus.handle(
        RegisterDriver(tenant_id=principal.tenant_id, actor=principal.actor, **body.model_dump())
    )
    return DriverOut.of(driver, None, stale=True)


@router.get("/drivers", summary="The tenant's drivers, newest first, with their live positions")
async def list_drivers(
    principal: Reads,
    service: Dispatch,
    state: DriverState | None = None,
    team_id: Annotated[str | None, Query(max_length=36)] = None,
    home_zone_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[DriverOut]:
    found, next_cursor = await views.list_drivers(
        service.database,
        tenant_id=principal.tenant_id,
        state=state,
        team_id=team_id,
        home_zone_id=home_zone_id,
        limit=limit,
        cursor=cursor,
    )
    items = await _with_live(service, principal.tenant_id, found)
    return Page[DriverOut](items=items, next_cursor=next_cursor)


@router.get("/drivers/nearby", summary="Drivers with a fresh position near a point, nearest first")
async def nearby_drivers(
    principal: Reads,
    service: Dispatch,
    lat: Annotated[float, Query(ge=-MAX_LATITUDE, le=MAX_LATITUDE)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    radius_m: Annotated[float, Query(gt=0, le=100_000)] = 5_000,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> NearbyList:
    live = service.positions
    nearest = await live.store.nearest(principal.tenant_id, Point(lat=lat, lon=lon), radius_m, limit)
    ids = [n.driver_id for n in nearest]
    known = await views.drivers_by_id(service.database, tenant_id=principal.tenant_id, driver_ids=ids)
    positions = await live.store.positions(principal.tenant_id, ids)
    return NearbyList(
        items=[
            NearbyOut(
                driver_id=n.driver_id,
                name=known[n.driver_id].name,
                state=known[n.driver_id].state,
                distance_m=round(n.distance_m, 1),
                position=PositionOut.of(positions[n.driver_id]),
            )
            # A driver removed a moment ago may still be in the store until its removal reaches it.
            for n in nearest
            if n.driver_id in known and n.driver_id in positions
        ]
    )


@router.post("/drivers/me/state", summary="Go on or off duty, take or end a break (the caller as driver)")
async def change_my_state(body: StateIn, principal: Executes, service: Dispatch) -> DriverOut:
    driver: Driver = await service.bus.handle(
        ChangeDriverState(
            tenant_id=principal.tenant_id, user_id=principal.subject, state=body.state, actor=principal.actor
        )
    )
    [out] = await _with_live(service, principal.tenant_id, [driver])
    return out


@router.post(
    "/drivers/me/positions",
    summary="Send a batch of position pings (the caller as driver, on duty)",
    description="The latest ping becomes the live position; a downsampled few are kept for replay. "
    f"At most {MAX_BATCH} pings per batch.",
)
async def record_positions(body: PositionsIn, principal: Executes, service: Dispatch) -> PositionsOut:
    pings = tuple(
        Ping(
            point=Point(lat=p.lat, lon=p.lon),
            recorded_at=in_utc(p.recorded_at),
            accuracy_m=p.accuracy_m,
            speed_mps=p.speed,
            heading=p.heading,
        )
        for p in body.pings
    )
    recorded: PositionsRecorded = await service.bus.handle(
        RecordPositions(tenant_id=principal.tenant_id, user_id=principal.subject, pings=pings)
    )
    return PositionsOut(received=recorded.received, kept=recorded.kept, latest_at=recorded.latest_at)


@router.get("/drivers/{driver_id}", summary="One driver with the live position")
async def get_driver(driver_id: str, principal: Reads, service: Dispatch) -> DriverOut:
    driver = await _found(service, principal.tenant_id, driver_id)
    [out] = await _with_live(service, principal.tenant_id, [driver])
    return out


@router.patch("/drivers/{driver_id}", summary="Change a driver's profile (only the fields sent)")
async def change_driver(
    driver_id: str, body: DriverPatch, principal: Assigns, service: Dispatch
) -> DriverOut:
    driver: Driver = await service.bus.handle(
        ChangeDriver(
            tenant_id=principal.tenant_id,
            driver_id=driver_id,
            changes=driver_changes(body),
            actor=principal.actor,
        )
    )
    [out] = await _with_live(service, principal.tenant_id, [driver])
    return out


@router.delete("/drivers/{driver_id}", status_code=204, summary="Remove a driver, with shifts and track")
async def remove_driver(driver_id: str, principal: Assigns, service: Dispatch) -> Response:
    await service.bus.handle(
        RemoveDriver(tenant_id=principal.tenant_id, driver_id=driver_id, actor=principal.actor)
    )
    return Response(status_code=204)


@router.post("/drivers/{driver_id}/state", summary="Move a driver to a duty state (a dispatcher)")
async def change_state(driver_id: str, body: StateIn, principal: Assigns, service: Dispatch) -> DriverOut:
    driver: Driver = await service.bus.handle(
        ChangeDriverState(
            tenant_id=principal.tenant_id, driver_id=driver_id, state=body.state, actor=principal.actor
        )
    )
    [out] = await _with_live(service, principal.tenant_id, [driver])
    return out


@router.get("/drivers/{driver_id}/track", summary="A driver's downsampled track between two times")
async def driver_track(
    driver_id: str,
    principal: Reads,
    service: Dispatch,
    since: Annotated[
        AwareDatetime | None, Query(alias="from", description="Default: an hour before `to`.")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to", description="Default: now.")] = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 1_000,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[TrackPointOut]:
    await _found(service, principal.tenant_id, driver_id)
    end = in_utc(until) if until else utcnow()
    start = in_utc(since) if since else end - timedelta(hours=1)
    if start >= end:
        raise InvalidInput("`from` is before `to`", field="from", location="query")
    if end - start > MAX_TRACK_SPAN:
        raise InvalidInput("a track spans at most 24 hours", field="from", location="query")
    points, next_cursor = await views.track(
        service.database,
        tenant_id=principal.tenant_id,
        driver_id=driver_id,
        since=start,
        until=end,
        limit=limit,
        cursor=cursor,
    )
    return Page[TrackPointOut](
        items=[
            TrackPointOut(
                lat=p.point.lat,
                lon=p.point.lon,
                recorded_at=p.recorded_at,
                accuracy_m=p.accuracy_m,
                speed=p.speed_mps,
                heading=p.heading,
            )
            for p in points
        ],
        next_cursor=next_cursor,
    )


async def _found(service: DispatchService, tenant_id: str, driver_id: str) -> Driver:
    driver = await views.get_driver(service.database, tenant_id=tenant_id, driver_id=driver_id)
    if driver is None:
        raise DriverNotFound(f"there is no driver {driver_id}")
    return driver
