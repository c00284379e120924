"""The audit log end to end: changes made through orders and integrations, recorded by identity and
read back with `GET /v1/identity/audit`; entries that cannot be edited, on SQLite and PostgreSQL.

Identity's own handlers record entries too (tenant and key changes); these tests filter by the objects
they changed, so they hold whatever identity records about the tenants they create.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.platform import RunningPlatform, Tenant, running_platform, settings_for

from doorstep.contracts.audit import AuditRecorded
from doorstep.identity.adapters.tables import audit_log
from doorstep.identity.adapters.tables import inbox as identity_inbox
from doorstep.identity.audit import RecordAudit, list_audit
from doorstep.integrations.adapters.platforms.doorstep_json import sign_doorstep_payload
from doorstep.kernel.auth import Principal
from doorstep.kernel.errors import PROBLEM_BASE, Forbidden
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.permissions import TENANT_PERMISSIONS, Reach
from doorstep.kernel.settings import SERVICES
from doorstep.kernel.unit_of_work import audit_entry
from doorstep.orders.adapters.tables import outbox as orders_outbox

PROBLEM_JSON = "application/problem+json"
AGENT = "audit-tests/1.0"
DOORSTEP_SECRET = "whsec_audit_tests_only_0123456789abcdef"
FIXTURES = Path(__file__).parents[2] / "integrations" / "fixtures"
ORDER: dict[str, Any] = {
    "external_id": "A-1",
    "pickup": {
        "name": "Curry Corner",
        "address": "Oranienstraße 12, Berlin",
        "location": {"lat": 52.5, "lon": 13.41},
    },
    "dropoff": {
        "name": "Lena",
        "address": "Skalitzer Straße 3, Berlin",
        "location": {"lat": 52.49, "lon": 13.43},
    },
    "customer": {"name": "Lena Müller"},
    "items": [{"name": "Currywurst", "quantity": 2, "unit_price": 450}],
    "currency": "EUR",
    "tip": 100,
}


def order(external_id: str = "A-1") -> dict[str, Any]:
    return {**copy.deepcopy(ORDER), "external_id": external_id}


def headers(tenant: Tenant, request_id: str | None = None, **extra: str) -> dict[str, str]:
    sent = {**tenant.headers, "User-Agent": AGENT, **extra}
    if request_id is not None:
        sent["X-Request-Id"] = request_id
    return sent


async def place(
    platform: RunningPlatform, tenant: Tenant, body: dict[str, Any], **extra: str
) -> dict[str, Any]:
    response = await platform.client.post("/v1/orders", json=body, headers=headers(tenant, **extra))
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


async def key_actor(platform: RunningPlatform, tenant: Tenant) -> str:
    keys = await platform.client.get("/v1/identity/api-keys", headers=tenant.headers)
    assert keys.status_code == 200, keys.text
    [key] = keys.json()["items"]
    return f"api_key:{key['id']}"


async def entries(platform: RunningPlatform, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = await platform.client.get("/v1/identity/audit", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def what(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without the two values no test can know in advance: its id and its time."""
    return {name: value for name, value in entry.items() if name not in {"id", "occurred_at"}}


def snapshot(detail: dict[str, Any]) -> dict[str, Any]:
    """The order as events carry it: the API's answer without the fields only the API adds."""
    return {
        name: value for name, value in detail.items() if name not in {"allowed_statuses", "status_history"}
    }


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEM_BASE + slug
    return problem


async def audit_rows(platform: RunningPlatform, entry_id: str) -> int:
    async with platform.services["identity"].database.reader() as session:
        count = await session.scalar(
            select(func.count()).select_from(audit_log).where(audit_log.c.id == entry_id)
        )
    return count or 0


# --- Orders ---------------------------------------------------------------------------------------------


