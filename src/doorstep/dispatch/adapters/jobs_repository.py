"""Jobs in the dispatch database: the job row, its offers, status history and proof; versioned writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.dispatch.adapters.repositories import aware
from doorstep.dispatch.adapters.tables import job_offers, job_proofs, job_status_history, jobs
from doorstep.dispatch.domain.job_events import Actor, FailureReason, TaskKind
from doorstep.dispatch.domain.jobs import (
    Job,
    JobStatus,
    JobStop,
    Offer,
    OfferStatus,
    StatusChange,
    Task,
    TaskStatus,
    Window,
)
from doorstep.dispatch.domain.proof import ProofRequirements
from doorstep.kernel.errors import Conflict


class JobChangedConcurrently(Conflict):
    slug = "dispatch-job-changed-concurrently"
    title = "The job changed meanwhile"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was changed by someone else meanwhile; read it and try again")


class JobRepository:
    def __init__(self, connection: AsyncConnection, *, lock_rows: bool) -> None:
        self.connection = connection
        self._lock_rows = lock_rows
        # What was read: the version to check at save and how much history is stored already.
        self._versions: dict[str, int] = {}
        self._stored_history: dict[str, int] = {}

    async def add(self, job: Job) -> None:
        await self.connection.execute(insert(jobs).values({**_row(job), "version": 1}))
        self._versions[job.id] = 1
        self._stored_history[job.id] = 0
        await self._write_children(job)

    async def save(self, job: Job) -> None:
        """Write the job back; `JobChangedConcurrently` if another writer saved it since it was read."""
        version = self._versions[job.id]
        result = await self.connection.execute(
            update(jobs)
            .where(jobs.c.id == job.id, jobs.c.version == version)
            .values({**_row(job), "version": version + 1})
        )
        if getattr(result, "rowcount", 1) != 1:
            raise JobChangedConcurrently(job.id)
        self._versions[job.id] = version + 1
        await self._write_children(job)

    async def get(self, *, tenant_id: str, job_id: str) -> Job | None:
        return await self._one(jobs.c.tenant_id == tenant_id, jobs.c.id == job_id)

    async def for_order(self, *, tenant_id: str, order_id: str) -> Job | None:
        return await self._one(jobs.c.tenant_id == tenant_id, jobs.c.order_id == order_id)

    async def open_jobs_of(self, *, tenant_id: str, driver_id: str, other_than: str) -> int:
        """How many unfinished jobs the driver carries besides `other_than`."""
        active = [s.value for s in _WITH_DRIVER]
        found = await self.connection.scalar(
            select(func.count())
            .select_from(jobs)
            .where(
                jobs.c.tenant_id == tenant_id,
                jobs.c.driver_id == driver_id,
                jobs.c.id != other_than,
                jobs.c.status.in_(active),
            )
        )
        return int(found or 0)

    async def with_offers_due(self, *, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(tenant id, job id) of jobs with an open offer that has expired by `now`."""
        rows = await self.connection.execute(
            select(job_offers.c.tenant_id, job_offers.c.job_id)
            .where(job_offers.c.status == OfferStatus.OPEN.value, job_offers.c.expires_at <= now)
            .distinct()
            .limit(limit)
        )
        return [(row.tenant_id, row.job_id) for row in rows]

    async def _one(self, *conditions: Any) -> Job | None:
        query = select(jobs).where(*conditions)
        if self._lock_rows:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        if row is None:
            return None
        offers = await self.connection.execute(
            select(job_offers).where(job_offers.c.job_id == row.id).order_by(job_offers.c.seq)
        )
        history = await self.connection.execute(
            select(job_status_history)
            .where(job_status_history.c.job_id == row.id)
            .order_by(job_status_history.c.seq)
        )
        job = job_from_row(row, list(offers), list(history))
        self._versions[job.id] = row.version
        self._stored_history[job.id] = len(job.history)
        return job

    async def _write_children(self, job: Job) -> None:
        await self.connection.execute(delete(job_offers).where(job_offers.c.job_id == job.id))
        if job.offers:
            await self.connection.execute(
                insert(job_offers), [_offer_row(job, seq, offer) for seq, offer in enumerate(job.offers)]
            )
        stored = self._stored_history.get(job.id, 0)
        if len(job.history) > stored:
            await self.connection.execute(
                insert(job_status_history),
                [_history_row(job, seq, change) for seq, change in enumerate(job.history) if seq >= stored],
            )
            self._stored_history[job.id] = len(job.history)
        if job.proof is not None:
            exists = await self.connection.scalar(
                select(job_proofs.c.job_id).where(job_proofs.c.job_id == job.id)
            )
            if exists is None:
                await self.connection.execute(insert(job_proofs).values(_proof_row(job)))


