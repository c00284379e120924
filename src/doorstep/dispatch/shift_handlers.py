"""Dispatch use cases for shifts: schedule one for a driver, change it, cancel it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from doorstep.contracts.dispatch import ShiftCancelled, ShiftScheduled
from doorstep.dispatch.adapters.repositories import shift_from_row, shift_row
from doorstep.dispatch.adapters.tables import drivers, shifts
from doorstep.dispatch.adapters.unit_of_work import DispatchUnitOfWork
from doorstep.dispatch.domain.commands import CancelShift, ChangeShift, ScheduleShift
from doorstep.dispatch.domain.errors import InvalidFleetInput, ShiftNotFound
from doorstep.dispatch.domain.model import Break, Shift, check_shift
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command


def _breaks(pairs: tuple[tuple[datetime, datetime], ...]) -> tuple[Break, ...]:
    return tuple(Break(starts_at, ends_at) for starts_at, ends_at in pairs)


def _audited(shift: Shift) -> dict[str, object]:
    row = shift_row(shift)
    return {key: row[key] for key in ("driver_id", "starts_at", "ends_at", "breaks")}


async def schedule_shift(cmd: ScheduleShift, *, uow: DispatchUnitOfWork) -> Shift:
    now = utcnow()
    breaks = _breaks(cmd.breaks)
    check_shift(cmd.starts_at, cmd.ends_at, breaks)
    async with uow:
        if not await uow.fleet.exists(drivers, tenant_id=cmd.tenant_id, object_id=cmd.driver_id):
            raise InvalidFleetInput(f"the tenant has no driver {cmd.driver_id}", field="driver_id")
        shift = Shift(
            id=new_id(),
            tenant_id=cmd.tenant_id,
            driver_id=cmd.driver_id,
            starts_at=cmd.starts_at,
            ends_at=cmd.ends_at,
            breaks=breaks,
            created_at=now,
        )
        await _check_overlap(uow, shift)
        await uow.fleet.add(shifts, shift_row(shift))
        uow.emit(
            ShiftScheduled(
                shift_id=shift.id,
                driver_id=shift.driver_id,
                starts_at=shift.starts_at,
                ends_at=shift.ends_at,
                occurred_at=now,
            ),
            tenant_id=cmd.tenant_id,
        )
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="shift.scheduled",
            object_type="shift",
            object_id=shift.id,
            before=None,
            after=_audited(shift),
        )
        await uow.commit()
    return shift


async def change_shift(cmd: ChangeShift, *, uow: DispatchUnitOfWork) -> Shift:
    async with uow:
        current = await _shift(uow, cmd.tenant_id, cmd.shift_id)
        updated = replace(
            current,
            starts_at=cmd.starts_at or current.starts_at,
            ends_at=cmd.ends_at or current.ends_at,
            breaks=current.breaks if cmd.breaks is None else _breaks(cmd.breaks),
        )
        if updated == current:
            return current
        await _check_overlap(uow, updated)
        await uow.fleet.save(shifts, shift_row(updated))
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="shift.changed",
            object_type="shift",
            object_id=current.id,
            before=_audited(current),
            after=_audited(updated),
        )
        await uow.commit()
    return updated


async def cancel_shift(cmd: CancelShift, *, uow: DispatchUnitOfWork) -> None:
    now = utcnow()
    async with uow:
        shift = await _shift(uow, cmd.tenant_id, cmd.shift_id)
        await uow.fleet.remove(shifts, shift.id)
        uow.emit(
            ShiftCancelled(shift_id=shift.id, driver_id=shift.driver_id, occurred_at=now),
            tenant_id=cmd.tenant_id,
        )
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="shift.cancelled",
            object_type="shift",
            object_id=shift.id,
            before=_audited(shift),
            after=None,
        )
        await uow.commit()


async def _shift(uow: DispatchUnitOfWork, tenant_id: str, shift_id: str) -> Shift:
    row = await uow.fleet.row(shifts, tenant_id=tenant_id, object_id=shift_id)
    if row is None:
        raise ShiftNotFound(f"there is no shift {shift_id}")
    return shift_from_row(row)


async def _check_overlap(uow: DispatchUnitOfWork, shift: Shift) -> None:
    other = await uow.fleet.overlapping_shift(
        driver_id=shift.driver_id, starts_at=shift.starts_at, ends_at=shift.ends_at, other_than=shift.id
    )
    if other is not None:
        raise InvalidFleetInput(f"the driver has shift {other} at that time already", field="starts_at")


HANDLERS: dict[type[Command], Handler] = {
    ScheduleShift: schedule_shift,
    ChangeShift: change_shift,
    CancelShift: cancel_shift,
}
