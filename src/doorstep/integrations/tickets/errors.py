"""Errors of the support-ticket API, each a problem with a stable type."""

from doorstep.kernel.errors import Conflict, InvalidInput, NotFound


class TicketNotFound(NotFound):
    slug = "ticket-not-found"
    title = "Ticket not found"


class TicketSubjectNotFound(InvalidInput):
    slug = "ticket-subject-not-found"
    title = "The ticket's subject does not exist"


class TicketStatusConflict(Conflict):
    slug = "ticket-status-conflict"
    title = "The ticket cannot move to that status"


class TicketAlreadyOpen(Conflict):
    slug = "ticket-already-open"
    title = "Another open ticket already tracks this failure"
