"""Status webhooks end to end: orders events in, signed deliveries out to a real receiver on 127.0.0.1
that fails for a while, with an injected clock walking the retry schedule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook
from tests.integrations.outbound.receiver import HANG, Receiver, running_receiver
from tests.orders.integration.test_orders_api import move, order, place
from tests.platform import RunningPlatform, Tenant, running_platform, settings_for

from doorstep.integrations.adapters.tables import outbox
from doorstep.integrations.outbound.dispatcher import Dispatcher

pytestmark = pytest.mark.integration


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


async def webhook_platform(settings: Any) -> AsyncIterator[tuple[RunningPlatform, Dispatcher, FakeClock]]:
    async with running_platform(settings) as platform:
        dispatcher: Dispatcher = platform.app.state.webhook_dispatcher
        await dispatcher.stop()  # the test drives it, one round at a time
        clock = FakeClock()
        dispatcher.runtime.clock = clock
        dispatcher.runtime.random = lambda: 0.5  # jitter in the middle: the schedule's exact steps
        yield platform, dispatcher, clock


@pytest.fixture
async def webhooks(tmp_path: Path) -> AsyncIterator[tuple[RunningPlatform, Dispatcher, FakeClock]]:
    settings = settings_for(
        tmp_path, webhooks_allowed_networks=["127.0.0.1/32"], webhooks_timeout_seconds=0.5
    )
    async for running in webhook_platform(settings):
        yield running


async def register(
    platform: RunningPlatform, tenant: Tenant, url: str, event_types: list[str] | None = None
) -> dict[str, Any]:
    response = await platform.client.post(
        "/v1/integrations/webhook-endpoints",
        json={"url": url, "event_types": event_types or ["order.*"]},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


async def drain(dispatcher: Dispatcher) -> int:
    """Deliver rounds until nothing is due at the clock's time; how many deliveries were made."""
    total = 0
    while sent := await dispatcher.run_once():
        total += sent
    return total


async def messages(platform: RunningPlatform, tenant: Tenant, endpoint_id: str) -> list[dict[str, Any]]:
    response = await platform.client.get(
        f"/v1/integrations/webhook-endpoints/{endpoint_id}/messages", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_deliveries_retry_on_schedule_keep_order_and_a_gone_endpoint_is_disabled(
    webhooks: tuple[RunningPlatform, Dispatcher, FakeClock], receiver: Receiver
) -> None:
    platform, dispatcher, clock = webhooks
    tenant = await platform.new_tenant()
    # Given three endpoints: one that fails for a while, one that is gone (410), one that is healthy
    flaky = await register(platform, tenant, f"{receiver.base_url}/flaky")
    gone = await register(platform, tenant, f"{receiver.base_url}/gone")
    healthy = await register(platform, tenant, f"{receiver.base_url}/healthy")
    receiver.always["/gone"] = 410
    # And an order that is placed and accepted; the flaky receiver answers its creation 500, then
    # nothing (a timeout), then 204
    first = await place(platform, tenant, order(external_id="E-1"))
    assert (await move(platform, tenant, first["id"], "accepted")).status_code == 200
    receiver.scripts["/flaky"] = {("order.created", first["id"]): [500, HANG, 204]}
    await platform.settle()
    start = clock.now

    # When the dispatcher delivers what is due now
    await drain(dispatcher)

    # Then the healthy endpoint has both events, in the order's order
    assert [r.key for r in receiver.at("/healthy")] == [
        ("order.created", first["id"]),
        ("order.status_changed", first["id"]),
    ]
    # And the gone endpoint was asked once and is disabled, and the tenant is told
    assert len(receiver.at("/gone")) == 1
    got = await platform.client.get(
        f"/v1/integrations/webhook-endpoints/{gone['id']}", headers=tenant.headers
    )
    assert (got.json()["enabled"], got.json()["disabled_reason"]) == (False, "the endpoint answered 410 Gone")
    async with platform.services["integrations"].database.reader() as session:
        types = list(
            await session.scalars(select(outbox.c.type).where(outbox.c.tenant_id == tenant.tenant_id))
        )
    assert types.count("doorstep.integrations.webhook_endpoint.disabled.v1") == 1
    # (its tenant admins are told by identity, which knows them: tests/identity/integration/test_tenant_notices.py)
    assert types.count("doorstep.notifications.requested.v1") == 0
    # And the flaky endpoint got only the creation (the status change waits behind it), answered 500
    assert [r.key for r in receiver.at("/flaky")] == [("order.created", first["id"])]

    # When 4 s pass, nothing is due; at 5 s the retry is (the schedule's second step)
    clock.advance(seconds=4)
    assert await drain(dispatcher) == 0
    # And meanwhile a second order arrives
    second = await place(platform, tenant, order(external_id="E-2"))
    await platform.settle()
    clock.advance(seconds=1)
    await drain(dispatcher)

    # Then the flaky receiver hangs on the retry, and the healthy endpoint got the second order while it
    # hung: a dead receiver holds up nothing else
    [healthy_second] = [r for r in receiver.at("/healthy") if r.key == ("order.created", second["id"])]
    assert healthy_second.hanging == 1
    assert [r.key for r in receiver.at("/flaky")] == [
        ("order.created", first["id"]),
        ("order.created", first["id"]),
        ("order.created", second["id"]),
    ]

    # When 5 minutes pass (the third step), the creation goes through and the status change follows
    clock.advance(seconds=300)
    await drain(dispatcher)
    flaky_keys = [r.key for r in receiver.at("/flaky")]
    assert flaky_keys[3:] == [("order.created", first["id"]), ("order.status_changed", first["id"])]

    # Then every attempt of a message carries the same webhook-id, and every signature is the reference
    # library's for the endpoint's secret (the library's own check where the timestamp is recent)
    creations = [r for r in receiver.at("/flaky") if r.key == ("order.created", first["id"])]
    assert len({r.headers["webhook-id"] for r in creations}) == 1
    for request in receiver.at("/flaky") + receiver.at("/healthy"):
        secret = flaky["secret"] if request.path == "/flaky" else healthy["secret"]
        expected = Webhook(secret).sign(
            request.headers["webhook-id"],
            datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC),
            request.body.decode(),
        )
        assert request.headers["webhook-signature"] == expected
    assert Webhook(healthy["secret"]).verify(
        receiver.at("/healthy")[0].body, receiver.at("/healthy")[0].headers
    )
    assert [int(r.headers["webhook-timestamp"]) for r in creations] == [
        int(start.timestamp()),
        int((start + timedelta(seconds=5)).timestamp()),
        int((start + timedelta(seconds=305)).timestamp()),
    ]

    # And the message log shows each attempt with its status, snippet and error
    [logged] = [
        m
        for m in await messages(platform, tenant, flaky["id"])
        if m["id"] == creations[0].headers["webhook-id"]
    ]
    assert logged["state"] == "delivered"
    assert [(a["status"], a["response_snippet"], a["error"]) for a in logged["attempt_log"]] == [
        (500, "boom", None),
        (None, "", "timed out"),
        (204, "", None),
    ]

    # When the healthy endpoint's first message is replayed, it is delivered again with its webhook-id
    first_healthy = receiver.at("/healthy")[0]
    replayed = await platform.client.post(
        f"/v1/integrations/webhook-endpoints/{healthy['id']}/messages/{first_healthy.headers['webhook-id']}/replay",
        headers=tenant.headers,
    )
    assert replayed.status_code == 200, replayed.text
    await drain(dispatcher)
    assert receiver.at("/healthy")[-1].headers["webhook-id"] == first_healthy.headers["webhook-id"]
    assert receiver.at("/healthy")[-1].body == first_healthy.body

    # And the gone endpoint's failed messages since the start can be replayed in bulk
    bulk = await platform.client.post(
        f"/v1/integrations/webhook-endpoints/{gone['id']}/replay",
        json={"since": (start - timedelta(minutes=1)).isoformat()},
        headers=tenant.headers,
    )
    assert (bulk.status_code, bulk.json()) == (200, {"replayed": 1})


