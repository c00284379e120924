"""Dispatch use cases for drivers: register, change, remove, move between duty states, record positions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from doorstep.contracts.dispatch import DriverRemoved
from doorstep.dispatch.adapters.tables import teams, zones
from doorstep.dispatch.adapters.unit_of_work import DispatchUnitOfWork
from doorstep.dispatch.domain.commands import (
    ChangeDriver,
    ChangeDriverState,
    RecordPositions,
    RegisterDriver,
    RemoveDriver,
)
from doorstep.dispatch.domain.errors import (
    DriverNotFound,
    DriverOffline,
    InvalidFleetInput,
    NotADriver,
    UserAlreadyADriver,
)
from doorstep.dispatch.domain.model import Driver, DriverState
from doorstep.dispatch.domain.tracks import check_recorded, downsample, latest
from doorstep.dispatch.fleet_handlers import HANDLERS as FLEET_HANDLERS
from doorstep.dispatch.jobs_driver_handlers import HANDLERS as JOB_DRIVER_HANDLERS
from doorstep.dispatch.jobs_handlers import HANDLERS as JOB_HANDLERS
from doorstep.dispatch.ports import GeoStore
from doorstep.dispatch.shift_handlers import HANDLERS as SHIFT_HANDLERS
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command

# Profile fields that name another fleet object of the tenant, and where it lives.
_REFERENCES = {"home_zone_id": zones, "team_id": teams}


@dataclass(frozen=True, slots=True)
class PositionsRecorded:
    received: int
    kept: int  # how many joined the track
    latest_at: str | None


async def register_driver(cmd: RegisterDriver, *, uow: DispatchUnitOfWork) -> Driver:
    now = utcnow()
    async with uow:
        await _check_references(
            uow, cmd.tenant_id, {"home_zone_id": cmd.home_zone_id, "team_id": cmd.team_id}
        )
        if await uow.drivers.by_user(tenant_id=cmd.tenant_id, user_id=cmd.user_id) is not None:
            raise _already_a_driver(cmd.user_id)
        driver = Driver.register(
            id=new_id(),
            tenant_id=cmd.tenant_id,
            user_id=cmd.user_id,
            now=now,
            name=cmd.name,
            phone=cmd.phone,
            vehicle_type=cmd.vehicle_type,
            capacity=cmd.capacity,
            skills=cmd.skills,
            home_zone_id=cmd.home_zone_id,
            team_id=cmd.team_id,
        )
        await uow.drivers.add(driver)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="driver.registered",
            object_type="driver",
            object_id=driver.id,
            before=None,
            after=driver.profile(),
        )
        try:
            await uow.commit()
        except IntegrityError:
            raise _already_a_driver(cmd.user_id) from None
    return driver


async def change_driver(cmd: ChangeDriver, *, uow: DispatchUnitOfWork) -> Driver:
    async with uow:
        driver = await _driver(uow, cmd.tenant_id, cmd.driver_id)
        await _check_references(
            uow, cmd.tenant_id, {k: v for k, v in cmd.changes.items() if k in _REFERENCES}
        )
        before = driver.profile()
        if driver.change(cmd.changes, now=utcnow()):
            await uow.drivers.save(driver)
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=cmd.actor,
                action="driver.changed",
                object_type="driver",
                object_id=driver.id,
                before=before,
                after=driver.profile(),
            )
            await uow.commit()
    return driver


async def remove_driver(cmd: RemoveDriver, *, uow: DispatchUnitOfWork, geo_store: GeoStore) -> None:
    now = utcnow()
    async with uow:
        driver = await _driver(uow, cmd.tenant_id, cmd.driver_id)
        await uow.drivers.remove(driver)
        await uow.tracks.forget(tenant_id=cmd.tenant_id, driver_id=driver.id)
        uow.emit(
            DriverRemoved(driver_id=driver.id, user_id=driver.user_id, occurred_at=now),
            tenant_id=cmd.tenant_id,
        )
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="driver.removed",
            object_type="driver",
            object_id=driver.id,
            before=driver.profile(),
            after=None,
        )
        await uow.commit()
    await geo_store.remove(cmd.tenant_id, driver.id)


async def change_driver_state(
    cmd: ChangeDriverState, *, uow: DispatchUnitOfWork, geo_store: GeoStore
) -> Driver:
    async with uow:
        if cmd.driver_id is not None:
            driver = await _driver(uow, cmd.tenant_id, cmd.driver_id)
        else:
            driver = await _me(uow, cmd.tenant_id, cmd.user_id or "")
        previous = driver.state
        if driver.move_to(cmd.state, actor=cmd.actor, now=utcnow()):
            await uow.drivers.save(driver)
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=cmd.actor,
                action="driver.state_changed",
                object_type="driver",
                object_id=driver.id,
                before={"state": previous.value},
                after={"state": driver.state.value},
            )
            await uow.commit()
    if driver.state is DriverState.OFFLINE:
        # Off duty: out of every search, and nobody keeps following where they go.
        await geo_store.remove(cmd.tenant_id, driver.id)
    return driver


async def record_positions(
    cmd: RecordPositions, *, uow: DispatchUnitOfWork, geo_store: GeoStore
) -> PositionsRecorded:
    check_recorded(cmd.pings, now=utcnow())
    newest = latest(cmd.pings)
    async with uow:
        driver = await _me(uow, cmd.tenant_id, cmd.user_id)
        if driver.state is DriverState.OFFLINE:
            raise DriverOffline("go on duty (POST /v1/dispatch/drivers/me/state) before sending positions")
        last_kept = await uow.tracks.last_kept(tenant_id=cmd.tenant_id, driver_id=driver.id)
        kept = downsample(cmd.pings, last_kept=last_kept)
        if kept:
            await uow.tracks.add(tenant_id=cmd.tenant_id, driver_id=driver.id, pings=kept)
            await uow.commit()
    if newest is not None:
        await geo_store.update(cmd.tenant_id, driver.id, newest.point, newest.recorded_at)
    return PositionsRecorded(
        received=len(cmd.pings),
        kept=len(kept),
        latest_at=newest.recorded_at.isoformat() if newest else None,
    )


async def _driver(uow: DispatchUnitOfWork, tenant_id: str, driver_id: str) -> Driver:
    driver = await uow.drivers.get(tenant_id=tenant_id, driver_id=driver_id)
    if driver is None:
        raise DriverNotFound(f"there is no driver {driver_id}")
    return driver


async def _me(uow: DispatchUnitOfWork, tenant_id: str, user_id: str) -> Driver:
    driver = await uow.drivers.by_user(tenant_id=tenant_id, user_id=user_id)
    if driver is None:
        raise NotADriver("the caller has no driver profile; a dispatcher registers drivers")
    return driver


async def _check_references(
    uow: DispatchUnitOfWork, tenant_id: str, references: dict[str, str | None]
) -> None:
    for field, object_id in references.items():
        if object_id is not None and not await uow.fleet.exists(
            _REFERENCES[field], tenant_id=tenant_id, object_id=object_id
        ):
            raise InvalidFleetInput(
                f"the tenant has no {field.removesuffix('_id').replace('_', ' ')} {object_id}", field=field
            )


def _already_a_driver(user_id: str) -> UserAlreadyADriver:
    return UserAlreadyADriver(f"user {user_id} has a driver profile already", field="user_id")


HANDLERS: dict[type[Command], Handler] = {
    RegisterDriver: register_driver,
    ChangeDriver: change_driver,
    RemoveDriver: remove_driver,
    ChangeDriverState: change_driver_state,
    RecordPositions: record_positions,
    **FLEET_HANDLERS,
    **SHIFT_HANDLERS,
    **JOB_HANDLERS,
    **JOB_DRIVER_HANDLERS,
}
