"""What tickets publish: each action exactly its event, through the integrations outbox, no ticket text."""

from __future__ import annotations

import json
from typing import Any, get_args

from sqlalchemy import select
from tests.identity.integration.test_users import signed_in
from tests.integrations.integration.test_webhooks_api import open_connection, send_shopify
from tests.integrations.tickets.test_tickets_api import listed, opened
from tests.orders.integration.test_orders_api import order, place
from tests.platform import RunningPlatform

from doorstep.contracts.integrations import TicketSubjectType
from doorstep.integrations.adapters.tables import outbox
from doorstep.integrations.tickets.domain import SubjectType
from doorstep.kernel.permissions import Role

TICKET_EVENTS = "doorstep.integrations.ticket."


class Outbox:
    """The ticket events of the integrations outbox, each read once: `new()` answers what came since."""

    def __init__(self, platform: RunningPlatform) -> None:
        self.platform = platform
        self.seen = 0

    async def envelopes(self) -> list[dict[str, Any]]:
        async with self.platform.services["integrations"].database.reader() as session:
            rows = await session.scalars(
                select(outbox.c.envelope)
                .where(outbox.c.type.startswith(TICKET_EVENTS))
                .order_by(outbox.c.seq)
            )
            return [json.loads(row) for row in rows]

    async def new(self) -> list[tuple[str, dict[str, Any]]]:
        """(`opened`, data) for each ticket event published since the last call."""
        found = await self.envelopes()
        fresh, self.seen = found[self.seen :], len(found)
        return [(envelope["type"].split(".")[3], envelope["data"]) for envelope in fresh]


def about(ticket: dict[str, Any], actor: str, at: str) -> dict[str, Any]:
    return {
        "ticket_id": ticket["id"],
        "subject_type": ticket["subject_type"],
        "subject_id": ticket["subject_id"],
        "actor": actor,
        "occurred_at": at,
    }


def test_the_contract_names_every_subject_type_a_ticket_can_have() -> None:
    # Given the subject types of the ticket model and of the published contract
    # When they are compared
    # Then they are the same: an event never carries a type the contract does not list
    assert sorted(get_args(TicketSubjectType)) == sorted(s.value for s in SubjectType)