async def test_placing_amending_and_moving_an_order_are_audited_with_who_what_and_where(
    platform: RunningPlatform,
) -> None:
    # Given a tenant and the actor name of its API key
    tenant = await platform.new_tenant()
    actor = await key_actor(platform, tenant)

    # When it places an order, raises the tip and accepts it, each request with its own id
    placed = await place(platform, tenant, order(), request_id="req-place")
    amended = await platform.client.patch(
        f"/v1/orders/{placed['id']}", json={"tip": 250}, headers=headers(tenant, "req-amend")
    )
    moved = await platform.client.post(
        f"/v1/orders/{placed['id']}/status",
        json={"status": "accepted", "reason": "kitchen open"},
        headers=headers(tenant, "req-move"),
    )
    assert (amended.status_code, moved.status_code) == (200, 200)
    await platform.settle()

    # Then the log holds three entries about the order, newest first, naming the key, the client's
    # address and agent, and the request; before and after hold exactly what changed
    found = await entries(platform, tenant, object_type="order", object_id=placed["id"])
    common = {
        "service": "orders",
        "actor": actor,
        "object_type": "order",
        "object_id": placed["id"],
        "ip": "127.0.0.1",
        "user_agent": AGENT,
    }
    assert [what(entry) for entry in found] == [
        {
            **common,
            "action": "order.status_changed",
            "before": {"status": "placed"},
            "after": {"status": "accepted", "reason": "kitchen open"},
            "request_id": "req-move",
        },
        {
            **common,
            "action": "order.updated",
            "before": {"tip": 100},
            "after": {"tip": 250},
            "request_id": "req-amend",
        },
        {
            **common,
            "action": "order.created",
            "before": None,
            "after": snapshot(placed),
            "request_id": "req-place",
        },
    ]
    # And each entry has its own id and a UTC time, in the order the changes were made
    assert len({entry["id"] for entry in found}) == 3
    times = [entry["occurred_at"] for entry in found]
    assert all(moment.endswith("Z") for moment in times)
    assert times == sorted(times, reverse=True)


async def test_the_address_is_the_last_forwarded_for_entry_the_one_the_gateway_appended(
    platform: RunningPlatform,
) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When an order arrives through a proxy chain whose first address the client chose
    placed = await place(
        platform, tenant, order(), **{"X-Forwarded-For": "10.9.9.9, 198.51.100.7, 203.0.113.9"}
    )
    await platform.settle()

    # Then the entry names the address the last proxy saw
    [entry] = await entries(platform, tenant, object_id=placed["id"])
    assert entry["ip"] == "203.0.113.9"


async def test_refused_changes_are_not_audited(platform: RunningPlatform) -> None:
    # Given a placed order
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())

    # When an illegal move, a duplicate external id and a patch that changes nothing are sent
    assert (
        await platform.client.post(
            f"/v1/orders/{placed['id']}/status", json={"status": "delivered"}, headers=tenant.headers
        )
    ).status_code == 409
    assert (await platform.client.post("/v1/orders", json=order(), headers=tenant.headers)).status_code == 200
    assert (
        await platform.client.patch(f"/v1/orders/{placed['id']}", json={"tip": 100}, headers=tenant.headers)
    ).status_code == 200
    await platform.settle()

    # Then only the creation is in the log
    assert [entry["action"] for entry in await entries(platform, tenant, object_type="order")] == [
        "order.created"
    ]


