"""What the integrations service keeps only for a while, deleted by the runtime's housekeeping.

Each kind goes in batches of `BATCH` rows, one transaction each, so a large backlog never holds locks
(or SQLite's single writer) for long.

Kept on purpose: the inbound delivery log. A platform's redelivery of a webhook is recognised by its
row (`platform_delivery_id`), status reports find the connection an order came through in it, and
tickets point at its rows; none of that has an end date.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.infra.database import Database
from doorstep.integrations.couriers.tables import courier_deliveries, courier_quotes
from doorstep.integrations.deliveries.tables import api_deliveries, delivery_quotes
from doorstep.integrations.outbound.repository import WebhookRepository
from doorstep.integrations.status_reports.repository import StatusReportRepository
from doorstep.kernel.clock import utcnow

log = structlog.get_logger()

BATCH = 1000
# An expired quote nobody accepted is kept a day, for whoever asks why it was refused.
QUOTE_GRACE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Pruned:
    webhook_messages: int
    status_reports: int
    delivery_quotes: int
    courier_quotes: int


async def prune_integrations(
    database: Database, *, retention: timedelta, now: datetime | None = None, batch: int = BATCH
) -> Pruned:
    """Delete status webhooks and status reports done with for `retention`, and quotes that expired
    unaccepted a day ago."""
    now = now or utcnow()
    before, expired_before = now - retention, now - QUOTE_GRACE
    pruned = Pruned(
        webhook_messages=await _in_batches(
            database, lambda c: WebhookRepository(c).prune(before=before, limit=batch), batch
        ),
        status_reports=await _in_batches(
            database, lambda c: StatusReportRepository(c).prune(before=before, limit=batch), batch
        ),
        delivery_quotes=await _in_batches(
            database, lambda c: _prune_delivery_quotes(c, before=expired_before, limit=batch), batch
        ),
        courier_quotes=await _in_batches(
            database, lambda c: _prune_courier_quotes(c, before=expired_before, limit=batch), batch
        ),
    )
    if any(asdict(pruned).values()):
        log.info("integrations_pruned", **asdict(pruned))
    return pruned


async def _in_batches(
    database: Database, prune_batch: Callable[[AsyncConnection], Awaitable[int]], batch: int
) -> int:
    total = 0
    while True:
        async with database.writer_engine.begin() as connection:
            deleted = await prune_batch(connection)
        total += deleted
        if deleted < batch:
            return total


async def _prune_delivery_quotes(connection: AsyncConnection, *, before: datetime, limit: int) -> int:
    """Delivery-API quotes that expired before `before` without a delivery (the delivery keeps its own)."""
    unaccepted = (
        delivery_quotes.c.expires_at < before,
        ~exists().where(api_deliveries.c.quote_id == delivery_quotes.c.id),
    )
    batch = select(delivery_quotes.c.id).where(*unaccepted).limit(limit).scalar_subquery()
    deleted = await connection.execute(
        delete(delivery_quotes).where(delivery_quotes.c.id.in_(batch), *unaccepted)
    )
    return deleted.rowcount


async def _prune_courier_quotes(connection: AsyncConnection, *, before: datetime, limit: int) -> int:
    """Courier quotes that expired before `before` without a delivery. A quote the network gave no
    expiry can be booked at any time, so it stays."""
    unaccepted = (
        courier_quotes.c.expires_at.is_not(None),
        courier_quotes.c.expires_at < before,
        ~exists().where(courier_deliveries.c.quote_id == courier_quotes.c.id),
    )
    batch = select(courier_quotes.c.id).where(*unaccepted).limit(limit).scalar_subquery()
    deleted = await connection.execute(
        delete(courier_quotes).where(courier_quotes.c.id.in_(batch), *unaccepted)
    )
    return deleted.rowcount
