"""A disabled status-webhook endpoint: identity tells each active tenant admin, once, through the notifier."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from tests.identity.integration.test_users import outbox_events, signed_in
from tests.integrations.tickets.test_tickets_api import disable_endpoint
from tests.platform import RunningPlatform

from doorstep.identity.adapters.tables import outbox
from doorstep.identity.tenant_notices import ENDPOINT_DISABLED
from doorstep.integrations.adapters.tables import outbox as integrations_outbox
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.permissions import Role

NOTIFICATION = "doorstep.notifications.requested.v1"


async def test_each_active_tenant_admin_is_told_once_and_nobody_else(
    platform: RunningPlatform, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a tenant with two active admins, a deactivated admin and a dispatcher, and another tenant's admin
    tenant = await platform.new_tenant()
    other = await platform.new_tenant("Other")
    _, admin = await signed_in(platform, tenant, "ada@t.test", [Role.TENANT_ADMIN.value])
    await signed_in(platform, tenant, "bo@t.test", [Role.TENANT_ADMIN.value, Role.DISPATCHER.value])
    gone_id, _ = await signed_in(platform, tenant, "cy@t.test", [Role.TENANT_ADMIN.value])
    await signed_in(platform, tenant, "dee@t.test", [Role.DISPATCHER.value])
    await signed_in(platform, other, "eve@o.test", [Role.TENANT_ADMIN.value])
    deactivated = await platform.client.post(f"/v1/identity/users/{gone_id}/deactivate", headers=admin)
    assert deactivated.status_code == 200, deactivated.text

    # When one of the tenant's endpoints answers 410 Gone and the events are handled
    endpoint_id = await disable_endpoint(platform, tenant)

    # Then identity asked for one email to each active admin of that tenant, naming the endpoint
    notices = [n for n in await outbox_events(platform, NOTIFICATION) if n["template"] == ENDPOINT_DISABLED]
    assert sorted((n["channel"], n["to"]) for n in notices) == [
        ("email", "ada@t.test"),
        ("email", "bo@t.test"),
    ]
    assert {json.dumps(n["params"], sort_keys=True) for n in notices} == {
        json.dumps(
            {
                "endpoint_id": endpoint_id,
                "url": "https://receiver.invalid/hooks",
                "reason": "the endpoint answered 410 Gone",
            },
            sort_keys=True,
        )
    }
    # And the all-in-one process delivered them to the log
    captured = capfd.readouterr()
    logged = captured.out + captured.err
    assert logged.count("notification_sent_to_log") == 2
    assert "ada@t.test" in logged
    assert "bo@t.test" in logged
    assert "cy@t.test" not in logged
    # And the integrations service asks nobody itself any more
    async with platform.services["integrations"].database.reader() as session:
        types = list(await session.scalars(select(integrations_outbox.c.type)))
    assert NOTIFICATION not in types


async def test_a_redelivered_event_tells_nobody_twice(platform: RunningPlatform) -> None:
    # Given a tenant admin who was told that an endpoint was disabled
    tenant = await platform.new_tenant()
    await signed_in(platform, tenant, "ada@t.test", [Role.TENANT_ADMIN.value])
    await disable_endpoint(platform, tenant)
    async with platform.services["integrations"].database.reader() as session:
        [raw] = list(
            await session.scalars(
                select(integrations_outbox.c.envelope).where(
                    integrations_outbox.c.type == "doorstep.integrations.webhook_endpoint.disabled.v1"
                )
            )
        )
    envelope = CloudEvent.model_validate_json(raw)

    # When the same event is delivered to identity again
    [subscription] = [s for s in platform.services["identity"].subscriptions if envelope.type in s.patterns]
    await subscription.handler(envelope)

    # Then there is still one notice
    async with platform.services["identity"].database.reader() as session:
        count = len(list(await session.scalars(select(outbox.c.id).where(outbox.c.type == NOTIFICATION))))
    assert count == 1
