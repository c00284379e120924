"""The audit log: every service's `AuditRecorded` events, kept append-only by identity and read back.

Each service writes its entries to its own outbox in the transaction of the change; identity consumes
them and inserts one row per event id, so a redelivery changes nothing. The entries of one delivery
batch are kept in one transaction (`handle_together`). The table refuses UPDATE and DELETE (triggers,
see the migration), and there is no API to change an entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import Insert, Row, Select, String, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from doorstep.contracts.audit import AuditRecorded
from doorstep.identity.adapters.tables import audit_log
from doorstep.identity.adapters.unit_of_work import IdentityUnitOfWork
from doorstep.identity.api import IdentityService
from doorstep.infra.service import Subscription
from doorstep.kernel.auth import Principal, Requires
from doorstep.kernel.bus import Handler, MessageBus
from doorstep.kernel.errors import Forbidden, InvalidInput
from doorstep.kernel.messages import CloudEvent, Command
from doorstep.kernel.pagination import Page, newest_first, page_of
from doorstep.kernel.permissions import Reach
from doorstep.kernel.unit_of_work import handle_together

# What identity consumes to keep the log; every process declares the binding, so no entry is lost
# while identity is down.
PATTERNS = (AuditRecorded.event_type,)


class RecordAudit(Command):
    """Keep one audit entry; `entry_id` is the id of the event that carried it."""

    entry_id: str
    tenant_id: str
    entry: AuditRecorded


class RecordAudits(Command):
    """Keep the entries that these delivered `AuditRecorded` events carry, in one transaction, each once."""

    messages: tuple[CloudEvent, ...]


async def record_audit(cmd: RecordAudit, *, uow: IdentityUnitOfWork) -> None:
    try:
        async with uow:
            if await uow.already_handled():
                return
            await uow.connection.execute(
                _insert_once(uow.connection.dialect.name), _row(cmd.entry_id, cmd.tenant_id, cmd.entry)
            )
            await uow.commit()
    except IntegrityError:
        # The same event delivered twice at once: the inbox let only one through. Anything else is real.
        async with uow:
            if await uow.already_handled():
                return
        raise


async def record_audits(cmd: RecordAudits, *, uow: IdentityUnitOfWork) -> None:
    """Most deliveries are new, so the first attempt writes without reading the inbox; when a mark is
    there already (a redelivery, or the same event delivered twice at once), the second one reads it and
    leaves out what is stored. Anything else fails again and is real."""
    try:
        await _record_audits(cmd.messages, uow, look_for_handled=False)
    except IntegrityError:
        await _record_audits(cmd.messages, uow, look_for_handled=True)


async def _record_audits(
    messages: Sequence[CloudEvent], uow: IdentityUnitOfWork, *, look_for_handled: bool
) -> None:
    fresh = list({message.id: message for message in messages}.values())
    async with uow:
        if look_for_handled:
            handled = await uow.handled_ids([message.id for message in fresh])
            fresh = [message for message in fresh if message.id not in handled]
            if not fresh:
                return
        rows = [_row(message.id, message.tenantid, _entry_of(message)) for message in fresh]
        await uow.connection.execute(_insert_once(uow.connection.dialect.name), rows)
        uow.mark_handled(fresh)
        await uow.commit()


def _entry_of(message: CloudEvent) -> AuditRecorded:
    entry = message.payload()
    if not isinstance(entry, AuditRecorded):
        raise TypeError(f"not an audit entry: {message.type}")
    return entry


def _row(entry_id: str, tenant_id: str, entry: AuditRecorded) -> dict[str, Any]:
    return {
        "id": entry_id,
        "tenant_id": tenant_id,
        "occurred_at": entry.occurred_at,
        "service": _fit("service", entry.service),
        "actor": _fit("actor", entry.actor),
        "action": _fit("action", entry.action),
        "object_type": _fit("object_type", entry.object_type),
        "object_id": _fit("object_id", entry.object_id),
        "before": entry.before,
        "after": entry.after,
        "ip": _fit("ip", entry.ip),
        "user_agent": _fit("user_agent", entry.user_agent),
        "request_id": _fit("request_id", entry.request_id),
    }


def _fit(column: str, value: str | None) -> str | None:
    """Cut a value to its column: an over-long name must not stop the entry from being kept."""
    kind = audit_log.c[column].type
    if value is None or not isinstance(kind, String) or kind.length is None:
        return value
    return value[: kind.length]


def _insert_once(dialect: str) -> Insert:
    """The insert for one row or many (executemany): an id kept before is left as it is."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(audit_log)
    return statement.on_conflict_do_nothing(index_elements=[audit_log.c.id])


def subscriptions(bus: MessageBus) -> list[Subscription]:
    async def on_audit_recorded(envelopes: Sequence[CloudEvent]) -> None:
        # Marked handled by the handler itself, all of them, in the transaction that keeps the entries.
        await bus.handle(RecordAudits(messages=tuple(envelopes)))

    return [Subscription(PATTERNS, handle_together(on_audit_recorded))]


HANDLERS: dict[type[Command], Handler] = {RecordAudit: record_audit, RecordAudits: record_audits}


# --- GET /v1/identity/audit -------------------------------------------------------------------------

router = APIRouter(prefix="/v1/identity", tags=["audit"])


class AuditEntry(BaseModel):
    id: str
    occurred_at: datetime
    service: str
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None
    user_agent: str | None
    request_id: str | None


@router.get(
    "/audit",
    response_model=Page[AuditEntry],
    summary="The audit log: who changed what, when and from where; newest first",
)
async def list_audit(
    principal: Annotated[Principal, Depends(Requires("audit.read"))],
    service: IdentityService,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=80, description="e.g. `user:<id>`, `api_key:<id>`")
    ] = None,
    action: Annotated[
        str | None, Query(min_length=1, max_length=80, description="e.g. `order.status_changed`")
    ] = None,
    object_type: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    object_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    occurred_from: Annotated[datetime | None, Query(description="Inclusive; with a UTC offset")] = None,
    occurred_to: Annotated[datetime | None, Query(description="Exclusive; with a UTC offset")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[AuditEntry]:
    if principal.reach is not Reach.TENANT:
        # Entries are not scoped to merchants or owners: reading them means reading the whole tenant's.
        raise Forbidden("the audit log is open only to callers who see the whole tenant")
    query: Select[Any] = select(audit_log).where(audit_log.c.tenant_id == principal.tenant_id)
    for column, value in (
        (audit_log.c.actor, actor),
        (audit_log.c.action, action),
        (audit_log.c.object_type, object_type),
        (audit_log.c.object_id, object_id),
    ):
        if value is not None:
            query = query.where(column == value)
    start = _utc(occurred_from, "occurred_from")
    if start is not None:
        query = query.where(audit_log.c.occurred_at >= start)
    end = _utc(occurred_to, "occurred_to")
    if end is not None:
        query = query.where(audit_log.c.occurred_at < end)
    query = newest_first(query, audit_log.c.id, limit=limit, cursor=cursor)
    async with service.database.reader() as session:
        rows = (await session.execute(query)).all()
    page, next_cursor = page_of(rows, limit)
    return Page[AuditEntry](items=[_entry(row) for row in page], next_cursor=next_cursor)


def _entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        occurred_at=row.occurred_at,
        service=row.service,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        before=row.before,
        after=row.after,
        ip=row.ip,
        user_agent=row.user_agent,
        request_id=row.request_id,
    )


def _utc(moment: datetime | None, field: str) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidInput("give a UTC offset, e.g. 2026-11-21T18:00:00Z", field=field, location="query")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("the time is out of range", field=field, location="query") from None
