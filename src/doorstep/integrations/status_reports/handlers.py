"""Status-report use cases: store the changes to tell, claim the due ones, record outcomes, retry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError

from doorstep.contracts.orders import OrderStatusChanged
from doorstep.integrations.adapters.platforms import PLATFORMS
from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.domain.model import Connection
from doorstep.integrations.ports import StatusReporting
from doorstep.integrations.status_reports.domain import ReportState, StatusReport
from doorstep.integrations.status_reports.errors import StatusReportNotFound, StatusReportNotRetryable
from doorstep.integrations.status_reports.repository import StatusReportRepository
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import CloudEvent, Command

log = structlog.get_logger()


@dataclass
class ReportingRuntime:
    """What the status-report handlers take from outside: the time, who to wake, and what was said."""

    clock: Callable[[], datetime] = utcnow
    wake: Callable[[], None] = field(default=lambda: None)
    # Connections already logged as lacking credentials: said once per process, not once per order.
    told_missing: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Due:
    report: StatusReport
    connection: Connection | None  # None when the connection was removed meanwhile


def reporting_adapter(platform: str) -> StatusReporting | None:
    adapter = PLATFORMS.get(platform)
    return adapter if isinstance(adapter, StatusReporting) else None


class StoreStatusReports(Command):
    """`OrderStatusChanged` events delivered together: one report per change a platform should hear of."""

    events: tuple[CloudEvent, ...]


class ClaimDueReports(Command):
    limit: int
    lease_seconds: float


class RecordReportOutcome(Command):
    report_id: str
    error: str | None  # None when the platform took it
    at: datetime | None = None


class RetryStatusReport(Command):
    tenant_id: str
    report_id: str
    actor: str = "system"


async def store_status_reports(
    cmd: StoreStatusReports, *, uow: IntegrationsUnitOfWork, status_reports: ReportingRuntime
) -> int:
    """Idempotent by event id: a redelivered change adds nothing."""
    try:
        stored = await _store(cmd, uow, status_reports)
    except IntegrityError:
        stored = await _store(cmd, uow, status_reports)  # the same event stored at once elsewhere
    if stored:
        status_reports.wake()
    return stored


async def _store(cmd: StoreStatusReports, uow: IntegrationsUnitOfWork, runtime: ReportingRuntime) -> int:
    changes: list[tuple[CloudEvent, OrderStatusChanged, StatusReporting]] = []
    for envelope in cmd.events:
        event = envelope.payload()
        if not isinstance(event, OrderStatusChanged) or event.external_id is None:
            continue
        adapter = reporting_adapter(event.source)
        if adapter is not None and adapter.reports(event.to_status.value):
            changes.append((envelope, event, adapter))
    if not changes:
        return 0
    now = runtime.clock()
    async with uow:
        repository = StatusReportRepository(uow.connection)
        stored = await repository.stored_events([envelope.id for envelope, _, _ in changes])
        connections: dict[str, Connection | None] = {}
        reports: list[StatusReport] = []
        for envelope, event, adapter in changes:
            if envelope.id in stored:
                continue
            assert event.external_id is not None
            connection_id = await repository.connection_of(
                tenant_id=envelope.tenantid, platform=event.source, external_id=event.external_id
            )
            if connection_id is None:
                continue  # not an order a connection delivered (e.g. placed by hand with that source)
            if connection_id not in connections:
                connections[connection_id] = await uow.connections.get(
                    tenant_id=envelope.tenantid, connection_id=connection_id
                )
            connection = connections[connection_id]
            if connection is None:
                continue
            missing = adapter.missing_credentials(connection.settings)
            if missing is not None:
                if connection.id not in runtime.told_missing:
                    runtime.told_missing.add(connection.id)
                    log.info(
                        "status_not_reported",
                        connection_id=connection.id,
                        platform=connection.platform,
                        missing=missing,
                    )
                continue
            stored.add(envelope.id)
            reports.append(
                StatusReport(
                    id=new_id(),
                    tenant_id=envelope.tenantid,
                    connection_id=connection.id,
                    platform=connection.platform,
                    order_id=event.order_id,
                    external_id=event.external_id,
                    event_id=envelope.id,
                    status=event.to_status.value,
                    reason=event.reason,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
        await repository.add(reports)
        await uow.commit()
    return len(reports)


async def claim_due_reports(
    cmd: ClaimDueReports, *, uow: IntegrationsUnitOfWork, status_reports: ReportingRuntime
) -> list[Due]:
    now = status_reports.clock()
    async with uow:
        claimed = await StatusReportRepository(uow.connection).claim(
            now=now, lease_until=now + timedelta(seconds=cmd.lease_seconds), limit=cmd.limit
        )
        connections: dict[str, Connection | None] = {}
        for report in claimed:
            if report.connection_id not in connections:
                connections[report.connection_id] = await uow.connections.get(
                    tenant_id=report.tenant_id, connection_id=report.connection_id
                )
        await uow.commit()
    return [Due(report, connections[report.connection_id]) for report in claimed]


async def record_report_outcome(
    cmd: RecordReportOutcome, *, uow: IntegrationsUnitOfWork, status_reports: ReportingRuntime
) -> StatusReport | None:
    at = cmd.at or status_reports.clock()
    async with uow:
        repository = StatusReportRepository(uow.connection)
        report = (await repository.by_id([cmd.report_id])).get(cmd.report_id)
        if report is None or report.state is not ReportState.PENDING:
            return report
        if cmd.error is None:
            report.succeeded(at)
        else:
            report.failed(cmd.error, at)
        await repository.settle([report])
        await uow.commit()
    if report.state is not ReportState.PENDING:
        status_reports.wake()  # the next change of the same order may go now
    return report


async def retry_status_report(
    cmd: RetryStatusReport, *, uow: IntegrationsUnitOfWork, status_reports: ReportingRuntime
) -> StatusReport:
    now = status_reports.clock()
    async with uow:
        repository = StatusReportRepository(uow.connection)
        report = await repository.get(tenant_id=cmd.tenant_id, report_id=cmd.report_id, lock=True)
        if report is None:
            raise StatusReportNotFound(f"there is no status report {cmd.report_id}")
        if report.state is ReportState.PENDING:
            raise StatusReportNotRetryable(f"the status report {report.id} is still being sent")
        if await repository.sent_after(report):
            # Sending it now would move the platform's order back to an older status.
            raise StatusReportNotRetryable(
                f"a later status of order {report.order_id} has reached {report.platform} already"
            )
        before = {"state": report.state.value, "attempts": report.attempts}
        report.retry(now)
        await repository.settle([report])
        uow.audit(
            tenant_id=report.tenant_id,
            actor=cmd.actor,
            action="status_report.retried",
            object_type="status_report",
            object_id=report.id,
            before=before,
            after={"state": report.state.value, "attempts": report.attempts},
        )
        await uow.commit()
    status_reports.wake()
    return report


HANDLERS: dict[type[Command], Handler] = {
    StoreStatusReports: store_status_reports,
    ClaimDueReports: claim_due_reports,
    RecordReportOutcome: record_report_outcome,
    RetryStatusReport: retry_status_report,
}
