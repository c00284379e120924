"""Status reports to partner platforms: list them (the failed ones with their error) and retry one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from doorstep.infra.service import Service
from doorstep.integrations.status_reports.domain import ReportState, StatusReport
from doorstep.integrations.status_reports.handlers import RetryStatusReport
from doorstep.integrations.status_reports.repository import report_from_row
from doorstep.integrations.status_reports.tables import status_reports
from doorstep.kernel.auth import Principal, Requires
from doorstep.kernel.pagination import Page, newest_first, page_of

router = APIRouter(prefix="/v1/integrations/status-reports", tags=["status reports"])


async def _service(request: Request) -> Service:
    service: Service = request.app.state.services["integrations"]
    return service


IntegrationsService = Annotated[Service, Depends(_service)]
Reads = Annotated[Principal, Depends(Requires("integrations.read"))]
Manages = Annotated[Principal, Depends(Requires("integrations.manage"))]


class StatusReportOut(BaseModel):
    id: str
    status: ReportState = Field(description="`pending` (being sent or waiting to retry), `sent`, `failed`.")
    order_id: str
    external_id: str = Field(description="The order's id on the platform.")
    platform: str
    connection_id: str
    order_status: str = Field(description="The Doorstep status the platform is told of.")
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None


def _out(report: StatusReport) -> StatusReportOut:
    return StatusReportOut(
        id=report.id,
        status=report.state,
        order_id=report.order_id,
        external_id=report.external_id,
        platform=report.platform,
        connection_id=report.connection_id,
        order_status=report.status,
        attempts=report.attempts,
        last_error=report.last_error,
        next_attempt_at=report.next_attempt_at if report.state is ReportState.PENDING else None,
        created_at=report.created_at,
        sent_at=report.sent_at,
    )


@router.get("", summary="Status changes told (or to tell) the platforms orders came from, newest first")
async def list_reports(
    principal: Reads,
    service: IntegrationsService,
    status: ReportState | None = None,
    order_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[StatusReportOut]:
    query = select(status_reports).where(status_reports.c.tenant_id == principal.tenant_id)
    if status is not None:
        query = query.where(status_reports.c.state == status.value)
    if order_id is not None:
        query = query.where(status_reports.c.order_id == order_id)
    query = newest_first(query, status_reports.c.id, limit=limit, cursor=cursor)
    async with service.database.reader() as session:
        page, next_cursor = page_of((await session.execute(query)).all(), limit)
    return Page[StatusReportOut](items=[_out(report_from_row(row)) for row in page], next_cursor=next_cursor)


@router.post("/{report_id}/retry", summary="Send a failed (or sent) status report again")
async def retry(report_id: str, principal: Manages, service: IntegrationsService) -> StatusReportOut:
    report: StatusReport = await service.bus.handle(
        RetryStatusReport(tenant_id=principal.tenant_id, report_id=report_id, actor=principal.actor)
    )
    return _out(report)
