"""The background worker that tells platforms of status changes, off the consumer's path.

A slow or dead platform holds only its own reports: each is sent in its own task, with the client's
timeout, and the next change of the same order waits until the earlier one is sent or has failed.
Leases make several instances safe side by side; a report whose sender died is taken over once its
lease runs out (at least once, never lost).
"""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter

from doorstep.integrations.adapters.platforms.http_client import FETCH_TIMEOUT_SECONDS, HttpxPlatformClient
from doorstep.integrations.adapters.workers import ClaimLoop, lifespan_router
from doorstep.integrations.ports import FetchFailed, PlatformClient
from doorstep.integrations.status_reports.handlers import (
    ClaimDueReports,
    Due,
    RecordReportOutcome,
    ReportingRuntime,
    reporting_adapter,
)
from doorstep.kernel.bus import MessageBus

log = structlog.get_logger()


class Reporter:
    def __init__(
        self,
        *,
        bus: MessageBus,
        client: PlatformClient,
        runtime: ReportingRuntime,
        concurrency: int = 20,
        poll_seconds: float = 5.0,
        lease_seconds: float = 4 * FETCH_TIMEOUT_SECONDS + 60,  # a report may take up to three calls
    ) -> None:
        self.bus = bus
        self.client = client
        self.runtime = runtime
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self._loop = ClaimLoop(
            name="status-reporter",
            claim=self._claim,
            run=self._send,
            concurrency=concurrency,
            poll_seconds=poll_seconds,
        )
        runtime.wake = self.wake

    def wake(self) -> None:
        self._loop.wake()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def close(self) -> None:
        await self.stop()
        close = getattr(self.client, "close", None)
        if close is not None:
            await close()

    async def run_once(self) -> int:
        """Claim what is due now and send it; how many were sent or tried (for tests and tools)."""
        due = await self._claim(self.concurrency)
        await asyncio.gather(*(self._send(one) for one in due))
        return len(due)

    async def _claim(self, limit: int) -> list[Due]:
        due: list[Due] = await self.bus.handle(ClaimDueReports(limit=limit, lease_seconds=self.lease_seconds))
        return due

    async def _send(self, due: Due) -> None:
        report, connection = due.report, due.connection
        error: str | None = None
        adapter = reporting_adapter(report.platform)
        if connection is None:
            error = f"the connection {report.connection_id} is gone"
        elif adapter is None:
            error = f"{report.platform} takes no status reports"
        elif (missing := adapter.missing_credentials(connection.settings)) is not None:
            error = f"the connection has no {missing}"
        else:
            try:
                await adapter.report_status(
                    self.client,
                    settings=connection.settings,
                    secret=connection.secret,
                    external_id=report.external_id,
                    status=report.status,
                    reason=report.reason,
                    idempotency_key=report.id,
                )
            except FetchFailed as failed:
                error = str(failed)
            except Exception as unexpected:  # an adapter's bug fails this report, not the worker
                log.exception("status_report_send_crashed", report_id=report.id)
                error = f"{type(unexpected).__name__}: {unexpected}"
        log.info(
            "status_report_attempt",
            report_id=report.id,
            platform=report.platform,
            order_id=report.order_id,
            status=report.status,
            error=error,
        )
        try:
            await self.bus.handle(
                RecordReportOutcome(report_id=report.id, error=error, at=self.runtime.clock())
            )
        except Exception:
            # The lease runs out and the report is sent again: at least once, never lost.
            log.exception("status_report_outcome_not_recorded", report_id=report.id)
        self._loop.wake()


def worker(bus: MessageBus, runtime: ReportingRuntime, client: HttpxPlatformClient) -> APIRouter:
    return lifespan_router(Reporter(bus=bus, client=client, runtime=runtime), state="status_reporter")
