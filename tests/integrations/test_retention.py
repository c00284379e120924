"""Retention of the integrations service: status webhooks, status reports and quotes done with are
deleted, on SQLite and PostgreSQL; everything still of use stays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from tests.platform import settings_for

from doorstep.infra.database import Database
from doorstep.infra.migrations import upgrade
from doorstep.integrations.adapters.tables import inbound_deliveries
from doorstep.integrations.bootstrap import build
from doorstep.integrations.couriers.tables import courier_deliveries, courier_quotes
from doorstep.integrations.deliveries.tables import api_deliveries, delivery_quotes
from doorstep.integrations.outbound.tables import webhook_attempts, webhook_endpoints, webhook_messages
from doorstep.integrations.retention import Pruned, prune_integrations
from doorstep.integrations.status_reports.tables import status_reports
from doorstep.kernel.ids import new_id

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=30)
TENANT = "00000000-0000-7000-8000-000000000001"


@asynccontextmanager
async def integrations_database(tmp_path: Path, database_url: str | None = None) -> AsyncIterator[Database]:
    service = build(settings_for(tmp_path, database_url=database_url))
    await upgrade(service.database, service.migrations)
    try:
        yield service.database
    finally:
        await service.database.dispose()


async def add(database: Database, table: Table, **row: Any) -> str:
    async with database.writer_engine.begin() as connection:
        await connection.execute(insert(table).values(**row))
    return str(row["id"])


async def ids(database: Database, table: Table) -> set[str]:
    async with database.reader_engine.connect() as connection:
        return set(await connection.scalars(select(table.c.id)))


async def attempted(database: Database) -> list[str]:
    """The messages of the attempts there are, one entry per attempt."""
    async with database.reader_engine.connect() as connection:
        return sorted(await connection.scalars(select(webhook_attempts.c.message_id)))


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


async def endpoint(database: Database, *, enabled: bool) -> str:
    return await add(
        database,
        webhook_endpoints,
        id=new_id(),
        tenant_id=TENANT,
        url="https://receiver.example/hook",
        event_types=["order.*"],
        description=None,
        secret="whsec_test",
        enabled=enabled,
        disabled_reason=None if enabled else "disabled by the tenant",
        consecutive_failures=0,
        created_at=ago(days=90),
        updated_at=ago(days=90),
    )


async def message(
    database: Database, endpoint_id: str, state: str, *, last_due: datetime, created: datetime | None = None
) -> str:
    created = created or last_due
    message_id = await add(
        database,
        webhook_messages,
        id=new_id(),
        endpoint_id=endpoint_id,
        tenant_id=TENANT,
        event_id=new_id(),
        event_type="order.created",
        subject=new_id(),
        body="{}",
        created_at=created,
        next_attempt_at=last_due,
        state=state,
        attempts=0 if state == "pending" else 1,
        delivered_at=last_due if state == "delivered" else None,
    )
    await add(
        database,
        webhook_attempts,
        id=new_id(),
        message_id=message_id,
        endpoint_id=endpoint_id,
        tenant_id=TENANT,
        attempted_at=last_due,
        status=200 if state == "delivered" else 500,
        latency_ms=12,
        snippet="",
    )
    return message_id


async def report(database: Database, state: str, *, last_due: datetime, order_id: str | None = None) -> str:
    return await add(
        database,
        status_reports,
        id=new_id(),
        tenant_id=TENANT,
        connection_id=new_id(),
        platform="woocommerce",
        order_id=order_id or new_id(),
        external_id="727",
        event_id=new_id(),
        status="accepted",
        created_at=last_due,
        next_attempt_at=last_due,
        state=state,
        attempts=1,
        sent_at=last_due if state == "sent" else None,
    )


async def delivery_quote(database: Database, *, expires: datetime, accepted: bool = False) -> str:
    quote_id = await add(
        database,
        delivery_quotes,
        id=new_id(),
        tenant_id=TENANT,
        external_delivery_id=new_id(),
        created_by="api-key",
        request={},
        pickup_time=expires,
        distance_m=1200,
        duration_s=600,
        currency="EUR",
        fee=450,
        fee_lines=[],
        created_at=expires - timedelta(minutes=15),
        expires_at=expires,
    )
    if accepted:
        await add(
            database,
            api_deliveries,
            id=new_id(),
            tenant_id=TENANT,
            quote_id=quote_id,
            external_delivery_id=new_id(),
            created_by="api-key",
            status="delivered",
            created_at=expires,
            updated_at=expires,
        )
    return quote_id


async def courier_quote(
    database: Database, *, expires: datetime | None, created: datetime, booked: bool = False
) -> str:
    quote_id = await add(
        database,
        courier_quotes,
        id=new_id(),
        tenant_id=TENANT,
        account_id="account-1",
        order_id=new_id(),
        provider_quote_id=new_id(),
        request={},
        fee=700,
        currency="EUR",
        expires_at=expires,
        created_at=created,
    )
    if booked:
        await add(
            database,
            courier_deliveries,
            id=new_id(),
            tenant_id=TENANT,
            account_id="account-1",
            provider="uber_direct",
            order_id=new_id(),
            quote_id=quote_id,
            provider_delivery_id=new_id(),
            status="delivered",
            proof_of_delivery=[],
            created_at=created,
            updated_at=created,
        )
    return quote_id


async def prune_everything_of_every_age(database: Database) -> None:
    # Given status webhooks of every state and age, to an enabled, a disabled and a deleted endpoint
    enabled, disabled, deleted = (
        await endpoint(database, enabled=True),
        await endpoint(database, enabled=False),
        new_id(),
    )
    old = ago(days=40)
    gone_messages = {
        await message(database, enabled, "delivered", last_due=old),
        await message(database, enabled, "failed", last_due=old),
        await message(database, disabled, "pending", last_due=old),  # nobody will ever take it
        await message(database, deleted, "pending", last_due=old),
    }
    kept_messages = {
        await message(database, enabled, "delivered", last_due=ago(days=29, hours=23)),
        await message(database, enabled, "failed", last_due=ago(days=5)),
        await message(database, enabled, "pending", last_due=old),  # still to be delivered
        await message(database, disabled, "pending", last_due=ago(days=3)),  # until it is enabled again
        await message(database, enabled, "failed", last_due=ago(days=1), created=old),  # replayed lately
    }
    # And status reports: a later sent one stays while an earlier failure of its order is kept
    order = new_id()
    kept_reports = {
        await report(database, "failed", last_due=ago(days=2), order_id=order),
        await report(database, "sent", last_due=old, order_id=order),
        await report(database, "sent", last_due=ago(days=10)),
        await report(database, "failed", last_due=ago(days=10)),
        await report(database, "pending", last_due=old),
    }
    gone_reports = {
        await report(database, "sent", last_due=old),
        await report(database, "failed", last_due=old),
    }
    # And quotes, expired or not, accepted or not
    gone_quotes = {await delivery_quote(database, expires=ago(days=2))}
    kept_quotes = {
        await delivery_quote(database, expires=ago(days=2), accepted=True),
        await delivery_quote(database, expires=ago(hours=12)),
        await delivery_quote(database, expires=NOW + timedelta(minutes=10)),
    }
    gone_courier_quotes = {await courier_quote(database, expires=ago(days=2), created=ago(days=2, hours=1))}
    kept_courier_quotes = {
        await courier_quote(database, expires=ago(days=2), created=ago(days=2, hours=1), booked=True),
        await courier_quote(database, expires=ago(hours=12), created=ago(hours=13)),
        await courier_quote(database, expires=None, created=ago(days=90)),
    }
    # And an inbound delivery of long ago (redeliveries of it are recognised by it)
    inbound = await add(
        database,
        inbound_deliveries,
        id=new_id(),
        tenant_id=TENANT,
        connection_id=new_id(),
        platform="woocommerce",
        platform_delivery_id="delivery-1",
        headers={},
        body=b"{}",
        received_at=ago(days=400),
        status="mapped",
        external_id="727",
        attempts=1,
    )
    all_messages = await ids(database, webhook_messages)

    # When pruning runs, two rows per statement
    pruned = await prune_integrations(database, retention=RETENTION, now=NOW, batch=2)

    # Then exactly the old finished ones are gone, attempts with their messages, and nothing else
    assert pruned == Pruned(webhook_messages=4, status_reports=2, delivery_quotes=1, courier_quotes=1)
    assert all_messages == gone_messages | kept_messages
    assert await ids(database, webhook_messages) == kept_messages
    assert await attempted(database) == sorted(kept_messages)
    assert await ids(database, status_reports) == kept_reports
    assert gone_reports.isdisjoint(kept_reports)
    assert await ids(database, delivery_quotes) == kept_quotes
    assert gone_quotes.isdisjoint(kept_quotes)
    assert await ids(database, courier_quotes) == kept_courier_quotes
    assert gone_courier_quotes.isdisjoint(kept_courier_quotes)
    assert await ids(database, inbound_deliveries) == {inbound}
    assert len(await ids(database, webhook_endpoints)) == 2

    # When it runs again, then there is nothing left to prune
    again = await prune_integrations(database, retention=RETENTION, now=NOW, batch=2)
    assert again == Pruned(webhook_messages=0, status_reports=0, delivery_quotes=0, courier_quotes=0)


async def test_pruning_deletes_exactly_the_old_finished_rows_on_sqlite(tmp_path: Path) -> None:
    async with integrations_database(tmp_path) as database:
        await prune_everything_of_every_age(database)


@pytest.mark.integration
async def test_pruning_deletes_exactly_the_old_finished_rows_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    async with integrations_database(tmp_path, postgres_url) as database:
        await prune_everything_of_every_age(database)


async def test_the_service_prunes_in_its_housekeeping_after_the_configured_retention(tmp_path: Path) -> None:
    # Given the service with a retention of two days, and messages delivered three days and a day ago
    service = build(settings_for(tmp_path, webhooks_retention_days=2))
    await upgrade(service.database, service.migrations)
    try:
        to = await endpoint(service.database, enabled=True)
        now = datetime.now(UTC)
        old = await message(service.database, to, "delivered", last_due=now - timedelta(days=3))
        recent = await message(service.database, to, "delivered", last_due=now - timedelta(days=1))

        # When the runtime runs the service's housekeeping
        for task in service.maintenance:
            await task()

        # Then the older one is gone
        assert old != recent
        assert await ids(service.database, webhook_messages) == {recent}
    finally:
        await service.database.dispose()