async def test_each_ticket_action_publishes_exactly_its_event(platform: RunningPlatform) -> None:
    # Given a tenant with an order and two dispatchers, Ann and Bo
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order(external_id="EV-1"))
    ann_id, ann = await signed_in(platform, tenant, "ann@t.test", [Role.DISPATCHER.value])
    bo_id, bo = await signed_in(platform, tenant, "bo@t.test", [Role.DISPATCHER.value])
    ann_actor, bo_actor = f"user:{ann_id}", f"user:{bo_id}"
    events = Outbox(platform)
    await events.new()

    # When Ann opens a ticket on the order assigned to Bo
    ticket = await opened(
        platform,
        ann,
        subject_type="order",
        subject_id=placed["id"],
        title="Customer not home",
        body="Lena Müller, +49 30 555 0101, third floor",
        priority="high",
        assignee=bo_id,
    )

    # Then it is opened, and assigned to Bo from nobody, both by Ann at the opening
    opening = about(ticket, ann_actor, ticket["created_at"])
    assert await events.new() == [
        (
            "opened",
            {
                **opening,
                "title": "Customer not home",
                "priority": "high",
                "origin": "person",
                "assignee": bo_id,
            },
        ),
        ("assigned", {**opening, "assignee": bo_id, "previous_assignee": None, "title": "Customer not home"}),
    ]
    path = f"/v1/tickets/{ticket['id']}"

    # When Ann takes it herself and moves it to in progress
    taken = (
        await platform.client.patch(path, json={"assignee": ann_id, "status": "in_progress"}, headers=ann)
    ).json()

    # Then only the assignment is published (in progress is no event of its own)
    assert await events.new() == [
        (
            "assigned",
            {
                **about(ticket, ann_actor, taken["updated_at"]),
                "assignee": ann_id,
                "previous_assignee": bo_id,
                "title": "Customer not home",
            },
        )
    ]

    # When the title changes and she is assigned again, and the open ticket is reopened
    retitled = await platform.client.patch(path, json={"title": "Not home", "assignee": ann_id}, headers=ann)
    not_reopened = await platform.client.post(f"{path}/reopen", headers=bo)

    # Then nothing is published: the assignee did not change, and there was nothing to reopen
    assert (retitled.status_code, not_reopened.status_code) == (200, 200)
    assert await events.new() == []

    # When Bo comments
    comment = (
        await platform.client.post(
            f"{path}/comments", json={"body": "Called +49 30 555 0101 twice"}, headers=bo
        )
    ).json()

    # Then the comment is published by id and author, without its text
    assert await events.new() == [
        ("commented", {**about(ticket, bo_actor, comment["at"]), "comment_id": comment["id"]})
    ]

    # When Ann closes it and closes it again
    closed = (await platform.client.post(f"{path}/close", headers=ann)).json()
    await platform.client.post(f"{path}/close", headers=ann)

    # Then it was closed once, from in progress
    assert await events.new() == [
        ("closed", {**about(ticket, ann_actor, closed["updated_at"]), "from_status": "in_progress"})
    ]

    # When the closed ticket is assigned to Bo and moved to in progress at once
    refused = await platform.client.patch(
        path, json={"assignee": bo_id, "status": "in_progress"}, headers=ann
    )

    # Then that is refused and nothing is published, not even the assignment
    assert refused.status_code == 409
    assert await events.new() == []

    # When Bo reopens it, and it is resolved, opened again and closed through changes
    reopened = (await platform.client.post(f"{path}/reopen", headers=bo)).json()
    await platform.client.patch(path, json={"status": "resolved"}, headers=bo)
    opened_again = (await platform.client.patch(path, json={"status": "open"}, headers=ann)).json()
    closed_again = (await platform.client.patch(path, json={"status": "closed"}, headers=ann)).json()

    # Then each reopening and closing is published, from where it came; resolving is no event
    assert await events.new() == [
        ("reopened", {**about(ticket, bo_actor, reopened["updated_at"]), "from_status": "closed"}),
        ("reopened", {**about(ticket, ann_actor, opened_again["updated_at"]), "from_status": "resolved"}),
        ("closed", {**about(ticket, ann_actor, closed_again["updated_at"]), "from_status": "open"}),
    ]

    # When it is unassigned
    unassigned = (await platform.client.patch(path, json={"assignee": None}, headers=bo)).json()

    # Then that is an assignment to nobody
    assert await events.new() == [
        (
            "assigned",
            {
                **about(ticket, bo_actor, unassigned["updated_at"]),
                "assignee": None,
                "previous_assignee": ann_id,
                "title": "Not home",
            },
        )
    ]
    # And every event is the tenant's, about the ticket, from integrations; no ticket text is in any
    envelopes = await events.envelopes()
    assert {(e["tenantid"], e["subject"], e["source"]) for e in envelopes} == {
        (tenant.tenant_id, ticket["id"], "/doorstep/integrations")
    }
    assert "555 0101" not in json.dumps(envelopes)


async def test_an_automatic_ticket_is_published_opened_and_then_commented_by_the_system(
    platform: RunningPlatform,
) -> None:
    # Given a Shopify connection
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant)
    events = Outbox(platform)

    # When a delivery fails to map, is delivered again, and a second one fails
    await send_shopify(platform, connection, b"<order/>", webhook_id="wh-1")
    await platform.settle()
    await send_shopify(platform, connection, b"<order/>", webhook_id="wh-1")
    await platform.settle()
    first = await events.new()
    await send_shopify(platform, connection, b"not json either", webhook_id="wh-2")
    await platform.settle()
    second = await events.new()

    # Then the system opened one ticket, unassigned, and then commented on it
    [ticket] = await listed(platform, tenant.headers, origin="automatic")
    detail = (await platform.client.get(f"/v1/tickets/{ticket['id']}", headers=tenant.headers)).json()
    assert first == [
        (
            "opened",
            {
                **about(ticket, "system", ticket["created_at"]),
                "title": ticket["title"],
                "priority": "high",
                "origin": "automatic",
                "assignee": None,
            },
        )
    ]
    [comment] = detail["comments"]
    assert second == [("commented", {**about(ticket, "system", comment["at"]), "comment_id": comment["id"]})]
