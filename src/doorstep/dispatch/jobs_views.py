"""Read-side queries of dispatch jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select

from doorstep.dispatch.adapters.jobs_repository import job_from_row
from doorstep.dispatch.adapters.tables import drivers, job_offers, job_proofs, job_status_history, jobs
from doorstep.dispatch.domain.errors import NotADriver
from doorstep.dispatch.domain.jobs import Job, JobStatus
from doorstep.dispatch.views import listed
from doorstep.infra.database import Database


@dataclass(frozen=True, slots=True)
class JobView:
    job: Job
    proof: Row[Any] | None = None


async def get_job(database: Database, *, tenant_id: str, job_id: str) -> JobView | None:
    async with database.reader() as session:
        row = (
            await session.execute(select(jobs).where(jobs.c.tenant_id == tenant_id, jobs.c.id == job_id))
        ).first()
        if row is None:
            return None
        offers = (
            await session.execute(
                select(job_offers).where(job_offers.c.job_id == job_id).order_by(job_offers.c.seq)
            )
        ).all()
        history = (
            await session.execute(
                select(job_status_history)
                .where(job_status_history.c.job_id == job_id)
                .order_by(job_status_history.c.seq)
            )
        ).all()
        proof = (await session.execute(select(job_proofs).where(job_proofs.c.job_id == job_id))).first()
    return JobView(job_from_row(row, list(offers), list(history)), proof)


async def list_jobs(
    database: Database,
    *,
    tenant_id: str,
    status: JobStatus | None = None,
    driver_id: str | None = None,
    order_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[JobView], str | None]:
    """Newest first (without offers and history), with the cursor of the next page."""
    query = select(jobs).where(jobs.c.tenant_id == tenant_id)
    if status is not None:
        query = query.where(jobs.c.status == status.value)
    if driver_id is not None:
        query = query.where(jobs.c.driver_id == driver_id)
    if order_id is not None:
        query = query.where(jobs.c.order_id == order_id)
    found, next_cursor = await listed(
        database, jobs, query, lambda row: JobView(job_from_row(row, [], [])), limit=limit, cursor=cursor
    )
    return found, next_cursor


async def driver_id_of_user(database: Database, *, tenant_id: str, user_id: str) -> str:
    async with database.reader() as session:
        found: str | None = await session.scalar(
            select(drivers.c.id).where(drivers.c.tenant_id == tenant_id, drivers.c.user_id == user_id)
        )
    if found is None:
        raise NotADriver("the caller has no driver profile; a dispatcher registers drivers")
    return found
