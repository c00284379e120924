"""What a driver does with their own jobs: the stops, the delivery with its proof, a failure, the return.

A job of another driver is not found (404), so that a driver learns nothing of other drivers' jobs.
"""

from __future__ import annotations

from doorstep.dispatch.adapters.unit_of_work import DispatchUnitOfWork
from doorstep.dispatch.domain import execution
from doorstep.dispatch.domain.job_commands import DeliverJob, DriverStep, FailJob
from doorstep.dispatch.domain.jobs import Job
from doorstep.dispatch.jobs_handlers import JobNotFound, driver_of_user, store_job
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.messages import Command

_STEPS = {
    "arrive_pickup": execution.arrive_at_pickup,
    "arrive_dropoff": execution.arrive_at_dropoff,
    "pick_up": execution.pick_up,
    "complete_return": execution.complete_return,
}


async def _my_job(uow: DispatchUnitOfWork, tenant_id: str, user_id: str, job_id: str) -> tuple[Job, str]:
    driver = await driver_of_user(uow, tenant_id, user_id)
    job = await uow.jobs.get(tenant_id=tenant_id, job_id=job_id)
    if job is None or job.driver_id != driver.id:
        raise JobNotFound(job_id)
    return job, driver.id


async def driver_step(cmd: DriverStep, *, uow: DispatchUnitOfWork) -> Job:
    now = utcnow()
    async with uow:
        job, driver_id = await _my_job(uow, cmd.tenant_id, cmd.user_id, cmd.job_id)
        _STEPS[cmd.step](job, driver_id=driver_id, now=now)
        await store_job(uow, job, driver_id, now)
    return job


async def deliver_job(cmd: DeliverJob, *, uow: DispatchUnitOfWork) -> Job:
    now = utcnow()
    async with uow:
        job, driver_id = await _my_job(uow, cmd.tenant_id, cmd.user_id, cmd.job_id)
        execution.deliver(job, driver_id=driver_id, proof=cmd.proof, now=now)
        await store_job(uow, job, driver_id, now)
    return job


async def fail_job(cmd: FailJob, *, uow: DispatchUnitOfWork) -> Job:
    """The drop-off failed: the driver heads back to the pickup with the goods at once."""
    now = utcnow()
    async with uow:
        job, driver_id = await _my_job(uow, cmd.tenant_id, cmd.user_id, cmd.job_id)
        execution.fail(job, driver_id=driver_id, reason=cmd.reason, now=now, note=cmd.note)
        execution.start_return(job, driver_id=driver_id, now=now)
        await store_job(uow, job, driver_id, now)
    return job


HANDLERS: dict[type[Command], Handler] = {
    DriverStep: driver_step,
    DeliverJob: deliver_job,
    FailJob: fail_job,
}
