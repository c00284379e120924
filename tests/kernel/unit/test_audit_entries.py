"""`uow.audit(...)`: the audit event a change queues in its own transaction, and the request origin the
HTTP middleware gives it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from doorstep.contracts.audit import AuditRecorded
from doorstep.kernel import context
from doorstep.kernel.http import create_app, request_origin
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.outbox import messaging_tables
from doorstep.kernel.unit_of_work import SqlUnitOfWork

AT = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
_metadata = MetaData()
outbox, inbox = messaging_tables(_metadata)


class Colour(StrEnum):
    RED = "red"


class Point(BaseModel):
    lat: float
    lon: float


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'kernel.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(_metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("doorstep.kernel.unit_of_work.utcnow", lambda: AT)


def unit_of_work(engine: AsyncEngine, causing_message: CloudEvent | None = None) -> SqlUnitOfWork:
    return SqlUnitOfWork(
        engine=engine, service="orders", outbox=outbox, inbox=inbox, causing_message=causing_message
    )


async def audit_once(uow: SqlUnitOfWork, **overrides: Any) -> list[CloudEvent]:
    values: dict[str, Any] = {
        "tenant_id": "t-1",
        "actor": "api_key:k-1",
        "action": "order.status_changed",
        "object_type": "order",
        "object_id": "o-1",
        "before": {"status": "placed"},
        "after": {"status": "accepted"},
        **overrides,
    }
    async with uow:
        uow.audit(**values)
        return await uow.commit()


async def test_an_entry_is_an_outbox_event_of_the_service_stamped_with_the_request(
    engine: AsyncEngine,
) -> None:
    # Given a request from 203.0.113.9 with the id req-7
    request = context.correlation_id.set("req-7")
    origin = context.origin.set(context.Origin(ip="203.0.113.9", user_agent="curl/8.5"))
    try:
        # When a change is audited in a unit of work of the orders service
        [envelope] = await audit_once(unit_of_work(engine))
    finally:
        context.origin.reset(origin)
        context.correlation_id.reset(request)

    # Then one AuditRecorded from orders is committed to the outbox, about the object, in the tenant
    assert (envelope.type, envelope.source, envelope.subject, envelope.tenantid, envelope.correlationid) == (
        "doorstep.audit.recorded.v1",
        "/doorstep/orders",
        "o-1",
        "t-1",
        "req-7",
    )
    assert envelope.payload() == AuditRecorded(
        service="orders",
        actor="api_key:k-1",
        action="order.status_changed",
        object_type="order",
        object_id="o-1",
        before={"status": "placed"},
        after={"status": "accepted"},
        ip="203.0.113.9",
        user_agent="curl/8.5",
        request_id="req-7",
        occurred_at=AT,
    )
    async with engine.connect() as connection:
        [row] = (await connection.execute(select(outbox))).all()
    assert (row.id, row.type, row.tenant_id) == (envelope.id, envelope.type, "t-1")
    assert json.loads(row.envelope) == json.loads(envelope.model_dump_json())


async def test_values_are_stored_as_json_whatever_their_python_type(engine: AsyncEngine) -> None:
    # When before and after hold an enum, a model, a time and a tuple
    [envelope] = await audit_once(
        unit_of_work(engine),
        before={"colour": Colour.RED, "at": AT},
        after={"where": Point(lat=52.5, lon=13.4), "ids": ("a", "b")},
    )

    # Then the entry carries their JSON forms
    assert envelope.data["before"] == {"colour": "red", "at": "2026-11-21T18:00:00Z"}
    assert envelope.data["after"] == {"where": {"lat": 52.5, "lon": 13.4}, "ids": ["a", "b"]}


async def test_outside_a_request_an_entry_has_no_origin_and_takes_the_chain_s_correlation(
    engine: AsyncEngine,
) -> None:
    # Given a consumer handling an event that a request (corr-1) started
    causing = CloudEvent(
        id="m-1", source="/doorstep/integrations", type="x.y", tenantid="t-1", correlationid="corr-1", data={}
    )

    # When it audits a change
    [envelope] = await audit_once(unit_of_work(engine, causing), actor="connection:c-1", before=None)

    # Then the entry names no address nor agent, and the request that started the chain
    entry = envelope.payload()
    assert isinstance(entry, AuditRecorded)
    assert (entry.actor, entry.before, entry.ip, entry.user_agent, entry.request_id) == (
        "connection:c-1",
        None,
        None,
        None,
        "corr-1",
    )
    assert (envelope.correlationid, envelope.causationid) == ("corr-1", "m-1")


async def test_an_entry_of_a_transaction_rolled_back_is_never_written(engine: AsyncEngine) -> None:
    # When a change is audited and the unit of work ends without commit
    async with unit_of_work(engine) as uow:
        uow.audit(
            tenant_id="t-1",
            actor="user:u-1",
            action="order.created",
            object_type="order",
            object_id="o-1",
            before=None,
            after={"id": "o-1"},
        )

    # Then the outbox is empty
    async with engine.connect() as connection:
        assert (await connection.execute(select(outbox))).all() == []


# --- Where a request came from ------------------------------------------------------------------------


def scope(*headers: tuple[bytes, bytes], client: tuple[str, int] | None = ("192.0.2.1", 5000)) -> Any:
    return {"type": "http", "headers": list(headers), "client": client}


@pytest.mark.parametrize(
    ("headers", "client", "ip"),
    [
        # No proxy: the peer
        ((), ("192.0.2.1", 5000), "192.0.2.1"),
        # Behind the gateway: the last entry, the one it appended; earlier ones the client may have made up
        (((b"x-forwarded-for", b"10.0.0.1, 198.51.100.7,203.0.113.9"),), ("192.0.2.1", 5000), "203.0.113.9"),
        # Several headers read as one list
        (((b"x-forwarded-for", b"10.0.0.1"), (b"x-forwarded-for", b" 2001:DB8::1 ")), None, "2001:db8::1"),
        # A last entry that is no address: the peer, which the client cannot forge
        (((b"x-forwarded-for", b"198.51.100.7, unknown"),), ("192.0.2.1", 5000), "192.0.2.1"),
        # No address anywhere (a test client without a peer)
        (((b"x-forwarded-for", b""),), None, None),
        ((), ("testclient", 50000), None),
    ],
)
def test_the_address_is_the_last_forwarded_entry_or_the_peer(
    headers: tuple[tuple[bytes, bytes], ...], client: tuple[str, int] | None, ip: str | None
) -> None:
    assert request_origin(scope(*headers, client=client)).ip == ip


def test_the_user_agent_is_cut_to_300_characters() -> None:
    long_agent = "Mozilla/5.0 " + "x" * 400
    assert request_origin(scope((b"user-agent", long_agent.encode()))).user_agent == long_agent[:300]
    assert request_origin(scope((b"user-agent", b"curl/8.5"))).user_agent == "curl/8.5"
    assert request_origin(scope()).user_agent is None


async def test_the_middleware_sets_the_origin_for_the_request_only() -> None:
    # Given an app whose route reports the origin it sees
    router = APIRouter()

    @router.get("/origin")
    async def origin() -> dict[str, str | None]:
        seen = context.origin.get()
        assert seen is not None
        return {"ip": seen.ip, "user_agent": seen.user_agent}

    app = create_app(service="test", routers=[router])

    # When it is called through a proxy
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get(
            "/origin", headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "User-Agent": "probe/1"}
        )

    # Then the route saw the address and agent, and nothing is left set afterwards
    assert response.json() == {"ip": "203.0.113.9", "user_agent": "probe/1"}
    assert context.origin.get() is None
