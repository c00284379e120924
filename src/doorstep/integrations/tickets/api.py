"""Support tickets: `GET/POST /v1/tickets`, one ticket, its changes, comments, closing and reopening."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Select, select

from doorstep.infra.service import Service
from doorstep.integrations.tickets.domain import Comment, Origin, Priority, SubjectType, Ticket, TicketStatus
from doorstep.integrations.tickets.errors import TicketNotFound
from doorstep.integrations.tickets.handlers import (
    Caller,
    ChangeTicket,
    CloseTicket,
    CommentOnTicket,
    OpenTicket,
    ReopenTicket,
)
from doorstep.integrations.tickets.repository import comments_of, ticket_from_row
from doorstep.integrations.tickets.tables import tickets
from doorstep.kernel.auth import Principal, Requires
from doorstep.kernel.pagination import Page, newest_first, page_of
from doorstep.kernel.permissions import Reach

router = APIRouter(prefix="/v1/tickets", tags=["support tickets"])


async def _service(request: Request) -> Service:
    service: Service = request.app.state.services["integrations"]
    return service


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not accepted")
    return value


IntegrationsService = Annotated[Service, Depends(_service)]
Reads = Annotated[Principal, Depends(Requires("tickets.read"))]
Manages = Annotated[Principal, Depends(Requires("tickets.manage"))]
Title = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
Body = Annotated[str, Field(max_length=10_000), AfterValidator(_no_nul)]
CommentBody = Annotated[str, Field(min_length=1, max_length=10_000), AfterValidator(_no_nul)]
Reference = Annotated[str, Field(min_length=1, max_length=36), AfterValidator(_no_nul)]
SubjectId = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)]


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject_type: SubjectType
    subject_id: SubjectId = Field(
        description="The order's, inbound delivery's, connection's or endpoint's id."
    )
    title: Title
    body: Body = ""
    priority: Priority = Priority.NORMAL
    assignee: Reference | None = Field(default=None, description="A user id of the tenant.")


class TicketPatch(BaseModel):
    """Only the fields sent change; `"assignee": null` unassigns."""

    model_config = ConfigDict(extra="forbid")
    title: Title | None = None
    priority: Priority | None = None
    assignee: Reference | None = None
    status: TicketStatus | None = None


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: CommentBody


class CommentOut(BaseModel):
    id: str
    author: str
    body: str
    at: datetime


class TicketSummary(BaseModel):
    id: str
    subject_type: SubjectType
    subject_id: str
    title: str
    status: TicketStatus
    priority: Priority
    opened_by: str
    assignee: str | None
    origin: Origin
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class TicketOut(TicketSummary):
    body: str
    comments: list[CommentOut]


def caller_of(principal: Principal) -> Caller:
    return Caller(actor=principal.actor, reach=principal.reach, merchant_ids=principal.merchant_ids)


def _summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "subject_type": ticket.subject_type,
        "subject_id": ticket.subject_id,
        "title": ticket.title,
        "status": ticket.status,
        "priority": ticket.priority,
        "opened_by": ticket.opened_by,
        "assignee": ticket.assignee,
        "origin": ticket.origin,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "closed_at": ticket.closed_at,
    }


def _comment_out(comment: Comment) -> CommentOut:
    return CommentOut(id=comment.id, author=comment.author, body=comment.body, at=comment.at)


def _ticket_out(ticket: Ticket) -> TicketOut:
    return TicketOut(
        **_summary(ticket), body=ticket.body, comments=[_comment_out(c) for c in ticket.comments]
    )


def _within_reach(query: Select[Any], principal: Principal) -> Select[Any]:
    """Merchant staff see the tickets on their merchants' orders; tenant-wide staff every ticket."""
    if principal.reach is Reach.TENANT:
        return query
    return query.where(tickets.c.merchant_id.in_(sorted(principal.merchant_ids)))


