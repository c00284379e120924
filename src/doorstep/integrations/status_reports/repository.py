"""Status reports: rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, exists, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.integrations.adapters.claims import LeasedQueue
from doorstep.integrations.adapters.tables import inbound_deliveries
from doorstep.integrations.domain.model import DeliveryStatus
from doorstep.integrations.status_reports.domain import ReportState, StatusReport
from doorstep.integrations.status_reports.tables import status_reports

# The reports of one order are sent in the order its changes happened.
QUEUE = LeasedQueue(status_reports, queue=("order_id",))


class StatusReportRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def connection_of(self, *, tenant_id: str, platform: str, external_id: str) -> str | None:
        """The connection the platform's order last arrived through (the inbound log knows)."""
        found: str | None = await self.connection.scalar(
            select(inbound_deliveries.c.connection_id)
            .where(
                inbound_deliveries.c.tenant_id == tenant_id,
                inbound_deliveries.c.platform == platform,
                inbound_deliveries.c.external_id == external_id,
                inbound_deliveries.c.status == DeliveryStatus.MAPPED.value,
            )
            .order_by(inbound_deliveries.c.received_at.desc())
            .limit(1)
        )
        return found

    async def stored_events(self, event_ids: Collection[str]) -> set[str]:
        rows = await self.connection.scalars(
            select(status_reports.c.event_id).where(status_reports.c.event_id.in_(list(event_ids)))
        )
        return set(rows)

    async def add(self, reports: Sequence[StatusReport]) -> None:
        if reports:
            await self.connection.execute(insert(status_reports), [_row(report) for report in reports])

    async def get(self, *, tenant_id: str, report_id: str, lock: bool = False) -> StatusReport | None:
        query = select(status_reports).where(
            status_reports.c.tenant_id == tenant_id, status_reports.c.id == report_id
        )
        if lock:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        return report_from_row(row) if row else None

    async def by_id(self, report_ids: Collection[str]) -> dict[str, StatusReport]:
        query = (
            select(status_reports)
            .where(status_reports.c.id.in_(sorted(report_ids)))
            .order_by(status_reports.c.id)
            .with_for_update()
        )
        return {row.id: report_from_row(row) for row in await self.connection.execute(query)}

    async def sent_after(self, report: StatusReport) -> bool:
        """Whether a later change of the same order has reached the platform already."""
        seq = select(status_reports.c.seq).where(status_reports.c.id == report.id).scalar_subquery()
        found = await self.connection.scalar(
            select(status_reports.c.id)
            .where(
                status_reports.c.order_id == report.order_id,
                status_reports.c.state == ReportState.SENT.value,
                status_reports.c.seq > seq,
            )
            .limit(1)
        )
        return found is not None

    async def claim(self, *, now: datetime, lease_until: datetime, limit: int) -> list[StatusReport]:
        """Lease the due reports that head their order's queue: an earlier pending report of the same
        order (waiting for its retry, or being sent) holds the later ones back."""
        query = QUEUE.locked(
            select(status_reports).where(*QUEUE.due(now)).order_by(status_reports.c.seq).limit(limit)
        )
        taken = [report_from_row(row) for row in await self.connection.execute(query)]
        if taken:
            await self.connection.execute(QUEUE.lease([report.id for report in taken], until=lease_until))
        return taken

    async def settle(self, reports: Sequence[StatusReport]) -> None:
        """Store what attempts (or a retry) changed, and free the leases."""
        await QUEUE.settle(
            self.connection,
            [
                {
                    "id": report.id,
                    "state": report.state.value,
                    "attempts": report.attempts,
                    "next_attempt_at": report.next_attempt_at,
                    "last_error": report.last_error,
                    "sent_at": report.sent_at,
                }
                for report in reports
            ],
        )

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete up to `limit` sent or failed reports whose last attempt was due before `before`; how
        many went. A sent report stays while an earlier failed one of its order does: it is what
        keeps a retry of that one from moving the platform's order back (`sent_after`)."""
        reports = status_reports.c
        earlier = status_reports.alias("earlier")
        kept_earlier_failure = exists().where(
            earlier.c.order_id == reports.order_id,
            earlier.c.state == ReportState.FAILED.value,
            earlier.c.seq < reports.seq,
            earlier.c.next_attempt_at >= before,
        )
        done = (
            reports.state.in_([ReportState.SENT.value, ReportState.FAILED.value]),
            reports.next_attempt_at < before,
            or_(reports.state != ReportState.SENT.value, ~kept_earlier_failure),
        )
        batch = (
            select(reports.seq)
            .where(*done)
            .limit(limit)
            .with_for_update(skip_locked=True, of=status_reports)
            .scalar_subquery()
        )
        deleted = await self.connection.execute(delete(status_reports).where(reports.seq.in_(batch), *done))
        return deleted.rowcount


def _row(report: StatusReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "tenant_id": report.tenant_id,
        "connection_id": report.connection_id,
        "platform": report.platform,
        "order_id": report.order_id,
        "external_id": report.external_id,
        "event_id": report.event_id,
        "status": report.status,
        "reason": report.reason,
        "created_at": report.created_at,
        "next_attempt_at": report.next_attempt_at,
        "state": report.state.value,
        "attempts": report.attempts,
        "last_error": report.last_error,
        "sent_at": report.sent_at,
    }


def report_from_row(row: Row[Any]) -> StatusReport:
    return StatusReport(
        id=row.id,
        tenant_id=row.tenant_id,
        connection_id=row.connection_id,
        platform=row.platform,
        order_id=row.order_id,
        external_id=row.external_id,
        event_id=row.event_id,
        status=row.status,
        reason=row.reason,
        created_at=_aware(row.created_at),
        next_attempt_at=_aware(row.next_attempt_at),
        state=ReportState(row.state),
        attempts=row.attempts,
        last_error=row.last_error,
        sent_at=_aware(row.sent_at) if row.sent_at is not None else None,
    )


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
