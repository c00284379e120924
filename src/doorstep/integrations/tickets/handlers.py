"""Support-ticket use cases: open, change, comment, close, reopen; automatic tickets from failures."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.tickets import events
from doorstep.integrations.tickets.domain import (
    Comment,
    Origin,
    Priority,
    SubjectType,
    Ticket,
    TicketStatus,
)
from doorstep.integrations.tickets.errors import TicketAlreadyOpen, TicketNotFound, TicketSubjectNotFound
from doorstep.integrations.tickets.repository import TicketRepository
from doorstep.integrations.tickets.tables import ticket_orders, tickets
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import Forbidden
from doorstep.kernel.ids import new_id
from doorstep.kernel.messages import Command, Event, Message
from doorstep.kernel.permissions import Reach


class Caller(Message):
    """Who acts, and how far they reach: merchant staff act only on tickets about their merchants' orders."""

    actor: str
    reach: Reach = Reach.TENANT
    merchant_ids: frozenset[str] = frozenset()

    def sees(self, ticket: Ticket) -> bool:
        return self.reach is Reach.TENANT or (
            ticket.merchant_id is not None and ticket.merchant_id in self.merchant_ids
        )


class OpenTicket(Command):
    tenant_id: str
    subject_type: SubjectType
    subject_id: str
    title: str
    body: str = ""
    priority: Priority = Priority.NORMAL
    assignee: str | None = None
    caller: Caller


class ChangeTicket(Command):
    """Only what is given changes; `unassign` clears the assignee."""

    tenant_id: str
    ticket_id: str
    title: str | None = None
    priority: Priority | None = None
    assignee: str | None = None
    unassign: bool = False
    status: TicketStatus | None = None
    caller: Caller


class CommentOnTicket(Command):
    tenant_id: str
    ticket_id: str
    body: str
    caller: Caller


class CloseTicket(Command):
    tenant_id: str
    ticket_id: str
    caller: Caller


class ReopenTicket(Command):
    tenant_id: str
    ticket_id: str
    caller: Caller


class RaiseAutomaticTicket(Command):
    """Something failed: open the one ticket for `dedup_key`, or comment on it when one is open already.

    Handled with the causing event, so a redelivered event adds nothing (the inbox)."""

    tenant_id: str
    subject_type: SubjectType
    subject_id: str
    dedup_key: str
    title: str
    body: str
    priority: Priority = Priority.HIGH


class RememberOrders(Command):
    """The merchant of each order, from the orders events: `{order_id, tenant_id, merchant_id, updated_at}`."""

    orders: tuple[dict[str, Any], ...]


AUTOMATIC_ACTOR = "system"


async def open_ticket(cmd: OpenTicket, *, uow: IntegrationsUnitOfWork) -> Ticket:
    now = utcnow()
    caller = cmd.caller
    async with uow:
        repository = TicketRepository(uow.connection)
        merchant_id = await _check_subject(repository, cmd)
        ticket = Ticket(
            id=new_id(),
            tenant_id=cmd.tenant_id,
            subject_type=cmd.subject_type,
            subject_id=cmd.subject_id,
            title=cmd.title,
            body=cmd.body,
            priority=cmd.priority,
            opened_by=caller.actor,
            origin=Origin.PERSON,
            assignee=cmd.assignee,
            merchant_id=merchant_id,
            created_at=now,
            updated_at=now,
        )
        await repository.add(ticket)
        _audit(uow, caller.actor, "ticket.opened", ticket, None, _audit_state(ticket))
        _publish(uow, ticket, events.opened(ticket))
        await uow.commit()
    return ticket


async def _check_subject(repository: TicketRepository, cmd: OpenTicket) -> str | None:
    """The subject must exist in the tenant where this service can tell; the merchant of an order ticket."""
    caller = cmd.caller
    if cmd.subject_type is SubjectType.ORDER:
        known, merchant_id = await repository.order_reference(
            tenant_id=cmd.tenant_id, order_id=cmd.subject_id
        )
        if caller.reach is not Reach.TENANT and (not known or merchant_id not in caller.merchant_ids):
            # Like an order that does not exist: merchant staff learn nothing of other merchants' orders.
            raise TicketSubjectNotFound(
                f"there is no order {cmd.subject_id} of your merchants", field="subject_id", location="body"
            )
        # Orders are the orders service's: staff may name one its events have not reached us with yet.
        return merchant_id
    if caller.reach is not Reach.TENANT:
        raise Forbidden(
            "merchant staff open tickets on their merchants' orders only", permission="tickets.manage"
        )
    if not await repository.subject_exists(
        tenant_id=cmd.tenant_id, subject_type=cmd.subject_type, subject_id=cmd.subject_id
    ):
        raise TicketSubjectNotFound(
            f"there is no {cmd.subject_type.value.replace('_', ' ')} {cmd.subject_id}",
            field="subject_id",
            location="body",
        )
    return None


