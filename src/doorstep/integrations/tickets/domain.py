"""A support ticket: who opened it about what, its status, its assignee and its comments. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from doorstep.integrations.tickets.errors import TicketStatusConflict


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class SubjectType(StrEnum):
    ORDER = "order"
    INBOUND_DELIVERY = "inbound_delivery"
    CONNECTION = "connection"
    WEBHOOK_ENDPOINT = "webhook_endpoint"


class Origin(StrEnum):
    PERSON = "person"
    AUTOMATIC = "automatic"


FINAL = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})

# Where each status may go. Resolved and closed go back to open only (reopening).
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.OPEN: frozenset({TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.IN_PROGRESS: frozenset({TicketStatus.OPEN, TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.OPEN, TicketStatus.CLOSED}),
    TicketStatus.CLOSED: frozenset({TicketStatus.OPEN}),
}


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    author: str
    body: str
    at: datetime


@dataclass
class Ticket:
    id: str
    tenant_id: str
    subject_type: SubjectType
    subject_id: str
    title: str
    body: str
    priority: Priority
    opened_by: str
    origin: Origin
    created_at: datetime
    updated_at: datetime
    status: TicketStatus = TicketStatus.OPEN
    assignee: str | None = None
    # The merchant of the order a ticket is about, when known: merchant staff see only their merchants'.
    merchant_id: str | None = None
    # Automatic tickets: what failed (`connection:<id>`); one open ticket per key, later failures comment.
    dedup_key: str | None = None
    closed_at: datetime | None = None
    comments: list[Comment] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL

    @property
    def open_dedup_key(self) -> str | None:
        """The key that holds the one-open-ticket place: only while the ticket is open."""
        return self.dedup_key if self.is_open else None

    def move(self, status: TicketStatus, now: datetime) -> None:
        if status == self.status:
            return
        allowed = TRANSITIONS[self.status]
        if status not in allowed:
            raise TicketStatusConflict(
                f"a ticket that is {self.status.value} cannot become {status.value}",
                current_status=self.status.value,
                allowed_statuses=sorted(s.value for s in allowed),
            )
        self.status = status
        self.closed_at = now if status in FINAL else None
        self.updated_at = now

    def close(self, now: datetime) -> bool:
        """Close it; False when it was closed already (closing again changes nothing)."""
        if self.status is TicketStatus.CLOSED:
            return False
        self.move(TicketStatus.CLOSED, now)
        return True

    def reopen(self, now: datetime) -> bool:
        """Open it again; False when it is not resolved or closed (nothing to reopen)."""
        if self.is_open:
            return False
        self.move(TicketStatus.OPEN, now)
        return True

    def assign(self, assignee: str | None, now: datetime) -> None:
        self.assignee = assignee
        self.updated_at = now

    def comment(self, comment: Comment) -> None:
        self.comments.append(comment)
        self.updated_at = comment.at


def automatic_key(subject_type: SubjectType, subject_id: str) -> str:
    return f"{subject_type.value}:{subject_id}"