async def test_registration_refuses_private_urls_and_names_the_field(platform: RunningPlatform) -> None:
    # Given a platform without an allow-list
    tenant = await platform.new_tenant()
    answers = {}
    # When private, metadata and loopback URLs are registered
    for url in ("http://10.0.0.5/hook", "http://169.254.169.254/latest", "http://localhost:9/hook"):
        response = await platform.client.post(
            "/v1/integrations/webhook-endpoints",
            json={"url": url, "event_types": ["order.*"]},
            headers=tenant.headers,
        )
        answers[url] = (response.status_code, response.json()["type"], response.json()["errors"][0]["field"])
    # Then each is a 422 naming the url, and a pattern that matches nothing names its index
    assert answers == dict.fromkeys(
        ["http://10.0.0.5/hook", "http://169.254.169.254/latest", "http://localhost:9/hook"],
        (422, "https://doorstep.dev/problems/webhook-url-refused", "url"),
    )
    bad_type = await platform.client.post(
        "/v1/integrations/webhook-endpoints",
        json={"url": "https://hooks.invalid/x", "event_types": ["order.*", "invoice.paid"]},
        headers=tenant.headers,
    )
    assert (bad_type.status_code, bad_type.json()["errors"][0]["field"]) == (422, "event_types.1")


async def test_a_url_that_rebinds_to_loopback_after_registration_is_refused_at_send_time(
    tmp_path: Path, receiver: Receiver
) -> None:
    # Given a name that resolved to a public address at registration
    answers = {"rebind.example": ["93.184.215.14"]}

    async def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    async for platform, dispatcher, _ in webhook_platform(settings_for(tmp_path)):
        dispatcher.runtime.resolver = resolve
        dispatcher.sender.resolver = resolve
        tenant = await platform.new_tenant()
        endpoint = await register(platform, tenant, "http://rebind.example/hook")
        # When it resolves to 127.0.0.1 by the time a message is sent
        answers["rebind.example"] = ["127.0.0.1"]
        sent = await platform.client.post(
            f"/v1/integrations/webhook-endpoints/{endpoint['id']}/test", headers=tenant.headers
        )
        assert sent.status_code == 202, sent.text
        await drain(dispatcher)
        # Then nothing was sent and the attempt says why
        [logged] = await messages(platform, tenant, endpoint["id"])
        assert [a["error"] for a in logged["attempt_log"]] == [
            "refused: rebind.example resolves to 127.0.0.1, which is a loopback address; "
            "webhooks go to public addresses only"
        ]
        assert receiver.received == []