async def _ticket(repository: TicketRepository, tenant_id: str, ticket_id: str, caller: Caller) -> Ticket:
    ticket = await repository.get(tenant_id=tenant_id, ticket_id=ticket_id, lock=True)
    if ticket is None or not caller.sees(ticket):
        raise TicketNotFound(f"there is no ticket {ticket_id}")
    return ticket


async def change_ticket(cmd: ChangeTicket, *, uow: IntegrationsUnitOfWork) -> Ticket:
    now = utcnow()
    try:
        async with uow:
            repository = TicketRepository(uow.connection)
            ticket = await _ticket(repository, cmd.tenant_id, cmd.ticket_id, cmd.caller)
            before = _audit_state(ticket)
            previous_assignee, previous_status = ticket.assignee, ticket.status
            if cmd.title is not None:
                ticket.title = cmd.title
            if cmd.priority is not None:
                ticket.priority = cmd.priority
            if cmd.unassign or cmd.assignee is not None:
                ticket.assign(None if cmd.unassign else cmd.assignee, now)
            if cmd.status is not None:
                ticket.move(cmd.status, now)
            after = _audit_state(ticket)
            if after != before:
                ticket.updated_at = now
                await repository.save(ticket)
                _audit(uow, cmd.caller.actor, "ticket.changed", ticket, before, after)
                _publish(
                    uow,
                    ticket,
                    events.changed(
                        ticket,
                        actor=cmd.caller.actor,
                        previous_assignee=previous_assignee,
                        previous_status=previous_status,
                    ),
                )
                await uow.commit()
    except IntegrityError:
        raise _already_open() from None
    return ticket


async def comment_on_ticket(cmd: CommentOnTicket, *, uow: IntegrationsUnitOfWork) -> Ticket:
    async with uow:
        repository = TicketRepository(uow.connection)
        ticket = await _ticket(repository, cmd.tenant_id, cmd.ticket_id, cmd.caller)
        comment = Comment(id=new_id(), author=cmd.caller.actor, body=cmd.body, at=utcnow())
        ticket.comment(comment)
        await repository.save(ticket, new_comments=[comment])
        _audit(
            uow,
            cmd.caller.actor,
            "ticket.commented",
            ticket,
            None,
            {"comment_id": comment.id, "body": cmd.body},
        )
        _publish(uow, ticket, events.commented(ticket, comment))
        await uow.commit()
    return ticket


async def close_ticket(cmd: CloseTicket, *, uow: IntegrationsUnitOfWork) -> Ticket:
    """Closing a closed ticket answers it as it is: a retried request changes nothing."""
    async with uow:
        repository = TicketRepository(uow.connection)
        ticket = await _ticket(repository, cmd.tenant_id, cmd.ticket_id, cmd.caller)
        before = {"status": ticket.status}
        if ticket.close(utcnow()):
            await repository.save(ticket)
            _audit(uow, cmd.caller.actor, "ticket.closed", ticket, before, {"status": ticket.status})
            _publish(
                uow, ticket, events.moved(ticket, actor=cmd.caller.actor, previous_status=before["status"])
            )
            await uow.commit()
    return ticket


async def reopen_ticket(cmd: ReopenTicket, *, uow: IntegrationsUnitOfWork) -> Ticket:
    """Reopening an open ticket answers it as it is. An automatic ticket cannot be reopened while a newer
    one tracks the same failure (409): comment there instead."""
    try:
        async with uow:
            repository = TicketRepository(uow.connection)
            ticket = await _ticket(repository, cmd.tenant_id, cmd.ticket_id, cmd.caller)
            before = {"status": ticket.status}
            if ticket.reopen(utcnow()):
                await repository.save(ticket)
                _audit(uow, cmd.caller.actor, "ticket.reopened", ticket, before, {"status": ticket.status})
                _publish(
                    uow,
                    ticket,
                    events.moved(ticket, actor=cmd.caller.actor, previous_status=before["status"]),
                )
                await uow.commit()
    except IntegrityError:
        raise _already_open() from None
    return ticket