_WITH_DRIVER = frozenset(
    {
        JobStatus.ASSIGNED,
        JobStatus.ARRIVED_AT_PICKUP,
        JobStatus.PICKED_UP,
        JobStatus.ARRIVED_AT_DROPOFF,
        JobStatus.FAILED,
        JobStatus.RETURNING,
    }
)


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _task_doc(task: Task) -> dict[str, Any]:
    stop = task.stop
    return {
        "kind": task.kind.value,
        "address": stop.address,
        "lat": stop.lat,
        "lon": stop.lon,
        "window_start": _when(stop.window.start),
        "window_end": _when(stop.window.end),
        "status": task.status.value,
        "arrived_at": _when(task.arrived_at),
        "done_at": _when(task.done_at),
    }


def _task(doc: dict[str, Any]) -> Task:
    stop = JobStop(
        address=doc["address"],
        lat=doc["lat"],
        lon=doc["lon"],
        window=Window(_parse(doc["window_start"]), _parse(doc["window_end"])),
    )
    return Task(
        TaskKind(doc["kind"]),
        stop,
        status=TaskStatus(doc["status"]),
        arrived_at=_parse(doc["arrived_at"]),
        done_at=_parse(doc["done_at"]),
    )


def _row(job: Job) -> dict[str, Any]:
    req = job.requirements
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "order_id": job.order_id,
        "status": job.status.value,
        "driver_id": job.driver_id,
        "pinned": job.pinned,
        "size": job.size,
        "skills": sorted(job.skills),
        "priority": job.priority,
        "pickup": _task_doc(job.pickup),
        "dropoff": _task_doc(job.dropoff),
        "return_task": _task_doc(job.return_task) if job.return_task is not None else None,
        "requirements": {
            "photo": req.photo,
            "signature": req.signature,
            "pin": req.pin,
            "minimum_age": req.minimum_age,
            "cash_to_collect": req.cash_to_collect,
        },
        "stop_positions": {kind.value: place for kind, place in job.stop_positions.items()},
        "declined_by": sorted(job.declined_by),
        "expired_for": sorted(job.expired_for),
        "failure": job.failure.value if job.failure is not None else None,
        "courier": job.courier,
        "created_at": job.created_at,
        "updated_at": job.history[-1].at if job.history else job.created_at,
    }


def _offer_row(job: Job, seq: int, offer: Offer) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "seq": seq,
        "tenant_id": job.tenant_id,
        "driver_id": offer.driver_id,
        "offered_at": offer.offered_at,
        "expires_at": offer.expires_at,
        "status": offer.status.value,
        "answered_at": offer.answered_at,
    }


def _history_row(job: Job, seq: int, change: StatusChange) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "seq": seq,
        "tenant_id": job.tenant_id,
        "from_status": change.from_status.value if change.from_status is not None else None,
        "to_status": change.to_status.value,
        "actor": change.actor.value,
        "reason": change.reason,
        "at": change.at,
    }


def _proof_row(job: Job) -> dict[str, Any]:
    proof = job.proof
    assert proof is not None
    age = proof.age_check
    return {
        "job_id": job.id,
        "tenant_id": job.tenant_id,
        "photo_keys": list(proof.photo_keys),
        "signature_key": proof.signature_key,
        # The proof passed the job's check before it was stored: a required PIN matched.
        "pin_ok": job.requirements.pin is not None,
        "age_check": (
            {"birth_year": age.birth_year, "verified_by_id": age.verified_by_id} if age is not None else None
        ),
        "cash_collected": proof.cash_collected,
        "recorded_at": job.dropoff.done_at or job.created_at,
    }


def job_from_row(row: Row[Any], offers: list[Row[Any]], history: list[Row[Any]]) -> Job:
    req = row.requirements
    return Job(
        id=row.id,
        tenant_id=row.tenant_id,
        order_id=row.order_id,
        pickup=_task(row.pickup),
        dropoff=_task(row.dropoff),
        size=row.size,
        skills=frozenset(row.skills),
        priority=row.priority,
        requirements=ProofRequirements(
            photo=req["photo"],
            signature=req["signature"],
            pin=req["pin"],
            minimum_age=req["minimum_age"],
            cash_to_collect=req["cash_to_collect"],
        ),
        status=JobStatus(row.status),
        created_at=aware(row.created_at),
        driver_id=row.driver_id,
        pinned=row.pinned,
        stop_positions={TaskKind(kind): place for kind, place in row.stop_positions.items()},
        offers=[
            Offer(
                driver_id=o.driver_id,
                offered_at=aware(o.offered_at),
                expires_at=aware(o.expires_at),
                status=OfferStatus(o.status),
                answered_at=aware(o.answered_at) if o.answered_at is not None else None,
            )
            for o in offers
        ],
        declined_by=set(row.declined_by),
        expired_for=set(row.expired_for),
        return_task=_task(row.return_task) if row.return_task is not None else None,
        failure=FailureReason(row.failure) if row.failure is not None else None,
        courier=row.courier,
        history=[
            StatusChange(
                JobStatus(h.from_status) if h.from_status is not None else None,
                JobStatus(h.to_status),
                Actor(h.actor),
                aware(h.at),
                h.reason,
            )
            for h in history
        ],
    )
