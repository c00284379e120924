"""Dispatch use cases for jobs: orders becoming jobs, the dispatcher's moves, offers and their time-outs."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from doorstep.dispatch.adapters.jobs_orders import KnownOrder
from doorstep.dispatch.adapters.unit_of_work import DispatchUnitOfWork
from doorstep.dispatch.domain import execution, offers
from doorstep.dispatch.domain.errors import InvalidFleetInput, NotADriver
from doorstep.dispatch.domain.job_commands import (
    AnswerOffer,
    AssignJob,
    ExpireOffers,
    OfferJob,
    SetProofRequirements,
    TrackOrder,
    UnassignJob,
)
from doorstep.dispatch.domain.job_events import Actor
from doorstep.dispatch.domain.jobs import (
    BEFORE_PICKUP,
    CANCELLABLE,
    ON_BOARD,
    WAITING,
    InvalidJob,
    Job,
    JobStatus,
    JobStop,
    Window,
)
from doorstep.dispatch.domain.model import Driver, DriverState
from doorstep.dispatch.job_contracts import contract
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import Conflict, NotFound
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command

log = logging.getLogger(__name__)

# The order statuses from which an order is a job: accepted by the merchant, not yet picked up.
DISPATCHABLE = frozenset({"accepted", "preparing", "ready_for_pickup"})
ENDED = frozenset({"cancelled", "rejected"})
WITH_DRIVER = BEFORE_PICKUP | ON_BOARD | {JobStatus.FAILED, JobStatus.RETURNING}


class JobNotFound(NotFound):
    slug = "dispatch-job-not-found"
    title = "No such job"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"there is no job {job_id}")


class DriverNotAvailable(Conflict):
    slug = "driver-not-available"
    title = "The driver cannot take a job now"

    def __init__(self, driver: Driver) -> None:
        super().__init__(
            f"driver {driver.id} is {driver.state.value}; only an available driver takes a job",
            driver_state=driver.state.value,
        )


async def track_order(cmd: TrackOrder, *, uow: DispatchUnitOfWork) -> Job | None:
    """Keep what dispatch knows of an order; an accepted order with located stops becomes a job."""
    now = utcnow()
    async with uow:
        if await uow.already_handled():
            return None
        known = await uow.known_orders.get(tenant_id=cmd.tenant_id, order_id=cmd.order_id)
        pickup = cmd.pickup if cmd.pickup is not None else known.pickup if known else None
        dropoff = cmd.dropoff if cmd.dropoff is not None else known.dropoff if known else None
        if pickup is None or dropoff is None:
            # A status change of an order created before dispatch heard of orders: nothing to carry.
            await uow.commit()
            return None
        # A snapshot (created, updated) may be older than a status change already seen.
        status = cmd.status if known is None or cmd.pickup is None else known.status
        await uow.known_orders.put(KnownOrder(cmd.tenant_id, cmd.order_id, status, pickup, dropoff), now=now)
        job = await uow.jobs.for_order(tenant_id=cmd.tenant_id, order_id=cmd.order_id)
        if job is None and status in DISPATCHABLE:
            job = _new_job(cmd, pickup, dropoff, now)
            if job is not None:
                await uow.jobs.add(job)
        elif job is not None and status in ENDED and job.status in CANCELLABLE:
            before = job.driver_id
            execution.cancel(job, actor=Actor.AUTOMATIC, now=now, reason=cmd.reason or f"order {status}")
            await uow.jobs.save(job)
            await sync_drivers(uow, job, before, now=now)
        elif job is not None and status == "ready_for_pickup" and job.status in WAITING | BEFORE_PICKUP:
            _ready_now(job, now)
            await uow.jobs.save(job)
        if job is not None:
            publish(uow, job)
        await uow.commit()
    return job


async def assign_job(cmd: AssignJob, *, uow: DispatchUnitOfWork) -> Job:
    now = utcnow()
    async with uow:
        job = await job_of(uow, cmd.tenant_id, cmd.job_id)
        driver = await uow.drivers.get(tenant_id=cmd.tenant_id, driver_id=cmd.driver_id)
        if driver is None:
            raise InvalidFleetInput(f"the tenant has no driver {cmd.driver_id}", field="driver_id")
        if driver.state not in (DriverState.AVAILABLE, DriverState.ON_JOB):
            raise DriverNotAvailable(driver)
        before = job.driver_id
        if job.driver_id is None:
            offers.assign(job, driver_id=driver.id, actor=Actor.DISPATCHER, now=now, pin=cmd.pin)
        else:
            offers.reassign(job, driver_id=driver.id, actor=Actor.DISPATCHER, now=now, pin=cmd.pin)
        await store_job(uow, job, before, now)
    return job


async def unassign_job(cmd: UnassignJob, *, uow: DispatchUnitOfWork) -> Job:
    now = utcnow()
    async with uow:
        job = await job_of(uow, cmd.tenant_id, cmd.job_id)
        before = job.driver_id
        offers.unassign(job, actor=Actor.DISPATCHER, now=now, reason=cmd.reason)
        await store_job(uow, job, before, now)
    return job


async def offer_job(cmd: OfferJob, *, uow: DispatchUnitOfWork) -> Job:
    now = utcnow()
    async with uow:
        job = await job_of(uow, cmd.tenant_id, cmd.job_id)
        for index, driver_id in enumerate(cmd.driver_ids):
            if await uow.drivers.get(tenant_id=cmd.tenant_id, driver_id=driver_id) is None:
                raise InvalidFleetInput(f"the tenant has no driver {driver_id}", field=f"driver_ids[{index}]")
        expires_at = now + timedelta(seconds=cmd.expires_in_s)
        offers.offer_job(
            job, driver_ids=cmd.driver_ids, expires_at=expires_at, now=now, actor=Actor.DISPATCHER
        )
        await store_job(uow, job, job.driver_id, now)
    return job


async def set_proof_requirements(cmd: SetProofRequirements, *, uow: DispatchUnitOfWork) -> Job:
    now = utcnow()
    async with uow:
        job = await job_of(uow, cmd.tenant_id, cmd.job_id)
        if job.status not in WAITING | BEFORE_PICKUP | ON_BOARD:
            raise job.refuse(JobStatus.DELIVERED)
        job.requirements = cmd.requirements
        await store_job(uow, job, job.driver_id, now)
    return job


async def answer_offer(cmd: AnswerOffer, *, uow: DispatchUnitOfWork) -> Job:
    now = utcnow()
    async with uow:
        driver = await driver_of_user(uow, cmd.tenant_id, cmd.user_id)
        job = await uow.jobs.get(tenant_id=cmd.tenant_id, job_id=cmd.job_id)
        if job is None or all(offer.driver_id != driver.id for offer in job.offers):
            raise JobNotFound(cmd.job_id)
        if cmd.accept:
            if driver.state not in (DriverState.AVAILABLE, DriverState.ON_JOB):
                raise DriverNotAvailable(driver)
            offers.accept_offer(job, driver_id=driver.id, now=now)
        else:
            offers.decline_offer(job, driver_id=driver.id, now=now)
        await store_job(uow, job, None, now)
    return job


async def expire_offers(cmd: ExpireOffers, *, uow: DispatchUnitOfWork) -> int:
    """Time out the offers due by `cmd.now`: the jobs whose offers all ended wait again."""
    async with uow:
        due = await uow.jobs.with_offers_due(now=cmd.now, limit=cmd.limit)
        for tenant_id, job_id in due:
            job = await uow.jobs.get(tenant_id=tenant_id, job_id=job_id)
            if job is None:
                continue
            offers.expire_offers(job, now=cmd.now)
            await uow.jobs.save(job)
            publish(uow, job)
        if due:
            await uow.commit()
    return len(due)


async def job_of(uow: DispatchUnitOfWork, tenant_id: str, job_id: str) -> Job:
    job = await uow.jobs.get(tenant_id=tenant_id, job_id=job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


async def driver_of_user(uow: DispatchUnitOfWork, tenant_id: str, user_id: str) -> Driver:
    driver = await uow.drivers.by_user(tenant_id=tenant_id, user_id=user_id)
    if driver is None:
        raise NotADriver("the caller has no driver profile; a dispatcher registers drivers")
    return driver


async def store_job(uow: DispatchUnitOfWork, job: Job, before: str | None, now: datetime) -> None:
    await uow.jobs.save(job)
    await sync_drivers(uow, job, before, now=now)
    publish(uow, job)
    await uow.commit()


async def sync_drivers(uow: DispatchUnitOfWork, job: Job, before: str | None, *, now: datetime) -> None:
    """A driver with a job to do is on_job; one whose last job ended (or was taken) is available again."""
    for driver_id in {before, job.driver_id} - {None}:
        assert driver_id is not None
        driver = await uow.drivers.get(tenant_id=job.tenant_id, driver_id=driver_id)
        if driver is None:
            continue
        holding = job.driver_id == driver_id and job.status in WITH_DRIVER
        others = await uow.jobs.open_jobs_of(tenant_id=job.tenant_id, driver_id=driver_id, other_than=job.id)
        busy = holding or others > 0
        target = (
            DriverState.ON_JOB
            if busy and driver.state is DriverState.AVAILABLE
            else DriverState.AVAILABLE
            if not busy and driver.state is DriverState.ON_JOB
            else None
        )
        if target is not None and driver.move_to(target, actor="dispatch", now=now):
            await uow.drivers.save(driver)


def publish(uow: DispatchUnitOfWork, job: Job) -> None:
    for event in job.events:
        published = contract(event, job)
        if published is not None:
            uow.emit(published, tenant_id=job.tenant_id)
    job.events.clear()


def _new_job(cmd: TrackOrder, pickup: dict[str, Any], dropoff: dict[str, Any], now: datetime) -> Job | None:
    """The job for an order, or None while a stop has no coordinates (orders holds it in needs_attention)."""
    if not pickup.get("location") or not dropoff.get("location"):
        return None
    try:
        return Job.create(
            id=new_id(),
            tenant_id=cmd.tenant_id,
            order_id=cmd.order_id,
            pickup=_stop(pickup),
            dropoff=_stop(dropoff),
            now=now,
        )
    except InvalidJob as error:
        # An order dispatch cannot carry (its windows contradict each other): logged, not retried forever.
        log.warning("order %s does not become a job: %s", cmd.order_id, error)
        return None


def _stop(stop: dict[str, Any]) -> JobStop:
    window = stop.get("window") or {}
    start, end = window.get("start"), window.get("end")
    return JobStop(
        address=stop["address"],
        lat=float(stop["location"]["lat"]),
        lon=float(stop["location"]["lon"]),
        window=Window(
            datetime.fromisoformat(start) if start else None, datetime.fromisoformat(end) if end else None
        ),
    )


def _ready_now(job: Job, now: datetime) -> None:
    """The merchant marked the order ready: the pickup can happen from now on."""
    stop = job.pickup.stop
    start = stop.window.start
    if start is None or start > now:
        end = stop.window.end if stop.window.end is not None and stop.window.end > now else None
        job.pickup.stop = JobStop(stop.address, stop.lat, stop.lon, Window(now, end))


HANDLERS: dict[type[Command], Handler] = {
    TrackOrder: track_order,
    AssignJob: assign_job,
    UnassignJob: unassign_job,
    OfferJob: offer_job,
    SetProofRequirements: set_proof_requirements,
    AnswerOffer: answer_offer,
    ExpireOffers: expire_offers,
}