def _already_open() -> TicketAlreadyOpen:
    return TicketAlreadyOpen("another open ticket tracks the same failure; comment on that one")


async def raise_automatic_ticket(cmd: RaiseAutomaticTicket, *, uow: IntegrationsUnitOfWork) -> Ticket | None:
    try:
        return await _raise_automatic_ticket(cmd, uow)
    except IntegrityError:
        # The same failure opened a ticket at once in another process (or this event was handled there):
        # now the ticket is there to comment on, or the inbox says there is nothing to do.
        return await _raise_automatic_ticket(cmd, uow)


async def _raise_automatic_ticket(cmd: RaiseAutomaticTicket, uow: IntegrationsUnitOfWork) -> Ticket | None:
    now = utcnow()
    async with uow:
        if await uow.already_handled():
            return None
        repository = TicketRepository(uow.connection)
        ticket = await repository.open_by_key(tenant_id=cmd.tenant_id, dedup_key=cmd.dedup_key)
        if ticket is None:
            ticket = Ticket(
                id=new_id(),
                tenant_id=cmd.tenant_id,
                subject_type=cmd.subject_type,
                subject_id=cmd.subject_id,
                title=cmd.title[:200],
                body=cmd.body,
                priority=cmd.priority,
                opened_by=AUTOMATIC_ACTOR,
                origin=Origin.AUTOMATIC,
                dedup_key=cmd.dedup_key,
                created_at=now,
                updated_at=now,
            )
            await repository.add(ticket)
            _audit(uow, AUTOMATIC_ACTOR, "ticket.opened", ticket, None, _audit_state(ticket))
            _publish(uow, ticket, events.opened(ticket))
        else:
            comment = Comment(id=new_id(), author=AUTOMATIC_ACTOR, body=cmd.body, at=now)
            ticket.comment(comment)
            await repository.save(ticket, new_comments=[comment])
            _audit(uow, AUTOMATIC_ACTOR, "ticket.commented", ticket, None, {"comment_id": comment.id})
            _publish(uow, ticket, events.commented(ticket, comment))
        await uow.commit()
    return ticket


async def remember_orders(cmd: RememberOrders, *, uow: IntegrationsUnitOfWork) -> None:
    """Idempotent by order id and snapshot time, so it needs no inbox (that mark is the order-link
    consumer's). Tickets on these orders follow their order's merchant."""
    if not cmd.orders:
        return
    async with uow:
        await TicketRepository(uow.connection).remember_orders(cmd.orders)
        merchant = (
            select(ticket_orders.c.merchant_id)
            .where(
                ticket_orders.c.order_id == tickets.c.subject_id,
                ticket_orders.c.tenant_id == tickets.c.tenant_id,
            )
            .scalar_subquery()
        )
        await uow.connection.execute(
            update(tickets)
            .where(
                tickets.c.subject_type == SubjectType.ORDER.value,
                tickets.c.subject_id.in_([order["order_id"] for order in cmd.orders]),
            )
            .values(merchant_id=merchant)
        )
        await uow.commit()


def _audit_state(ticket: Ticket) -> dict[str, Any]:
    return {
        "subject_type": ticket.subject_type,
        "subject_id": ticket.subject_id,
        "title": ticket.title,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee": ticket.assignee,
    }


def _publish(uow: IntegrationsUnitOfWork, ticket: Ticket, happened: list[Event]) -> None:
    for event in happened:
        uow.emit(event, tenant_id=ticket.tenant_id)


def _audit(
    uow: IntegrationsUnitOfWork,
    actor: str,
    action: str,
    ticket: Ticket,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    uow.audit(
        tenant_id=ticket.tenant_id,
        actor=actor,
        action=action,
        object_type="ticket",
        object_id=ticket.id,
        before=before,
        after=after,
    )


HANDLERS: dict[type[Command], Handler] = {
    OpenTicket: open_ticket,
    ChangeTicket: change_ticket,
    CommentOnTicket: comment_on_ticket,
    CloseTicket: close_ticket,
    ReopenTicket: reopen_ticket,
    RaiseAutomaticTicket: raise_automatic_ticket,
    RememberOrders: remember_orders,
}
