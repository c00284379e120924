"""Dispatch HTTP API for the rest of the fleet: vehicles, teams, service zones and shifts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel

from doorstep.dispatch import views
from doorstep.dispatch.domain.commands import (
    AddTeam,
    AddVehicle,
    AddZone,
    CancelShift,
    ChangeFleetObject,
    ChangeShift,
    RemoveFleetObject,
    ScheduleShift,
)
from doorstep.dispatch.domain.errors import ShiftNotFound
from doorstep.dispatch.domain.model import Shift, Team, Vehicle, Zone
from doorstep.dispatch.fleet_handlers import KINDS
from doorstep.dispatch.schemas import (
    BreakIn,
    ShiftIn,
    ShiftOut,
    ShiftPatch,
    TeamIn,
    TeamOut,
    VehicleIn,
    VehicleOut,
    VehiclePatch,
    ZoneIn,
    ZoneOut,
    ZonePatch,
    plain_changes,
)
from doorstep.dispatch.service import DispatchService, dispatch_service
from doorstep.kernel.auth import Principal, Requires
from doorstep.kernel.pagination import Page

router = APIRouter(prefix="/v1/dispatch", tags=["dispatch fleet"])

Dispatch = Annotated[DispatchService, Depends(dispatch_service)]
Reads = Annotated[Principal, Depends(Requires("dispatch.read"))]
Assigns = Annotated[Principal, Depends(Requires("dispatch.assign"))]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=500)]


async def _one(service: DispatchService, kind: str, tenant_id: str, object_id: str) -> Any:
    spec = KINDS[kind]
    async with service.database.reader() as session:
        row = (
            await session.execute(
                spec.table.select().where(spec.table.c.tenant_id == tenant_id, spec.table.c.id == object_id)
            )
        ).first()
    if row is None:
        raise spec.not_found(f"there is no {kind} {object_id}")
    return spec.from_row(row)


async def _page(
    service: DispatchService, kind: str, tenant_id: str, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    spec = KINDS[kind]
    query = spec.table.select().where(spec.table.c.tenant_id == tenant_id)
    return await views.listed(service.database, spec.table, query, spec.from_row, limit=limit, cursor=cursor)


async def _change(
    service: DispatchService, principal: Principal, kind: str, object_id: str, changes: dict[str, Any]
) -> Any:
    return await service.bus.handle(
        ChangeFleetObject(
            tenant_id=principal.tenant_id,
            kind=kind,
            object_id=object_id,
            changes=changes,
            actor=principal.actor,
        )
    )


async def _remove(service: DispatchService, principal: Principal, kind: str, object_id: str) -> Response:
    await service.bus.handle(
        RemoveFleetObject(
            tenant_id=principal.tenant_id, kind=kind, object_id=object_id, actor=principal.actor
        )
    )
    return Response(status_code=204)


def _items(found: list[Any], out: Callable[[Any], BaseModel]) -> list[Any]:
    return [out(item) for item in found]


# --- Vehicles ------------------------------------------------------------------------------------------


@router.post("/vehicles", status_code=201, summary="Add a vehicle to the fleet")
async def add_vehicle(body: VehicleIn, principal: Assigns, service: Dispatch) -> VehicleOut:
    vehicle: Vehicle = await service.bus.handle(
        AddVehicle(tenant_id=principal.tenant_id, actor=principal.actor, **body.model_dump())
    )
    return VehicleOut.of(vehicle)


@router.get("/vehicles", summary="The tenant's vehicles, newest first")
async def list_vehicles(
    principal: Reads, service: Dispatch, limit: Limit = 50, cursor: Cursor = None
) -> Page[VehicleOut]:
    found, next_cursor = await _page(service, "vehicle", principal.tenant_id, limit, cursor)
    return Page[VehicleOut](items=_items(found, VehicleOut.of), next_cursor=next_cursor)


@router.get("/vehicles/{vehicle_id}", summary="One vehicle")
async def get_vehicle(vehicle_id: str, principal: Reads, service: Dispatch) -> VehicleOut:
    return VehicleOut.of(await _one(service, "vehicle", principal.tenant_id, vehicle_id))


@router.patch(
    "/vehicles/{vehicle_id}", summary="Change a vehicle (only the fields sent; `plate` may be null)"
)
async def change_vehicle(
    vehicle_id: str, body: VehiclePatch, principal: Assigns, service: Dispatch
) -> VehicleOut:
    changes = plain_changes(body, clearable=frozenset({"plate"}))
    return VehicleOut.of(await _change(service, principal, "vehicle", vehicle_id, changes))


@router.delete("/vehicles/{vehicle_id}", status_code=204, summary="Remove a vehicle")
async def remove_vehicle(vehicle_id: str, principal: Assigns, service: Dispatch) -> Response:
    return await _remove(service, principal, "vehicle", vehicle_id)


# --- Teams ---------------------------------------------------------------------------------------------


@router.post("/teams", status_code=201, summary="Add a team (a fleet) of drivers")
async def add_team(body: TeamIn, principal: Assigns, service: Dispatch) -> TeamOut:
    team: Team = await service.bus.handle(
        AddTeam(tenant_id=principal.tenant_id, name=body.name, actor=principal.actor)
    )
    return TeamOut.of(team)


@router.get("/teams", summary="The tenant's teams, newest first")
async def list_teams(
    principal: Reads, service: Dispatch, limit: Limit = 50, cursor: Cursor = None
) -> Page[TeamOut]:
    found, next_cursor = await _page(service, "team", principal.tenant_id, limit, cursor)
    return Page[TeamOut](items=_items(found, TeamOut.of), next_cursor=next_cursor)


@router.get("/teams/{team_id}", summary="One team")
async def get_team(team_id: str, principal: Reads, service: Dispatch) -> TeamOut:
    return TeamOut.of(await _one(service, "team", principal.tenant_id, team_id))


@router.patch("/teams/{team_id}", summary="Rename a team")
async def change_team(team_id: str, body: TeamIn, principal: Assigns, service: Dispatch) -> TeamOut:
    return TeamOut.of(await _change(service, principal, "team", team_id, {"name": body.name}))


@router.delete("/teams/{team_id}", status_code=204, summary="Remove a team no driver belongs to")
async def remove_team(team_id: str, principal: Assigns, service: Dispatch) -> Response:
    return await _remove(service, principal, "team", team_id)


# --- Zones ---------------------------------------------------------------------------------------------


@router.post("/zones", status_code=201, summary="Add a service zone (a GeoJSON Polygon or MultiPolygon)")
async def add_zone(body: ZoneIn, principal: Assigns, service: Dispatch) -> ZoneOut:
    zone: Zone = await service.bus.handle(
        AddZone(tenant_id=principal.tenant_id, name=body.name, geometry=body.geometry, actor=principal.actor)
    )
    return ZoneOut.of(zone)


@router.get("/zones", summary="The tenant's service zones, newest first")
async def list_zones(
    principal: Reads, service: Dispatch, limit: Limit = 50, cursor: Cursor = None
) -> Page[ZoneOut]:
    found, next_cursor = await _page(service, "zone", principal.tenant_id, limit, cursor)
    return Page[ZoneOut](items=_items(found, ZoneOut.of), next_cursor=next_cursor)


@router.get("/zones/{zone_id}", summary="One service zone")
async def get_zone(zone_id: str, principal: Reads, service: Dispatch) -> ZoneOut:
    return ZoneOut.of(await _one(service, "zone", principal.tenant_id, zone_id))


@router.patch("/zones/{zone_id}", summary="Rename a zone or redraw it")
async def change_zone(zone_id: str, body: ZonePatch, principal: Assigns, service: Dispatch) -> ZoneOut:
    return ZoneOut.of(await _change(service, principal, "zone", zone_id, plain_changes(body)))


@router.delete("/zones/{zone_id}", status_code=204, summary="Remove a zone that is no driver's home zone")
async def remove_zone(zone_id: str, principal: Assigns, service: Dispatch) -> Response:
    return await _remove(service, principal, "zone", zone_id)


# --- Shifts --------------------------------------------------------------------------------------------


def _breaks(breaks: list[BreakIn]) -> tuple[tuple[Any, Any], ...]:
    return tuple((b.starts_at, b.ends_at) for b in breaks)


@router.post("/shifts", status_code=201, summary="Schedule a driver's shift, with its breaks")
async def schedule_shift(body: ShiftIn, principal: Assigns, service: Dispatch) -> ShiftOut:
    shift: Shift = await service.bus.handle(
        ScheduleShift(
            tenant_id=principal.tenant_id,
            driver_id=body.driver_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            breaks=_breaks(body.breaks),
            actor=principal.actor,
        )
    )
    return ShiftOut.of(shift)


@router.get("/shifts", summary="The tenant's shifts, newest first")
async def list_shifts(
    principal: Reads,
    service: Dispatch,
    driver_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ShiftOut]:
    found, next_cursor = await views.list_shifts(
        service.database, tenant_id=principal.tenant_id, driver_id=driver_id, limit=limit, cursor=cursor
    )
    return Page[ShiftOut](items=[ShiftOut.of(s) for s in found], next_cursor=next_cursor)


@router.get("/shifts/{shift_id}", summary="One shift")
async def get_shift(shift_id: str, principal: Reads, service: Dispatch) -> ShiftOut:
    shift = await views.get_shift(service.database, tenant_id=principal.tenant_id, shift_id=shift_id)
    if shift is None:
        raise ShiftNotFound(f"there is no shift {shift_id}")
    return ShiftOut.of(shift)


@router.patch("/shifts/{shift_id}", summary="Move a shift or change its breaks (only the fields sent)")
async def change_shift(shift_id: str, body: ShiftPatch, principal: Assigns, service: Dispatch) -> ShiftOut:
    changes = plain_changes(body)
    shift: Shift = await service.bus.handle(
        ChangeShift(
            tenant_id=principal.tenant_id,
            shift_id=shift_id,
            starts_at=changes.get("starts_at"),
            ends_at=changes.get("ends_at"),
            breaks=_breaks(body.breaks) if body.breaks is not None else None,
            actor=principal.actor,
        )
    )
    return ShiftOut.of(shift)


@router.delete("/shifts/{shift_id}", status_code=204, summary="Cancel a shift")
async def cancel_shift(shift_id: str, principal: Assigns, service: Dispatch) -> Response:
    await service.bus.handle(
        CancelShift(tenant_id=principal.tenant_id, shift_id=shift_id, actor=principal.actor)
    )
    return Response(status_code=204)
