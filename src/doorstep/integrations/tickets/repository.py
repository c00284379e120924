"""Tickets and their comments: rows in, domain objects out; and the order references tickets check."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.integrations.adapters.tables import connections, inbound_deliveries
from doorstep.integrations.outbound.tables import webhook_endpoints
from doorstep.integrations.tickets.domain import (
    Comment,
    Origin,
    Priority,
    SubjectType,
    Ticket,
    TicketStatus,
)
from doorstep.integrations.tickets.tables import ticket_comments, ticket_orders, tickets

# The subjects this service keeps itself, by the table that holds them.
_OWN_SUBJECTS = {
    SubjectType.INBOUND_DELIVERY: inbound_deliveries,
    SubjectType.CONNECTION: connections,
    SubjectType.WEBHOOK_ENDPOINT: webhook_endpoints,
}


class TicketRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, ticket: Ticket) -> None:
        await self.connection.execute(insert(tickets).values(_row(ticket)))
        await self._add_comments(ticket, ticket.comments)

    async def save(self, ticket: Ticket, *, new_comments: Sequence[Comment] = ()) -> None:
        await self.connection.execute(update(tickets).where(tickets.c.id == ticket.id).values(_row(ticket)))
        await self._add_comments(ticket, new_comments)

    async def get(self, *, tenant_id: str, ticket_id: str, lock: bool = False) -> Ticket | None:
        query = select(tickets).where(tickets.c.tenant_id == tenant_id, tickets.c.id == ticket_id)
        if lock:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        return await self._with_comments(ticket_from_row(row)) if row else None

    async def open_by_key(self, *, tenant_id: str, dedup_key: str) -> Ticket | None:
        row = (
            await self.connection.execute(
                select(tickets)
                .where(tickets.c.tenant_id == tenant_id, tickets.c.open_dedup_key == dedup_key)
                .with_for_update()
            )
        ).first()
        return await self._with_comments(ticket_from_row(row)) if row else None

    async def subject_exists(self, *, tenant_id: str, subject_type: SubjectType, subject_id: str) -> bool:
        table = _OWN_SUBJECTS[subject_type]
        found = await self.connection.scalar(
            select(table.c.id).where(table.c.tenant_id == tenant_id, table.c.id == subject_id)
        )
        return found is not None

    async def order_reference(self, *, tenant_id: str, order_id: str) -> tuple[bool, str | None]:
        """Whether the order is known here for this tenant, and its merchant."""
        row = (
            await self.connection.execute(
                select(ticket_orders.c.merchant_id).where(
                    ticket_orders.c.tenant_id == tenant_id, ticket_orders.c.order_id == order_id
                )
            )
        ).first()
        return (True, row.merchant_id) if row else (False, None)

    async def remember_orders(self, orders: Sequence[dict[str, Any]]) -> None:
        """Keep each order's merchant; a redelivered or older snapshot leaves a newer one as it is."""
        if not orders:
            return
        dialect = self.connection.dialect.name
        statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ticket_orders)
        newer = statement.excluded.updated_at >= ticket_orders.c.updated_at
        upsert = statement.on_conflict_do_update(
            index_elements=[ticket_orders.c.order_id],
            set_={"merchant_id": statement.excluded.merchant_id, "updated_at": statement.excluded.updated_at},
            where=newer,
        )
        await self.connection.execute(upsert, list(orders))

    async def _add_comments(self, ticket: Ticket, comments: Sequence[Comment]) -> None:
        if comments:
            await self.connection.execute(
                insert(ticket_comments),
                [
                    {
                        "id": c.id,
                        "ticket_id": ticket.id,
                        "tenant_id": ticket.tenant_id,
                        "author": c.author,
                        "body": c.body,
                        "at": c.at,
                    }
                    for c in comments
                ],
            )

    async def _with_comments(self, ticket: Ticket) -> Ticket:
        ticket.comments = await comments_of(self.connection, ticket.id)
        return ticket


async def comments_of(connection: AsyncConnection, ticket_id: str) -> list[Comment]:
    rows = await connection.execute(
        select(ticket_comments)
        .where(ticket_comments.c.ticket_id == ticket_id)
        .order_by(ticket_comments.c.at, ticket_comments.c.id)
    )
    return [Comment(id=row.id, author=row.author, body=row.body, at=_aware(row.at)) for row in rows]


def _row(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "tenant_id": ticket.tenant_id,
        "subject_type": ticket.subject_type.value,
        "subject_id": ticket.subject_id,
        "title": ticket.title,
        "body": ticket.body,
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "opened_by": ticket.opened_by,
        "assignee": ticket.assignee,
        "origin": ticket.origin.value,
        "merchant_id": ticket.merchant_id,
        "dedup_key": ticket.dedup_key,
        "open_dedup_key": ticket.open_dedup_key,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "closed_at": ticket.closed_at,
    }


def ticket_from_row(row: Row[Any]) -> Ticket:
    return Ticket(
        id=row.id,
        tenant_id=row.tenant_id,
        subject_type=SubjectType(row.subject_type),
        subject_id=row.subject_id,
        title=row.title,
        body=row.body,
        status=TicketStatus(row.status),
        priority=Priority(row.priority),
        opened_by=row.opened_by,
        assignee=row.assignee,
        origin=Origin(row.origin),
        merchant_id=row.merchant_id,
        dedup_key=row.dedup_key,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        closed_at=_aware(row.closed_at) if row.closed_at is not None else None,
    )


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