async def test_a_csv_import_batch_is_one_entry_listing_the_orders_it_created(
    platform: RunningPlatform,
) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    actor = await key_actor(platform, tenant)
    header = (
        "external_id,pickup_name,pickup_address,pickup_lat,pickup_lon,dropoff_name,dropoff_address,"
        "dropoff_lat,dropoff_lon,customer_name,item_name,quantity,unit_price,currency"
    )
    rows = [
        f'{external_id},Pho House,"Kantstraße 1, Berlin",52.5,13.3,Anna,"Bergstraße 2, Berlin",52.51,13.39,'
        "Anna Schmidt,Pho,1,900,EUR"
        for external_id in ("C-1", "C-2")
    ]

    # When it imports a file of two orders
    response = await platform.client.post(
        "/v1/orders/import",
        files={"file": ("orders.csv", "\n".join([header, *rows]).encode(), "text/csv")},
        headers=headers(tenant, "req-import"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 2
    await platform.settle()

    # Then one entry records the batch with the new orders' ids, in file order
    listed = (await platform.client.get("/v1/orders", headers=tenant.headers)).json()["items"]
    ids = {item["external_id"]: item["id"] for item in listed}
    [entry] = await entries(platform, tenant, action="order.imported")
    assert what(entry) == {
        "service": "orders",
        "actor": actor,
        "action": "order.imported",
        "object_type": "order_import",
        "object_id": entry["object_id"],
        "before": None,
        "after": {"source": "csv", "order_ids": [ids["C-1"], ids["C-2"]], "duplicates": 0},
        "ip": "127.0.0.1",
        "user_agent": AGENT,
        "request_id": "req-import",
    }
    assert entry["object_id"] not in ids.values()


# --- Integrations ---------------------------------------------------------------------------------------


async def open_doorstep_connection(platform: RunningPlatform, tenant: Tenant) -> dict[str, Any]:
    response = await platform.client.post(
        "/v1/integrations/connections",
        json={"platform": "doorstep", "settings": {"merchant_id": "m-1"}, "secret": DOORSTEP_SECRET},
        headers=headers(tenant, "req-connect"),
    )
    assert response.status_code == 201, response.text
    connection: dict[str, Any] = response.json()
    return connection


async def deliver(
    platform: RunningPlatform, connection: dict[str, Any], body: bytes, request_id: str
) -> dict[str, Any]:
    response = await platform.client.post(
        urlsplit(connection["webhook_url"]).path,
        content=body,
        headers={
            "Content-Type": "application/json",
            "Doorstep-Delivery-Id": request_id,
            "Doorstep-Signature": sign_doorstep_payload(body, DOORSTEP_SECRET),
            "X-Request-Id": request_id,
        },
    )
    assert response.status_code == 202, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


async def test_opening_a_connection_is_audited_without_its_secret_or_token(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    actor = await key_actor(platform, tenant)

    # When it connects a platform
    connection = await open_doorstep_connection(platform, tenant)
    await platform.settle()

    # Then the entry names the platform and its settings, and nothing that lets anyone deliver orders
    response = await platform.client.get(
        "/v1/identity/audit", params={"object_type": "connection"}, headers=tenant.headers
    )
    [entry] = response.json()["items"]
    assert what(entry) == {
        "service": "integrations",
        "actor": actor,
        "action": "connection.opened",
        "object_type": "connection",
        "object_id": connection["connection_id"],
        "before": None,
        "after": {"platform": "doorstep", "settings": {"merchant_id": "m-1"}},
        "ip": "127.0.0.1",
        "user_agent": AGENT,
        "request_id": "req-connect",
    }
    token = urlsplit(connection["webhook_url"]).path.rsplit("/", 1)[-1]
    assert DOORSTEP_SECRET not in response.text
    assert token not in response.text


async def test_an_order_from_a_webhook_names_the_connection_and_the_delivery_request(
    platform: RunningPlatform,
) -> None:
    # Given a tenant with a Doorstep-format connection
    tenant = await platform.new_tenant()
    connection = await open_doorstep_connection(platform, tenant)

    # When the platform delivers an order
    await deliver(platform, connection, (FIXTURES / "doorstep_order.json").read_bytes(), "hook-1")
    await platform.settle()

    # Then the order's creation is audited in the connection's name, with the delivery's request id and
    # no address: the order was placed by a consumer, not by that request
    [placed] = (await platform.client.get("/v1/orders", headers=tenant.headers)).json()["items"]
    [entry] = await entries(platform, tenant, object_type="order")
    assert what(entry) == {
        "service": "orders",
        "actor": f"connection:{connection['connection_id']}",
        "action": "order.created",
        "object_type": "order",
        "object_id": placed["id"],
        "before": None,
        "after": {name: value for name, value in placed.items() if name != "allowed_statuses"},
        "ip": None,
        "user_agent": None,
        "request_id": "hook-1",
    }


async def test_replaying_a_delivery_audits_what_the_replay_changed(platform: RunningPlatform) -> None:
    # Given a delivery that failed for want of a customer
    tenant = await platform.new_tenant()
    actor = await key_actor(platform, tenant)
    connection = await open_doorstep_connection(platform, tenant)
    draft = json.loads((FIXTURES / "doorstep_order.json").read_bytes())
    del draft["customer"]
    receipt = await deliver(platform, connection, json.dumps(draft).encode(), "hook-2")
    [failed] = (await platform.client.get("/v1/integrations/inbound", headers=tenant.headers)).json()["items"]
    assert failed["status"] == "failed"

    # When it is replayed
    replayed = await platform.client.post(
        f"/v1/integrations/inbound/{receipt['delivery_id']}/replay", headers=headers(tenant, "req-replay")
    )
    assert replayed.status_code == 200
    await platform.settle()

    # Then the entry holds the delivery's state before and after: one attempt more, failed again
    state = {
        "status": "failed",
        "external_id": None,
        "failure_field": "customer",
        "failure_reason": failed["failure_reason"],
    }
    [entry] = await entries(platform, tenant, object_type="inbound_delivery")
    assert what(entry) == {
        "service": "integrations",
        "actor": actor,
        "action": "inbound_delivery.replayed",
        "object_type": "inbound_delivery",
        "object_id": receipt["delivery_id"],
        "before": {**state, "attempts": 1},
        "after": {**state, "attempts": 2},
        "ip": "127.0.0.1",
        "user_agent": AGENT,
        "request_id": "req-replay",
    }


# --- Reading the log ------------------------------------------------------------------------------------


async def test_filters_narrow_the_log_by_actor_action_object_and_time(platform: RunningPlatform) -> None:
    # Given an order placed, amended and accepted
    tenant = await platform.new_tenant()
    actor = await key_actor(platform, tenant)
    placed = await place(platform, tenant, order())
    await platform.client.patch(f"/v1/orders/{placed['id']}", json={"tip": 5}, headers=tenant.headers)
    await platform.client.post(
        f"/v1/orders/{placed['id']}/status", json={"status": "accepted"}, headers=tenant.headers
    )
    await platform.settle()
    moved, amended, created = await entries(platform, tenant, object_id=placed["id"])
    ids = {"moved": moved["id"], "amended": amended["id"], "created": created["id"]}

    async def listed(**params: Any) -> list[str]:
        found = await entries(platform, tenant, **params)
        return [name for entry in found for name, id_ in ids.items() if entry["id"] == id_]

    # When it filters, Then each filter keeps exactly the entries it names
    assert await listed(action="order.updated") == ["amended"]
    assert await listed(actor=actor, object_type="order") == ["moved", "amended", "created"]
    assert await listed(actor="api_key:someone-else") == []
    assert await listed(object_type="order", object_id=placed["id"]) == ["moved", "amended", "created"]
    assert await listed(object_type="connection", object_id=placed["id"]) == []
    # occurred_from is inclusive, occurred_to exclusive, and any UTC offset means the same moment
    assert await listed(occurred_from=amended["occurred_at"]) == ["moved", "amended"]
    assert await listed(occurred_to=amended["occurred_at"]) == ["created"]
    assert await listed(occurred_from=created["occurred_at"], occurred_to=moved["occurred_at"]) == [
        "amended",
        "created",
    ]
    shifted = amended["occurred_at"].replace("Z", "+00:00")
    assert await listed(occurred_from=shifted) == ["moved", "amended"]


async def test_a_tenant_never_sees_another_tenants_entries(platform: RunningPlatform) -> None:
    # Given tenant A with an order placed and accepted, and tenant B with one of its own
    tenant_a = await platform.new_tenant("A")
    tenant_b = await platform.new_tenant("B")
    actor_a = await key_actor(platform, tenant_a)
    order_a = await place(platform, tenant_a, order("A-1"))
    await platform.client.post(
        f"/v1/orders/{order_a['id']}/status", json={"status": "accepted"}, headers=tenant_a.headers
    )
    order_b = await place(platform, tenant_b, order("B-1"))
    await platform.settle()

    # When B reads the whole log, and asks for A's order and A's key by name
    everything = await entries(platform, tenant_b, limit=200)
    by_object = await entries(platform, tenant_b, object_id=order_a["id"])
    by_actor = await entries(platform, tenant_b, actor=actor_a)

    # Then B sees its own order's creation and nothing of A's
    assert [entry["object_id"] for entry in everything if entry["object_type"] == "order"] == [order_b["id"]]
    assert all(entry["actor"] != actor_a and entry["object_id"] != order_a["id"] for entry in everything)
    assert (by_object, by_actor) == ([], [])
    # And A still sees its two entries
    assert len(await entries(platform, tenant_a, object_id=order_a["id"])) == 2


async def test_the_log_is_paged_newest_first_each_entry_once(platform: RunningPlatform) -> None:
    # Given five orders placed one after another
    tenant = await platform.new_tenant()
    placed = [(await place(platform, tenant, order(f"P-{n}")))["id"] for n in range(5)]
    await platform.settle()

    # When the order entries are read two at a time, following next_cursor
    pages: list[list[str]] = []
    params: dict[str, Any] = {"object_type": "order", "limit": 2}
    while True:
        response = await platform.client.get("/v1/identity/audit", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([entry["object_id"] for entry in page["items"]])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    # Then three pages hold the five orders, newest first, none twice
    assert pages == [placed[4:2:-1], placed[2:0:-1], placed[0:1]]


async def test_bad_filters_are_422_problems_naming_the_field(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"occurred_from": "2026-11-21T18:00:00"}, "occurred_from", "invalid-input"),
        ({"occurred_to": "2026-11-21T18:00:00"}, "occurred_to", "invalid-input"),
        ({"occurred_from": "yesterday"}, "occurred_from", "validation-error"),
        ({"limit": 0}, "limit", "validation-error"),
        ({"limit": 201}, "limit", "validation-error"),
        ({"action": ""}, "action", "validation-error"),
        ({"object_id": "x" * 201}, "object_id", "validation-error"),
        ({"cursor": "not-a-cursor!"}, "cursor", "invalid-input"),
    ]

    for params, field, slug in cases:
        # When it reads the log with a bad query parameter
        response = await platform.client.get("/v1/identity/audit", params=params, headers=tenant.headers)

        # Then the problem names the parameter
        problem = assert_problem(response, 422, slug)
        assert [(error["field"], error["in"]) for error in problem["errors"]] == [(field, "query")], params


async def test_reading_the_log_needs_a_credential_and_the_audit_read_permission(
    platform: RunningPlatform,
) -> None:
    # Given a tenant, and a key of its that may only read orders
    tenant = await platform.new_tenant()
    created = await platform.client.post(
        "/v1/identity/api-keys",
        json={"name": "orders only", "scopes": ["orders.read"]},
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text
    orders_only = {"Authorization": f"Bearer {created.json()['api_key']}"}

    # When the log is asked for without a credential, and with that key
    anonymous = await platform.client.get("/v1/identity/audit")
    short = await platform.client.get("/v1/identity/audit", headers=orders_only)

    # Then the first is a 401 and the second a 403 naming the permission
    assert_problem(anonymous, 401, "unauthenticated")
    problem = assert_problem(short, 403, "forbidden")
    assert problem["permission"] == "audit.read"


async def test_a_caller_who_sees_only_some_merchants_cannot_read_the_log(platform: RunningPlatform) -> None:
    # Given a caller with audit.read but a reach of some merchants only (a role a tenant admin widened)
    tenant = await platform.new_tenant()
    principal = Principal(
        tenant_id=tenant.tenant_id,
        subject="u-1",
        kind="user",
        permissions=TENANT_PERMISSIONS,
        reach=Reach.MERCHANTS,
        merchant_ids=frozenset({"m-1"}),
    )

    # When it reads the log (the endpoint called as FastAPI would, once the permission is checked)
    # Then it is refused: entries are not scoped to merchants
    with pytest.raises(Forbidden):
        await list_audit(principal=principal, service=platform.services["identity"])


# --- Recording -------------------------------------------------------------------------------------------


async def test_an_entry_delivered_again_is_kept_once(platform: RunningPlatform) -> None:
    # Given an order whose audit entry identity has recorded
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())
    await platform.settle()
    async with platform.services["orders"].database.reader() as session:
        row = (
            await session.execute(
                select(orders_outbox).where(orders_outbox.c.type == AuditRecorded.event_type)
            )
        ).one()
    envelope = CloudEvent.model_validate_json(row.envelope)
    assert envelope.subject == placed["id"]
    identity = platform.services["identity"]

    # When the broker delivers the same event twice more, and the command arrives once without it
    [subscription] = [s for s in identity.subscriptions if AuditRecorded.event_type in s.patterns]
    await subscription.handler(envelope)
    await subscription.handler(envelope)
    entry = envelope.payload()
    assert isinstance(entry, AuditRecorded)
    await identity.bus.handle(RecordAudit(entry_id=envelope.id, tenant_id=envelope.tenantid, entry=entry))

    # Then the log still holds it once
    assert await audit_rows(platform, envelope.id) == 1
    assert [e["id"] for e in await entries(platform, tenant, object_id=placed["id"])] == [envelope.id]


class Commits:
    """Counts the transactions an engine commits while the block runs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.count = 0

    def _committed(self, _connection: Any) -> None:
        self.count += 1

    def __enter__(self) -> Commits:
        event.listen(self.engine, "commit", self._committed)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "commit", self._committed)


def audit_event(tenant: Tenant, object_id: str) -> CloudEvent:
    """An `AuditRecorded` event as the orders service writes it to its outbox."""
    entry = audit_entry(
        service="orders",
        actor="api_key:k-1",
        action="order.created",
        object_type="order",
        object_id=object_id,
        before=None,
        after={"status": "placed"},
        request_id=f"req-{object_id}",
    )
    return CloudEvent.wrap(entry, source="/doorstep/orders", tenant_id=tenant.tenant_id)


async def kept(platform: RunningPlatform) -> dict[str, int]:
    """How many audit rows and inbox marks identity holds per event id."""
    counted: dict[str, int] = {}
    async with platform.services["identity"].database.reader() as session:
        for table, column in ((audit_log, audit_log.c.id), (identity_inbox, identity_inbox.c.message_id)):
            for (entry_id,) in (await session.execute(select(column).select_from(table))).all():
                counted[f"{table.name}:{entry_id}"] = counted.get(f"{table.name}:{entry_id}", 0) + 1
    return counted


async def test_the_entries_of_one_delivery_are_kept_in_one_transaction_each_once(
    platform: RunningPlatform,
) -> None:
    # Given a tenant, everything before settled, and three audit events no one has delivered yet
    tenant = await platform.new_tenant()
    await platform.settle()
    before = await kept(platform)
    events = [audit_event(tenant, f"order-{n}") for n in range(3)]

    # When the broker delivers the three at once
    with Commits(platform.services["identity"].database.writer_engine) as commits:
        await platform.app.state.broker.publish(events)

    # Then identity kept them in one transaction: one row and one inbox mark per event
    assert commits.count == 1
    added = {name: n for name, n in (await kept(platform)).items() if name not in before}
    assert added == {
        **{f"audit_log:{e.id}": 1 for e in events},
        **{f"inbox:{e.id}": 1 for e in events},
    }
    # And each entry reads back as the event carried it
    listed = await entries(platform, tenant, action="order.created")
    assert sorted((e["id"], e["object_id"], e["request_id"]) for e in listed) == sorted(
        (e.id, f"order-{n}", f"req-order-{n}") for n, e in enumerate(events)
    )


async def test_a_delivery_with_entries_kept_before_keeps_only_the_new_one(platform: RunningPlatform) -> None:
    # Given three audit events identity has kept, everything settled
    tenant = await platform.new_tenant()
    events = [audit_event(tenant, f"order-{n}") for n in range(3)]
    broker = platform.app.state.broker
    await broker.publish(events)
    await platform.settle()
    before = await kept(platform)

    # When the three are delivered again, once alone and once with a new one among them
    fresh = audit_event(tenant, "order-3")
    with Commits(platform.services["identity"].database.writer_engine) as commits:
        await broker.publish(events)
        await broker.publish([events[0], fresh, events[2], events[1]])

    # Then only the new entry was added, in one transaction, and every entry is still there once
    assert commits.count == 1
    after = await kept(platform)
    assert {name: n for name, n in after.items() if name not in before} == {
        f"audit_log:{fresh.id}": 1,
        f"inbox:{fresh.id}": 1,
    }
    assert {name: after[name] for name in before} == before
    assert all(after[f"audit_log:{e.id}"] == 1 for e in events)
    # And nothing was dead-lettered
    assert await broker.dead_letters() == []


async def assert_append_only(platform: RunningPlatform) -> None:
    """An UPDATE and a DELETE of a recorded entry fail, whoever holds the connection; the entry stays."""
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order())
    await platform.settle()
    [before] = await entries(platform, tenant, object_id=placed["id"])
    engine = platform.services["identity"].database.writer_engine

    for statement in (
        "UPDATE audit_log SET actor = 'user:someone-else' WHERE id = :id",
        "DELETE FROM audit_log WHERE id = :id",
        "DELETE FROM audit_log",
    ):
        with pytest.raises(DBAPIError, match="the audit log is append-only"):
            async with engine.begin() as connection:
                await connection.execute(text(statement), {"id": before["id"]})

    assert await entries(platform, tenant, object_id=placed["id"]) == [before]


async def test_entries_cannot_be_changed_or_removed_on_sqlite(platform: RunningPlatform) -> None:
    await assert_append_only(platform)


@pytest.mark.integration
async def test_entries_cannot_be_changed_removed_or_truncated_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    async with running_platform(settings_for(tmp_path, database_url=postgres_url)) as platform:
        await assert_append_only(platform)
        # And on PostgreSQL not even TRUNCATE empties the table
        engine = platform.services["identity"].database.writer_engine
        with pytest.raises(DBAPIError, match="the audit log is append-only"):
            async with engine.begin() as connection:
                await connection.execute(text("TRUNCATE audit_log"))
        async with engine.connect() as connection:
            assert (
                await connection.scalar(text("SELECT count(*) FROM audit_log WHERE service = 'orders'")) == 1
            )


# --- Distributed ----------------------------------------------------------------------------------------


@pytest.fixture
async def distributed(postgres_url: str, rabbitmq_url: str, tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """Every service on PostgreSQL schemas, events over RabbitMQ, under names no other test uses."""
    name = f"test.{uuid.uuid4().hex}"
    settings = settings_for(
        tmp_path,
        database_url=postgres_url,
        broker_url=rabbitmq_url,
        broker_exchange=name,
        broker_queue_prefix=name,
    )
    try:
        async with running_platform(settings) as running:
            yield running
    finally:
        connection = await aio_pika.connect(rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            for consumer in SERVICES:
                await channel.queue_delete(f"{name}.{consumer}", if_unused=False, if_empty=False)
                await channel.queue_delete(f"{name}.{consumer}.dead", if_unused=False, if_empty=False)
            await channel.exchange_delete(name)
            await channel.exchange_delete(f"{name}.dlx")


@pytest.mark.integration
async def test_entries_travel_to_identity_over_rabbitmq(distributed: RunningPlatform) -> None:
    # Given a tenant on the distributed shape
    platform = distributed
    tenant = await platform.new_tenant()
    actor = await key_actor(platform, tenant)

    # When it places an order
    placed = await place(platform, tenant, order(), request_id="req-rabbit")

    # Then identity records the entry from its own queue (the relays publish on their own)
    found: list[dict[str, Any]] = []
    for _ in range(100):
        found = await entries(platform, tenant, object_id=placed["id"])
        if found:
            break
        await asyncio.sleep(0.1)
    [entry] = found
    assert (entry["service"], entry["actor"], entry["action"], entry["request_id"]) == (
        "orders",
        actor,
        "order.created",
        "req-rabbit",
    )
