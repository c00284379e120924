"""The contract events of what happened to a ticket, built from the ticket. No I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from doorstep.contracts.integrations import (
    TicketAssigned,
    TicketClosed,
    TicketCommented,
    TicketOpened,
    TicketReopened,
)
from doorstep.integrations.tickets.domain import Comment, Ticket, TicketStatus
from doorstep.kernel.messages import Event


def _about(ticket: Ticket, actor: str, at: datetime) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "subject_type": ticket.subject_type.value,
        "subject_id": ticket.subject_id,
        "actor": actor,
        "occurred_at": at,
    }


def opened(ticket: Ticket) -> list[Event]:
    """The opening, and its assignment when it was opened with an assignee."""
    about = _about(ticket, ticket.opened_by, ticket.created_at)
    events: list[Event] = [
        TicketOpened(
            **about,
            title=ticket.title,
            priority=ticket.priority.value,
            origin=ticket.origin.value,
            assignee=ticket.assignee,
        )
    ]
    if ticket.assignee is not None:
        events.append(
            TicketAssigned(**about, assignee=ticket.assignee, previous_assignee=None, title=ticket.title)
        )
    return events


def changed(
    ticket: Ticket, *, actor: str, previous_assignee: str | None, previous_status: TicketStatus
) -> list[Event]:
    """A change of assignee, a closing and a reopening are facts of their own; title and priority are not."""
    about = _about(ticket, actor, ticket.updated_at)
    events: list[Event] = []
    if ticket.assignee != previous_assignee:
        events.append(
            TicketAssigned(
                **about, assignee=ticket.assignee, previous_assignee=previous_assignee, title=ticket.title
            )
        )
    if ticket.status is not previous_status:
        events.extend(moved(ticket, actor=actor, previous_status=previous_status))
    return events


def moved(ticket: Ticket, *, actor: str, previous_status: TicketStatus) -> list[Event]:
    """Closed, or opened again from resolved or closed; other moves publish nothing."""
    about = _about(ticket, actor, ticket.updated_at)
    if ticket.status is TicketStatus.CLOSED:
        return [TicketClosed(**about, from_status=previous_status.value)]
    if ticket.status is TicketStatus.OPEN and previous_status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return [TicketReopened(**about, from_status=previous_status.value)]
    return []


def commented(ticket: Ticket, comment: Comment) -> list[Event]:
    return [TicketCommented(**_about(ticket, comment.author, comment.at), comment_id=comment.id)]
