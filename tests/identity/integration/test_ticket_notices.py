"""A ticket assigned to someone: identity emails the assignee, once, through the notifier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.identity.integration.test_users import outbox_events, signed_in
from tests.integrations.tickets.test_tickets_api import opened
from tests.orders.integration.test_orders_api import order, place
from tests.platform import RunningPlatform, Tenant, running_platform, scratch_postgres_database, settings_for

from doorstep.identity.ticket_notices import TICKET_ASSIGNED
from doorstep.integrations.adapters.tables import outbox as integrations_outbox
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.permissions import Role
from doorstep.runtime.demo import DEMO_USERS, seed_demo

NOTIFICATION = "doorstep.notifications.requested.v1"
ASSIGNED = "doorstep.integrations.ticket.assigned.v1"


@pytest.fixture
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """The all-in-one platform on SQLite files; on PostgreSQL too for the test marked `BOTH_DATABASES`."""
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


BOTH_DATABASES = pytest.mark.parametrize(
    "platform", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)], indirect=True
)


async def notices(platform: RunningPlatform) -> list[tuple[str, str, dict[str, str]]]:
    """(channel, to, params) of each ticket-assignment notice identity asked for, in order."""
    return [
        (n["channel"], n["to"], n["params"])
        for n in await outbox_events(platform, NOTIFICATION)
        if n["template"] == TICKET_ASSIGNED
    ]


async def assign(
    platform: RunningPlatform, ticket_id: str, assignee: str | None, headers: dict[str, str]
) -> None:
    response = await platform.client.patch(
        f"/v1/tickets/{ticket_id}", json={"assignee": assignee}, headers=headers
    )
    assert response.status_code == 200, response.text


async def order_ticket(
    platform: RunningPlatform, tenant: Tenant, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    placed = await place(platform, tenant, order(external_id=f"TN-{body['title']}"))
    return await opened(platform, headers, subject_type="order", subject_id=placed["id"], **body)


@BOTH_DATABASES
async def test_the_assignee_is_emailed_once_naming_the_ticket_and_who_assigned_it(
    platform: RunningPlatform,
) -> None:
    # Given a tenant with an admin, Ada, and a dispatcher
    tenant = await platform.new_tenant()
    _, ada = await signed_in(platform, tenant, "ada@t.test", [Role.TENANT_ADMIN.value], name="Ada Admin")
    dispatcher_id, _ = await signed_in(platform, tenant, "disp@t.test", [Role.DISPATCHER.value])

    # When Ada opens a ticket assigned to the dispatcher and the events are handled
    ticket = await order_ticket(platform, tenant, ada, title="Late", assignee=dispatcher_id)
    await platform.settle()

    # Then identity asked for one email to the dispatcher, naming the ticket, its subject and Ada
    assert await notices(platform) == [
        (
            "email",
            "disp@t.test",
            {
                "ticket_id": ticket["id"],
                "title": "Late",
                "subject_type": "order",
                "subject_id": ticket["subject_id"],
                "assigned_by": "Ada Admin",
            },
        )
    ]

    # When the same assignment event is delivered to identity again
    async with platform.services["integrations"].database.reader() as session:
        [raw] = list(
            await session.scalars(
                select(integrations_outbox.c.envelope).where(integrations_outbox.c.type == ASSIGNED)
            )
        )
    envelope = CloudEvent.model_validate_json(raw)
    [subscription] = [s for s in platform.services["identity"].subscriptions if envelope.type in s.patterns]
    await subscription.handler(envelope)

    # Then there is still one email
    assert len(await notices(platform)) == 1


async def test_nobody_is_emailed_of_their_own_assignment_an_unassignment_or_when_not_an_active_user(
    platform: RunningPlatform,
) -> None:
    # Given a tenant with two dispatchers, a deactivated one, and a user of another tenant
    tenant = await platform.new_tenant()
    other = await platform.new_tenant("Other")
    _, admin = await signed_in(platform, tenant, "admin@t.test", [Role.TENANT_ADMIN.value])
    me_id, me = await signed_in(platform, tenant, "me@t.test", [Role.DISPATCHER.value])
    colleague_id, _ = await signed_in(platform, tenant, "col@t.test", [Role.DISPATCHER.value], name="Col")
    gone_id, _ = await signed_in(platform, tenant, "gone@t.test", [Role.DISPATCHER.value])
    foreign_id, _ = await signed_in(platform, other, "far@o.test", [Role.DISPATCHER.value])
    deactivated = await platform.client.post(f"/v1/identity/users/{gone_id}/deactivate", headers=admin)
    assert deactivated.status_code == 200, deactivated.text

    # When a dispatcher opens a ticket assigned to herself, then assigns it to the deactivated user, the
    # other tenant's user and an unknown id, unassigns it, takes it again, and the events are handled
    ticket = await order_ticket(platform, tenant, me, title="Mine", assignee=me_id)
    for assignee in (gone_id, foreign_id, "user-7", None, me_id):
        await assign(platform, ticket["id"], assignee, me)
    await platform.settle()

    # Then nobody was emailed
    assert await notices(platform) == []

    # When she then assigns it to her colleague, and the tenant's API key assigns it back to her
    await assign(platform, ticket["id"], colleague_id, me)
    await assign(platform, ticket["id"], me_id, tenant.headers)
    await platform.settle()

    # Then the colleague and she were each emailed once, naming who assigned (a user, the API key)
    assert sorted((to, params["assigned_by"]) for _, to, params in await notices(platform)) == [
        ("col@t.test", "Someone"),
        ("me@t.test", "default"),
    ]


async def test_the_demo_dispatcher_is_emailed_a_ticket_assigned_through_the_api(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given the demo, seeded and running all-in-one
    settings = settings_for(tmp_path)
    demo = await seed_demo(settings, public_url="http://testserver", orders=10)
    dispatcher_email = DEMO_USERS[1][0]
    async with running_platform(settings) as platform:
        headers = {"Authorization": f"Bearer {demo['api_key']}"}
        users = await platform.client.get(
            "/v1/identity/users", params={"role": "dispatcher"}, headers=headers
        )
        [dispatcher] = [u for u in users.json()["items"] if u["email"] == dispatcher_email]
        capfd.readouterr()

        # When the API key opens a ticket on the Shopify connection, assigned to the demo dispatcher
        ticket = await opened(
            platform,
            headers,
            subject_type="connection",
            subject_id=demo["connection_id"],
            title="Shopify orders look odd",
            assignee=dispatcher["id"],
        )
        await platform.settle()
        requested = await notices(platform)

    # Then identity asked once for the email to the dispatcher, and the log notifier sent it
    assert [(to, params["ticket_id"]) for _, to, params in requested] == [(dispatcher_email, ticket["id"])]
    logged = capfd.readouterr()
    # Delivery is at least once and the log keeps no inbox: a redelivered request logs the same line.
    sent = {
        line.partition("notification_sent_to_log")[2].strip()
        for line in (logged.out + logged.err).splitlines()
        if "notification_sent_to_log" in line and TICKET_ASSIGNED in line
    }
    assert len(sent) == 1, sent
    [line] = sent
    assert f"to={dispatcher_email}" in line
    assert f"ticket_id={ticket['id']}" in line
    assert "title='Shopify orders look odd'" in line
