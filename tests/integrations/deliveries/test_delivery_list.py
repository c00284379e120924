"""`GET /v1/deliveries`: the tenant's deliveries newest first, page by page, filtered; bad filters named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update
from tests.identity.integration.test_users import assert_problem, signed_in
from tests.integrations.deliveries.test_delivery_api import accepted, quoted, with_rate_card
from tests.orders.integration.test_orders_api import move
from tests.platform import RunningPlatform, Tenant

from doorstep.integrations.deliveries.tables import api_deliveries
from doorstep.kernel.permissions import Role


async def deliver(platform: RunningPlatform, tenant: Tenant, *external_ids: str) -> list[str]:
    """Quote and accept one delivery per external id, in order; their ids."""
    return [
        (await accepted(platform, tenant, (await quoted(platform, tenant, external_delivery_id=ext))["id"]))[
            "id"
        ]
        for ext in external_ids
    ]


async def listed(
    platform: RunningPlatform, headers: dict[str, str], **params: Any
) -> tuple[list[tuple[str, str]], str | None]:
    """The (external id, status) of one page, and its next cursor."""
    response = await platform.client.get("/v1/deliveries", params=params, headers=headers)
    assert response.status_code == 200, response.text
    page = response.json()
    return [(item["external_delivery_id"], item["status"]) for item in page["items"]], page["next_cursor"]


async def created_at(platform: RunningPlatform, delivery_id: str, moment: datetime) -> None:
    async with platform.services["integrations"].database.writer_engine.begin() as connection:
        await connection.execute(
            update(api_deliveries).where(api_deliveries.c.id == delivery_id).values(created_at=moment)
        )


async def test_deliveries_are_listed_newest_first_page_by_page(platform: RunningPlatform) -> None:
    # Given three deliveries of tenant A and one of tenant B
    tenant, other = await platform.new_tenant("A"), await platform.new_tenant("B")
    await with_rate_card(platform, tenant.headers)
    await with_rate_card(platform, other.headers)
    await deliver(platform, tenant, "P-1", "P-2", "P-3")
    await deliver(platform, other, "B-1")
    await platform.settle()

    # When A lists them two at a time
    first, cursor = await listed(platform, tenant.headers, limit=2)
    assert cursor is not None
    second, end = await listed(platform, tenant.headers, limit=2, cursor=cursor)

    # Then the newest come first, each with its quote's fee, and the pages end; B's is not among them
    assert first == [("P-3", "placed"), ("P-2", "placed")]
    assert (second, end) == ([("P-1", "placed")], None)
    response = await platform.client.get("/v1/deliveries", headers=tenant.headers)
    assert [(item["fee"], item["currency"]) for item in response.json()["items"]] == [(614, "EUR")] * 3
    assert await listed(platform, other.headers) == ([("B-1", "placed")], None)


async def test_the_filters_narrow_the_list(platform: RunningPlatform) -> None:
    # Given three deliveries created on three days, whose orders are placed, and one of them accepted
    tenant = await platform.new_tenant()
    await with_rate_card(platform, tenant.headers)
    ids = await deliver(platform, tenant, "P-1", "P-2", "P-3")
    for day, delivery_id in zip((1, 2, 3), ids, strict=True):
        await created_at(platform, delivery_id, datetime(2026, 11, day, 12, 0, tzinfo=UTC))
    await platform.settle()
    order_id = (await platform.client.get(f"/v1/deliveries/{ids[1]}", headers=tenant.headers)).json()[
        "order_id"
    ]
    assert (await move(platform, tenant, order_id, "accepted")).status_code == 200
    await platform.settle()

    # When the list is filtered by status, by external id and by creation time
    by_status = await listed(platform, tenant.headers, status="placed")
    by_statuses = await listed(platform, tenant.headers, status=["accepted", "requested"])
    by_external_id = await listed(platform, tenant.headers, external_delivery_id="P-3")
    by_time = await listed(
        platform,
        tenant.headers,
        created_from="2026-11-02T12:00:00Z",
        created_to="2026-11-03T13:00:00+01:00",
    )

    # Then each shows exactly the deliveries that match (`created_to` is exclusive)
    assert by_status == ([("P-3", "placed"), ("P-1", "placed")], None)
    assert by_statuses == ([("P-2", "accepted")], None)
    assert by_external_id == ([("P-3", "placed")], None)
    assert by_time == ([("P-2", "accepted")], None)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"status": ["placed", "Placed"]}, "status"),
        ({"created_from": "2026-11-02T12:00:00"}, "created_from"),
        ({"created_to": "yesterday"}, "created_to"),
        ({"external_delivery_id": ""}, "external_delivery_id"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
    ids=["unknown-status", "status-case", "no-offset", "not-a-time", "empty-id", "cursor", "limit"],
)
async def test_bad_filters_are_refused_naming_the_field(
    platform: RunningPlatform, params: dict[str, Any], field: str
) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it lists with a bad filter
    response = await platform.client.get("/v1/deliveries", params=params, headers=tenant.headers)

    # Then it is a 422 problem naming that query parameter
    assert response.status_code == 422, response.text
    assert [(error["field"], error["in"]) for error in response.json()["errors"]] == [(field, "query")]


async def test_a_caller_short_of_the_tenant_lists_only_its_own_and_a_driver_none(
    platform: RunningPlatform,
) -> None:
    # Given a delivery made with the tenant's key and one made by a customer
    tenant = await platform.new_tenant()
    await with_rate_card(platform, tenant.headers)
    await deliver(platform, tenant, "P-1")
    _, customer = await signed_in(platform, tenant, "c@a.test", [Role.CUSTOMER.value])
    _, driver = await signed_in(platform, tenant, "d@a.test", [Role.DRIVER.value])
    quote = await platform.client.post(
        "/v1/deliveries/quotes",
        json={
            "external_delivery_id": "C-1",
            "pickup": {"name": "Shop", "address": "Oranienstraße 12, 10999 Berlin"},
            "dropoff": {"name": "Me", "address": "Skalitzer Straße 3, 10997 Berlin"},
        },
        headers=customer,
    )
    assert quote.status_code == 201, quote.text
    accept = await platform.client.post(
        f"/v1/deliveries/quotes/{quote.json()['id']}/accept", headers=customer
    )
    assert accept.status_code == 201, accept.text
    await platform.settle()

    # When the tenant's key, the customer and a driver list deliveries
    by_key = await listed(platform, tenant.headers)
    by_customer = await listed(platform, customer)
    by_driver = await platform.client.get("/v1/deliveries", headers=driver)

    # Then the key sees both, the customer only its own, and the driver may not list
    assert by_key == ([("C-1", "placed"), ("P-1", "placed")], None)
    assert by_customer == ([("C-1", "placed")], None)
    assert_problem(by_driver, 403, "forbidden")