@router.post(
    "", status_code=201, summary="Open a ticket on an order, an inbound delivery, a connection or an endpoint"
)
async def open_ticket(body: TicketIn, principal: Manages, service: IntegrationsService) -> TicketOut:
    ticket: Ticket = await service.bus.handle(
        OpenTicket(
            tenant_id=principal.tenant_id,
            subject_type=body.subject_type,
            subject_id=body.subject_id,
            title=body.title,
            body=body.body,
            priority=body.priority,
            assignee=body.assignee,
            caller=caller_of(principal),
        )
    )
    return _ticket_out(ticket)


@router.get("", summary="The tenant's tickets, newest first")
async def list_tickets(
    principal: Reads,
    service: IntegrationsService,
    status: TicketStatus | None = None,
    subject_type: SubjectType | None = None,
    subject_id: Annotated[str | None, Query(max_length=100)] = None,
    assignee: Annotated[str | None, Query(max_length=36)] = None,
    origin: Origin | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[TicketSummary]:
    query = _within_reach(select(tickets).where(tickets.c.tenant_id == principal.tenant_id), principal)
    if status is not None:
        query = query.where(tickets.c.status == status.value)
    if subject_type is not None:
        query = query.where(tickets.c.subject_type == subject_type.value)
    if subject_id is not None:
        query = query.where(tickets.c.subject_id == subject_id)
    if assignee is not None:
        query = query.where(tickets.c.assignee == assignee)
    if origin is not None:
        query = query.where(tickets.c.origin == origin.value)
    query = newest_first(query, tickets.c.id, limit=limit, cursor=cursor)
    async with service.database.reader() as session:
        page, next_cursor = page_of((await session.execute(query)).all(), limit)
    return Page[TicketSummary](
        items=[TicketSummary(**_summary(ticket_from_row(row))) for row in page], next_cursor=next_cursor
    )


@router.get("/{ticket_id}", summary="One ticket with its comments")
async def get_ticket(ticket_id: str, principal: Reads, service: IntegrationsService) -> TicketOut:
    query = _within_reach(
        select(tickets).where(tickets.c.tenant_id == principal.tenant_id, tickets.c.id == ticket_id),
        principal,
    )
    async with service.database.reader() as session:
        row = (await session.execute(query)).first()
        if row is None:
            raise TicketNotFound(f"there is no ticket {ticket_id}")
        ticket = ticket_from_row(row)
        ticket.comments = await comments_of(await session.connection(), ticket.id)
    return _ticket_out(ticket)


@router.patch("/{ticket_id}", summary="Change the title, priority, assignee or status")
async def change_ticket(
    ticket_id: str, body: TicketPatch, principal: Manages, service: IntegrationsService
) -> TicketOut:
    ticket: Ticket = await service.bus.handle(
        ChangeTicket(
            tenant_id=principal.tenant_id,
            ticket_id=ticket_id,
            title=body.title,
            priority=body.priority,
            assignee=body.assignee,
            unassign="assignee" in body.model_fields_set and body.assignee is None,
            status=body.status,
            caller=caller_of(principal),
        )
    )
    return _ticket_out(ticket)


@router.post("/{ticket_id}/comments", status_code=201, summary="Comment on a ticket")
async def comment(
    ticket_id: str, body: CommentIn, principal: Manages, service: IntegrationsService
) -> CommentOut:
    ticket: Ticket = await service.bus.handle(
        CommentOnTicket(
            tenant_id=principal.tenant_id, ticket_id=ticket_id, body=body.body, caller=caller_of(principal)
        )
    )
    return _comment_out(ticket.comments[-1])


@router.post("/{ticket_id}/close", summary="Close a ticket (closing a closed one changes nothing)")
async def close(ticket_id: str, principal: Manages, service: IntegrationsService) -> TicketOut:
    ticket: Ticket = await service.bus.handle(
        CloseTicket(tenant_id=principal.tenant_id, ticket_id=ticket_id, caller=caller_of(principal))
    )
    return _ticket_out(ticket)


@router.post("/{ticket_id}/reopen", summary="Open a resolved or closed ticket again")
async def reopen(ticket_id: str, principal: Manages, service: IntegrationsService) -> TicketOut:
    ticket: Ticket = await service.bus.handle(
        ReopenTicket(tenant_id=principal.tenant_id, ticket_id=ticket_id, caller=caller_of(principal))
    )
    return _ticket_out(ticket)
