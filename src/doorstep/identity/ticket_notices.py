"""Telling a user that a support ticket was assigned to them: identity knows their email address.

Identity consumes `TicketAssigned` and asks for one email to the assignee, in the transaction that marks
the event handled, so a redelivered event tells nobody twice. Nobody is told of an assignment they made
themselves, of an unassignment, or when the assignee is not an active user of the tenant with an email.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.contracts.integrations import TicketAssigned
from doorstep.identity.adapters.tables import api_keys, users
from doorstep.identity.adapters.unit_of_work import IdentityUnitOfWork
from doorstep.identity.domain.users import UserStatus
from doorstep.identity.sessions import Notifier
from doorstep.infra.service import Subscription
from doorstep.kernel.bus import Handler, MessageBus
from doorstep.kernel.messages import CloudEvent, Command

PATTERNS = (TicketAssigned.event_type,)
TICKET_ASSIGNED = "integrations.ticket_assigned"


class NotifyTicketAssignee(Command):
    tenant_id: str
    assignee: str
    actor: str
    ticket_id: str
    title: str
    subject_type: str
    subject_id: str


async def notify_ticket_assignee(
    cmd: NotifyTicketAssignee, *, uow: IdentityUnitOfWork, notifier: Notifier
) -> bool:
    """Whether the assignee was told; not when the causing event was handled before."""
    async with uow:
        if await uow.already_handled():
            return False
        email = await uow.connection.scalar(
            select(users.c.email).where(
                users.c.tenant_id == cmd.tenant_id,
                users.c.id == cmd.assignee,
                users.c.status == UserStatus.ACTIVE.value,
            )
        )
        if email:
            notifier.send(
                uow,
                tenant_id=cmd.tenant_id,
                channel="email",
                to=email,
                template=TICKET_ASSIGNED,
                params={
                    "ticket_id": cmd.ticket_id,
                    "title": cmd.title,
                    "subject_type": cmd.subject_type,
                    "subject_id": cmd.subject_id,
                    "assigned_by": await _name_of(uow.connection, cmd.tenant_id, cmd.actor),
                },
                sensitive=[],
            )
        # Marked handled when nobody is told too: a redelivery finds the same nobody.
        await uow.commit()
    return bool(email)


async def _name_of(connection: AsyncConnection, tenant_id: str, actor: str) -> str:
    """How the email names who assigned: a user's or an API key's name; the actor itself otherwise."""
    kind, _, subject = actor.partition(":")
    table = {"user": users, "api_key": api_keys}.get(kind)
    if table is None:
        return actor
    name = await connection.scalar(
        select(table.c.name).where(table.c.tenant_id == tenant_id, table.c.id == subject)
    )
    return name if isinstance(name, str) and name else actor


def subscriptions(bus: MessageBus) -> list[Subscription]:
    async def on_ticket_assigned(envelope: CloudEvent) -> None:
        event = envelope.payload()
        assert isinstance(event, TicketAssigned)
        if event.assignee is None or event.actor == f"user:{event.assignee}":
            return
        await bus.handle(
            NotifyTicketAssignee(
                tenant_id=envelope.tenantid,
                assignee=event.assignee,
                actor=event.actor,
                ticket_id=event.ticket_id,
                title=event.title,
                subject_type=event.subject_type,
                subject_id=event.subject_id,
            ),
            causing_message=envelope,
        )

    return [Subscription(PATTERNS, on_ticket_assigned)]


HANDLERS: dict[type[Command], Handler] = {NotifyTicketAssignee: notify_ticket_assignee}
