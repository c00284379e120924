"""Support tickets on the all-in-one platform: by hand, automatically, scoped by reach, and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.identity.integration.test_users import PROBLEM_JSON, assert_problem, signed_in
from tests.integrations.integration.test_webhooks_api import open_connection, send_shopify
from tests.orders.integration.test_orders_api import order, place
from tests.platform import RunningPlatform, Tenant, running_platform, scratch_postgres_database, settings_for

from doorstep.integrations.outbound.handlers import RecordOutcome
from doorstep.kernel.permissions import Role

MERCHANT_A = "mer_a"
MERCHANT_B = "mer_b"


@pytest.fixture
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """The all-in-one platform on SQLite files; on PostgreSQL for the test marked `ON_POSTGRES`."""
    if getattr(request, "param", "sqlite") == "sqlite":
        async with running_platform(settings_for(tmp_path)) as running:
            yield running
        return
    server_url: str = request.getfixturevalue("postgres_server_url")
    async with (
        scratch_postgres_database(server_url) as url,
        running_platform(settings_for(tmp_path, database_url=url)) as running,
    ):
        yield running


ON_POSTGRES = pytest.mark.parametrize(
    "platform", [pytest.param("postgresql", marks=pytest.mark.integration)], indirect=True
)


async def open_ticket(platform: RunningPlatform, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await platform.client.post("/v1/tickets", json=body, headers=headers)


async def opened(platform: RunningPlatform, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await open_ticket(platform, headers, **body)
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


async def listed(platform: RunningPlatform, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = await platform.client.get("/v1/tickets", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def disable_endpoint(platform: RunningPlatform, tenant: Tenant) -> str:
    """An endpoint whose receiver answered 410 Gone: the outcome goes through the webhook handlers."""
    registered = await platform.client.post(
        "/v1/integrations/webhook-endpoints",
        json={"url": "https://receiver.invalid/hooks", "event_types": ["order.*"]},
        headers=tenant.headers,
    )
    assert registered.status_code == 201, registered.text
    endpoint_id: str = registered.json()["id"]
    test = await platform.client.post(
        f"/v1/integrations/webhook-endpoints/{endpoint_id}/test", headers=tenant.headers
    )
    assert test.status_code == 202, test.text
    await platform.services["integrations"].bus.handle(
        RecordOutcome(message_id=test.json()["id"], status=410, latency_ms=3)
    )
    await platform.settle()
    return endpoint_id


async def test_a_ticket_is_opened_assigned_commented_closed_and_reopened(platform: RunningPlatform) -> None:
    # Given a tenant with an order, and a dispatcher signed in
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order(external_id="T-1"))
    dispatcher_id, dispatcher = await signed_in(platform, tenant, "disp@t.test", [Role.DISPATCHER.value])

    # When the dispatcher opens a ticket on the order
    ticket = await opened(
        platform, dispatcher, subject_type="order", subject_id=placed["id"], title="Customer not home"
    )

    # Then it is open, by a person, opened by the dispatcher
    assert {
        k: ticket[k] for k in ("subject_type", "subject_id", "status", "priority", "origin", "opened_by")
    } == {
        "subject_type": "order",
        "subject_id": placed["id"],
        "status": "open",
        "priority": "normal",
        "origin": "person",
        "opened_by": f"user:{dispatcher_id}",
    }
    path = f"/v1/tickets/{ticket['id']}"

    # When the API key assigns it and takes it on, the dispatcher comments, and the key closes it
    patched = await platform.client.patch(
        path,
        json={"assignee": dispatcher_id, "status": "in_progress", "priority": "high"},
        headers=tenant.headers,
    )
    commented = await platform.client.post(
        f"{path}/comments", json={"body": "Called twice"}, headers=dispatcher
    )
    closed = await platform.client.post(f"{path}/close", headers=tenant.headers)

    # Then each answered, and the ticket shows the comment and is closed
    assert (patched.status_code, commented.status_code, closed.status_code) == (200, 201, 200)
    assert (patched.json()["assignee"], patched.json()["status"], patched.json()["priority"]) == (
        dispatcher_id,
        "in_progress",
        "high",
    )
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_at"] is not None
    assert [(c["author"], c["body"]) for c in closed.json()["comments"]] == [
        (f"user:{dispatcher_id}", "Called twice")
    ]

    # When a closed ticket is moved to in_progress
    refused = await platform.client.patch(path, json={"status": "in_progress"}, headers=tenant.headers)

    # Then that is a 409 listing where it may go
    problem = assert_problem(refused, 409, "ticket-status-conflict")
    assert problem["allowed_statuses"] == ["open"]

    # When it is reopened and unassigned
    reopened = await platform.client.post(f"{path}/reopen", headers=dispatcher)
    unassigned = await platform.client.patch(path, json={"assignee": None}, headers=dispatcher)

    # Then it is open again, with nobody on it
    assert (reopened.json()["status"], reopened.json()["closed_at"]) == ("open", None)
    assert (unassigned.status_code, unassigned.json()["assignee"]) == (200, None)
    # And every change is in the audit trail
    await platform.settle()
    audit = await platform.client.get(
        "/v1/identity/audit",
        params={"object_type": "ticket", "object_id": ticket["id"]},
        headers=tenant.headers,
    )
    assert audit.status_code == 200, audit.text
    assert sorted(entry["action"] for entry in audit.json()["items"]) == sorted(
        [
            "ticket.opened",
            "ticket.changed",
            "ticket.commented",
            "ticket.closed",
            "ticket.reopened",
            "ticket.changed",
        ]
    )


async def test_tickets_are_filtered_and_paged(platform: RunningPlatform) -> None:
    # Given three tickets: two on a connection (one assigned, one closed) and one on an order
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)
    placed = await place(platform, tenant, order(external_id="T-2"))
    first = await opened(
        platform,
        tenant.headers,
        subject_type="connection",
        subject_id=connection["connection_id"],
        title="one",
    )
    second = await opened(
        platform,
        tenant.headers,
        subject_type="connection",
        subject_id=connection["connection_id"],
        title="two",
        assignee="user-7",
    )
    third = await opened(
        platform, tenant.headers, subject_type="order", subject_id=placed["id"], title="three"
    )
    await platform.client.post(f"/v1/tickets/{first['id']}/close", headers=tenant.headers)

    # When they are listed with filters and in pages of two
    by_status = await listed(platform, tenant.headers, status="open")
    by_subject = await listed(
        platform, tenant.headers, subject_type="connection", subject_id=connection["connection_id"]
    )
    by_assignee = await listed(platform, tenant.headers, assignee="user-7")
    by_origin = await listed(platform, tenant.headers, origin="automatic")
    page_one = await platform.client.get("/v1/tickets", params={"limit": 2}, headers=tenant.headers)
    page_two = await platform.client.get(
        "/v1/tickets", params={"limit": 2, "cursor": page_one.json()["next_cursor"]}, headers=tenant.headers
    )

    # Then each filter finds exactly its tickets, newest first, and the pages hold all three once
    assert [t["title"] for t in by_status] == ["three", "two"]
    assert [t["title"] for t in by_subject] == ["two", "one"]
    assert [t["id"] for t in by_assignee] == [second["id"]]
    assert by_origin == []
    assert [t["id"] for t in page_one.json()["items"] + page_two.json()["items"]] == [
        third["id"],
        second["id"],
        first["id"],
    ]
    assert page_two.json()["next_cursor"] is None


async def test_bad_input_is_a_4xx_naming_the_field(platform: RunningPlatform) -> None:
    # Given a tenant, and another tenant's connection
    tenant = await platform.new_tenant()
    other = await platform.new_tenant("Other")
    foreign = await open_connection(platform, other)

    # When tickets are opened with bad input
    answers = {
        "unknown subject type": await open_ticket(
            platform, tenant.headers, subject_type="driver", subject_id="x", title="t"
        ),
        "empty title": await open_ticket(
            platform, tenant.headers, subject_type="order", subject_id="x", title=""
        ),
        "NUL in body": await open_ticket(
            platform, tenant.headers, subject_type="order", subject_id="x", title="t", body="a\x00b"
        ),
        "another tenant's connection": await open_ticket(
            platform,
            tenant.headers,
            subject_type="connection",
            subject_id=foreign["connection_id"],
            title="t",
        ),
        "a bad cursor": await platform.client.get(
            "/v1/tickets", params={"cursor": "nope"}, headers=tenant.headers
        ),
    }

    # Then each is a 422 problem naming the field
    assert {name: (r.status_code, r.headers["content-type"]) for name, r in answers.items()} == dict.fromkeys(
        answers, (422, PROBLEM_JSON)
    )
    assert {name: [e["field"] for e in r.json()["errors"]] for name, r in answers.items()} == {
        "unknown subject type": ["subject_type"],
        "empty title": ["title"],
        "NUL in body": ["body"],
        "another tenant's connection": ["subject_id"],
        "a bad cursor": ["cursor"],
    }


async def test_merchant_staff_see_and_open_tickets_only_on_their_merchants_orders(
    platform: RunningPlatform,
) -> None:
    # Given orders of two merchants, each with a ticket opened by the tenant, and staff of merchant A
    tenant = await platform.new_tenant()
    order_a = await place(platform, tenant, order(external_id="M-A", merchant_id=MERCHANT_A))
    order_b = await place(platform, tenant, order(external_id="M-B", merchant_id=MERCHANT_B))
    await platform.settle()
    ticket_a = await opened(
        platform, tenant.headers, subject_type="order", subject_id=order_a["id"], title="A"
    )
    ticket_b = await opened(
        platform, tenant.headers, subject_type="order", subject_id=order_b["id"], title="B"
    )
    connection = await open_connection(platform, tenant)
    await opened(
        platform, tenant.headers, subject_type="connection", subject_id=connection["connection_id"], title="C"
    )
    _, staff = await signed_in(
        platform, tenant, "staff@a.test", [Role.MERCHANT_STAFF.value], merchant_ids=[MERCHANT_A]
    )

    # When the staff list tickets, read B's, comment on both, and open tickets on each order and the connection
    seen = await listed(platform, staff)
    read_b = await platform.client.get(f"/v1/tickets/{ticket_b['id']}", headers=staff)
    comment_a = await platform.client.post(
        f"/v1/tickets/{ticket_a['id']}/comments", json={"body": "Ours"}, headers=staff
    )
    comment_b = await platform.client.post(
        f"/v1/tickets/{ticket_b['id']}/comments", json={"body": "Theirs"}, headers=staff
    )
    own = await open_ticket(platform, staff, subject_type="order", subject_id=order_a["id"], title="Late")
    theirs = await open_ticket(platform, staff, subject_type="order", subject_id=order_b["id"], title="Late")
    on_connection = await open_ticket(
        platform, staff, subject_type="connection", subject_id=connection["connection_id"], title="x"
    )

    # Then they see only merchant A's tickets, B's is a 404, and they may act only on A's orders
    assert [t["title"] for t in seen] == ["A"]
    assert (read_b.status_code, comment_a.status_code, comment_b.status_code) == (404, 201, 404)
    assert own.status_code == 201, own.text
    assert_problem(theirs, 422, "ticket-subject-not-found")
    assert_problem(on_connection, 403, "forbidden")
    assert [t["title"] for t in await listed(platform, staff)] == ["Late", "A"]


async def test_an_unmappable_delivery_opens_one_ticket_and_the_next_failure_comments_on_it(
    platform: RunningPlatform,
) -> None:
    # Given a Shopify connection
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)

    # When a signed delivery that is not JSON arrives, the events are handled, and it is delivered again
    first = await send_shopify(platform, connection, b"<order/>", webhook_id="wh-1")
    await platform.settle()
    await send_shopify(platform, connection, b"<order/>", webhook_id="wh-1")
    await platform.settle()

    # Then one automatic ticket is open on the connection, naming the delivery
    [ticket] = await listed(platform, tenant.headers, origin="automatic")
    assert {k: ticket[k] for k in ("subject_type", "subject_id", "status", "priority", "opened_by")} == {
        "subject_type": "connection",
        "subject_id": connection["connection_id"],
        "status": "open",
        "priority": "high",
        "opened_by": "system",
    }
    detail = (await platform.client.get(f"/v1/tickets/{ticket['id']}", headers=tenant.headers)).json()
    assert first.json()["delivery_id"] in detail["body"]
    assert detail["comments"] == []

    # When a second delivery fails on the same connection
    second = await send_shopify(platform, connection, b"not json either", webhook_id="wh-2")
    await platform.settle()

    # Then it is a comment on the same ticket, not a new ticket
    assert [t["id"] for t in await listed(platform, tenant.headers, origin="automatic")] == [ticket["id"]]
    detail = (await platform.client.get(f"/v1/tickets/{ticket['id']}", headers=tenant.headers)).json()
    assert [(c["author"], second.json()["delivery_id"] in c["body"]) for c in detail["comments"]] == [
        ("system", True)
    ]

    # When the ticket is closed and the connection fails again
    await platform.client.post(f"/v1/tickets/{ticket['id']}/close", headers=tenant.headers)
    await send_shopify(platform, connection, b"<still/>", webhook_id="wh-3")
    await platform.settle()

    # Then a new ticket opens, and the closed one cannot be reopened beside it
    automatic = await listed(platform, tenant.headers, origin="automatic")
    assert [t["status"] for t in automatic] == ["open", "closed"]
    reopened = await platform.client.post(f"/v1/tickets/{ticket['id']}/reopen", headers=tenant.headers)
    assert_problem(reopened, 409, "ticket-already-open")


async def test_a_disabled_endpoint_opens_a_ticket_and_its_admins_are_notified(
    platform: RunningPlatform,
) -> None:
    # Given a tenant with an admin
    tenant = await platform.new_tenant()
    await signed_in(platform, tenant, "admin@t.test", [Role.TENANT_ADMIN.value])

    # When one of its endpoints answers 410 Gone
    endpoint_id = await disable_endpoint(platform, tenant)

    # Then an urgent automatic ticket is open on the endpoint
    [ticket] = await listed(platform, tenant.headers, subject_type="webhook_endpoint")
    assert (ticket["subject_id"], ticket["origin"], ticket["priority"], ticket["status"]) == (
        endpoint_id,
        "automatic",
        "urgent",
        "open",
    )
    assert ticket["title"] == "Status webhooks to https://receiver.invalid/hooks are disabled"


@ON_POSTGRES
async def test_tickets_on_postgresql(platform: RunningPlatform) -> None:
    # Given a tenant on PostgreSQL whose connection fails twice, and an order ticket
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)
    for webhook_id in ("wh-1", "wh-2"):
        await send_shopify(platform, connection, b"<order/>", webhook_id=webhook_id)
    await platform.settle()
    placed = await place(platform, tenant, order(external_id="PG-1"))
    manual = await opened(platform, tenant.headers, subject_type="order", subject_id=placed["id"], title="PG")

    # When the manual one is commented on and closed
    await platform.client.post(
        f"/v1/tickets/{manual['id']}/comments", json={"body": "ok"}, headers=tenant.headers
    )
    closed = await platform.client.post(f"/v1/tickets/{manual['id']}/close", headers=tenant.headers)

    # Then there is one automatic ticket with one comment, and the manual one is closed with its comment
    [automatic] = await listed(platform, tenant.headers, origin="automatic")
    detail = (await platform.client.get(f"/v1/tickets/{automatic['id']}", headers=tenant.headers)).json()
    assert len(detail["comments"]) == 1
    assert (closed.json()["status"], [c["body"] for c in closed.json()["comments"]]) == ("closed", ["ok"])


async def test_a_ticket_follows_its_order_to_another_merchant(platform: RunningPlatform) -> None:
    # Given a ticket on an order of merchant A, and staff of merchants A and B
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order(external_id="MV-1", merchant_id=MERCHANT_A))
    await platform.settle()
    ticket = await opened(
        platform, tenant.headers, subject_type="order", subject_id=placed["id"], title="Move"
    )
    _, staff_a = await signed_in(
        platform, tenant, "a@m.test", [Role.MERCHANT_STAFF.value], merchant_ids=[MERCHANT_A]
    )
    _, staff_b = await signed_in(
        platform, tenant, "b@m.test", [Role.MERCHANT_STAFF.value], merchant_ids=[MERCHANT_B]
    )
    before = ([t["id"] for t in await listed(platform, staff_a)], await listed(platform, staff_b))

    # When the order moves to merchant B and the orders events are handled
    moved = await platform.client.patch(
        f"/v1/orders/{placed['id']}", json={"merchant_id": MERCHANT_B}, headers=tenant.headers
    )
    assert moved.status_code == 200, moved.text
    await platform.settle()

    # Then the ticket left A's staff and reached B's
    assert before == ([ticket["id"]], [])
    assert await listed(platform, staff_a) == []
    assert [t["id"] for t in await listed(platform, staff_b)] == [ticket["id"]]
