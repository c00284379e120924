"""Dispatch use cases for vehicles, teams and service zones: add, change, remove."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Row, Table

from doorstep.dispatch.adapters.repositories import (
    team_from_row,
    team_row,
    vehicle_from_row,
    vehicle_row,
    zone_from_row,
    zone_row,
)
from doorstep.dispatch.adapters.tables import teams, vehicles, zones
from doorstep.dispatch.adapters.unit_of_work import DispatchUnitOfWork
from doorstep.dispatch.domain.commands import (
    AddTeam,
    AddVehicle,
    AddZone,
    ChangeFleetObject,
    RemoveFleetObject,
)
from doorstep.dispatch.domain.errors import StillReferenced, TeamNotFound, VehicleNotFound, ZoneNotFound
from doorstep.dispatch.domain.geometry import parse_area
from doorstep.dispatch.domain.model import Team, Vehicle, Zone
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import NotFound
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command

FleetObject = Vehicle | Team | Zone


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    table: Table
    not_found: type[NotFound]
    to_row: Callable[[Any], dict[str, Any]]
    from_row: Callable[[Row[Any]], Any]
    # The drivers' column that refers to objects of this kind: such an object cannot be removed.
    referenced_by: str | None = None


KINDS: dict[str, Kind] = {
    "vehicle": Kind("vehicle", vehicles, VehicleNotFound, vehicle_row, vehicle_from_row),
    "team": Kind("team", teams, TeamNotFound, team_row, team_from_row, referenced_by="team_id"),
    "zone": Kind("zone", zones, ZoneNotFound, zone_row, zone_from_row, referenced_by="home_zone_id"),
}


def _audited(kind: Kind, row: dict[str, Any]) -> dict[str, Any]:
    if kind.name == "zone":
        return {"name": row["name"], "geometry": row["geometry"]}
    return {k: v for k, v in row.items() if k not in ("id", "tenant_id", "created_at", "updated_at")}


async def _add(uow: DispatchUnitOfWork, kind: Kind, obj: FleetObject, actor: str) -> FleetObject:
    row = kind.to_row(obj)
    async with uow:
        await uow.fleet.add(kind.table, row)
        uow.audit(
            tenant_id=obj.tenant_id,
            actor=actor,
            action=f"{kind.name}.added",
            object_type=kind.name,
            object_id=obj.id,
            before=None,
            after=_audited(kind, row),
        )
        await uow.commit()
    return obj


async def add_vehicle(cmd: AddVehicle, *, uow: DispatchUnitOfWork) -> FleetObject:
    now = utcnow()
    vehicle = Vehicle(
        id=new_id(),
        tenant_id=cmd.tenant_id,
        name=cmd.name,
        plate=cmd.plate,
        vehicle_type=cmd.vehicle_type,
        capacity=cmd.capacity,
        created_at=now,
        updated_at=now,
    )
    return await _add(uow, KINDS["vehicle"], vehicle, cmd.actor)


async def add_team(cmd: AddTeam, *, uow: DispatchUnitOfWork) -> FleetObject:
    now = utcnow()
    team = Team(id=new_id(), tenant_id=cmd.tenant_id, name=cmd.name, created_at=now, updated_at=now)
    return await _add(uow, KINDS["team"], team, cmd.actor)


async def add_zone(cmd: AddZone, *, uow: DispatchUnitOfWork) -> FleetObject:
    now = utcnow()
    area = parse_area(cmd.geometry)
    zone = Zone(
        id=new_id(), tenant_id=cmd.tenant_id, name=cmd.name, area=area, created_at=now, updated_at=now
    )
    return await _add(uow, KINDS["zone"], zone, cmd.actor)


async def change_fleet_object(cmd: ChangeFleetObject, *, uow: DispatchUnitOfWork) -> FleetObject:
    kind = KINDS[cmd.kind]
    changes = dict(cmd.changes)
    if "geometry" in changes:
        changes["area"] = parse_area(changes.pop("geometry"))
    async with uow:
        current: FleetObject = await _get(uow, kind, cmd.tenant_id, cmd.object_id)
        changed = {k: v for k, v in changes.items() if getattr(current, k) != v}
        if not changed:
            return current
        updated: FleetObject = replace(current, **changed, updated_at=utcnow())
        before, after = kind.to_row(current), kind.to_row(updated)
        await uow.fleet.save(kind.table, after)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action=f"{kind.name}.changed",
            object_type=kind.name,
            object_id=cmd.object_id,
            before=_audited(kind, before),
            after=_audited(kind, after),
        )
        await uow.commit()
    return updated


async def remove_fleet_object(cmd: RemoveFleetObject, *, uow: DispatchUnitOfWork) -> None:
    kind = KINDS[cmd.kind]
    async with uow:
        current = await _get(uow, kind, cmd.tenant_id, cmd.object_id)
        if kind.referenced_by and await uow.fleet.referenced_by_drivers(kind.referenced_by, cmd.object_id):
            raise StillReferenced(
                f"drivers still refer to this {kind.name} ({kind.referenced_by}): change them first",
                field=kind.referenced_by,
            )
        await uow.fleet.remove(kind.table, cmd.object_id)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action=f"{kind.name}.removed",
            object_type=kind.name,
            object_id=cmd.object_id,
            before=_audited(kind, kind.to_row(current)),
            after=None,
        )
        await uow.commit()


async def _get(uow: DispatchUnitOfWork, kind: Kind, tenant_id: str, object_id: str) -> Any:
    row = await uow.fleet.row(kind.table, tenant_id=tenant_id, object_id=object_id)
    if row is None:
        raise kind.not_found(f"there is no {kind.name} {object_id}")
    return kind.from_row(row)


HANDLERS: dict[type[Command], Handler] = {
    AddVehicle: add_vehicle,
    AddTeam: add_team,
    AddZone: add_zone,
    ChangeFleetObject: change_fleet_object,
    RemoveFleetObject: remove_fleet_object,
}
