"""Webhook deliveries at the edges: too deep, too long an id, too big a streamed body."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tests.integrations.integration.test_webhooks_api import (
    DOORSTEP_SECRET,
    inbound_of,
    open_connection,
    webhook_path,
)
from tests.platform import RunningPlatform

from doorstep.integrations.adapters.platforms.doorstep_json import sign_doorstep_payload
from doorstep.integrations.api import MAX_WEBHOOK_BYTES


async def doorstep_connection(platform: RunningPlatform) -> tuple[object, dict[str, object]]:
    tenant = await platform.new_tenant()
    connection = await open_connection(platform, tenant, "doorstep", settings={}, secret=DOORSTEP_SECRET)
    return tenant, connection


async def test_an_authentic_body_nested_too_deeply_is_kept_as_failed_not_a_500(
    platform: RunningPlatform,
) -> None:
    # Given a doorstep connection
    tenant, connection = await doorstep_connection(platform)
    body = b"[" * 200_000
    # When a signed delivery arrives whose JSON nests 200,000 levels deep
    response = await platform.client.post(
        webhook_path(connection),
        content=body,
        headers={"Doorstep-Signature": sign_doorstep_payload(body, DOORSTEP_SECRET)},
    )
    # Then it is accepted into the inbound log as failed, with the reason
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "failed"
    (logged,) = await inbound_of(platform, tenant)  # type: ignore[arg-type]
    assert logged["failure_reason"] == "the body nests too deeply to be an order"


async def test_a_delivery_id_longer_than_the_column_is_kept_by_its_hash(platform: RunningPlatform) -> None:
    # Given a doorstep connection and a platform that sends a 1,000-character delivery id
    tenant, connection = await doorstep_connection(platform)
    body = b"{}"
    headers = {
        "Doorstep-Signature": sign_doorstep_payload(body, DOORSTEP_SECRET),
        "Doorstep-Delivery-Id": "d" * 1000,
    }
    # When it delivers twice
    first = await platform.client.post(webhook_path(connection), content=body, headers=headers)
    second = await platform.client.post(webhook_path(connection), content=body, headers=headers)
    # Then both are accepted, the second as the same delivery, and the stored id is a hash
    assert first.status_code == second.status_code == 202
    assert second.json() == {**first.json(), "duplicate": True}
    (logged,) = await inbound_of(platform, tenant)  # type: ignore[arg-type]
    assert logged["platform_delivery_id"].startswith("sha256:")


async def test_a_streamed_body_over_the_limit_is_refused_without_reading_it_all(
    platform: RunningPlatform,
) -> None:
    # Given a connection, and a client streaming a body with no Content-Length
    tenant, connection = await doorstep_connection(platform)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b"x" * 65536
        while sent < 4 * MAX_WEBHOOK_BYTES:
            sent += len(chunk)
            yield chunk

    # When it streams four times the limit
    response = await platform.client.post(webhook_path(connection), content=endless())
    # Then the answer is 413 and nothing is logged
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")
    assert await inbound_of(platform, tenant) == []  # type: ignore[arg-type]
