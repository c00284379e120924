"""Input meant to break things gets a named 4xx problem, never a 500, and stores nothing half-way."""

from __future__ import annotations

import io
import json
from typing import Any

from tests.orders.integration.test_orders_api import assert_problem, error_fields, order, place
from tests.platform import RunningPlatform

from doorstep.contracts.orders import MAX_ORDER_TOTAL


def huge_order(external_id: str) -> dict[str, Any]:
    # 93 items of 100,000 x 10^12 minor units: each item is valid, the sum overflows a 64-bit integer.
    items = [{"name": f"Bulk {n}", "quantity": 100_000, "unit_price": 10**12} for n in range(93)]
    return order(external_id, items=items)


async def test_an_order_whose_total_does_not_fit_is_a_422_not_a_500(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    # When it sends an order whose total exceeds what Doorstep stores
    response = await platform.client.post("/v1/orders", json=huge_order("HUGE-1"), headers=tenant.headers)
    # Then it is a validation problem and nothing is stored
    problem = assert_problem(response, 422, "validation-error")
    assert str(MAX_ORDER_TOTAL) in problem["detail"]
    listed = await platform.client.get("/v1/orders", headers=tenant.headers)
    assert listed.json()["items"] == []


async def test_amending_an_order_past_the_largest_total_is_refused_and_changes_nothing(
    platform: RunningPlatform,
) -> None:
    # Given a placed order
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order("A-1"))
    # When its items are changed so that the total would not fit
    response = await platform.client.patch(
        f"/v1/orders/{placed['id']}", json={"items": huge_order("x")["items"]}, headers=tenant.headers
    )
    # Then the change is refused naming the field, and the order is as it was
    problem = assert_problem(response, 422, "order-total-too-large")
    assert error_fields(problem) == ["items"]
    stored = await platform.client.get(f"/v1/orders/{placed['id']}", headers=tenant.headers)
    assert stored.json()["totals"] == placed["totals"]


async def test_a_csv_row_whose_total_does_not_fit_is_a_row_error_and_the_others_are_stored(
    platform: RunningPlatform,
) -> None:
    # Given a file with one sane order and one whose total overflows
    header = (
        "external_id,pickup_name,pickup_address,pickup_lat,pickup_lon,dropoff_name,dropoff_address,"
        "dropoff_lat,dropoff_lon,customer_name,item_name,quantity,unit_price,currency\n"
    )
    sane = "OK-1,Curry Corner,Oranienstraße 12,52.5,13.41,Lena,Skalitzer Straße 3,52.49,13.43,Lena,Wurst,1,450,EUR\n"
    huge = "".join(
        f"BIG-1,Curry Corner,Oranienstraße 12,52.5,13.41,Lena,Skalitzer Straße 3,52.49,13.43,Lena,Bulk,100000,{10**12},EUR\n"
        for _ in range(93)
    )
    tenant = await platform.new_tenant()
    # When it is imported
    response = await platform.client.post(
        "/v1/orders/import",
        files={"file": ("orders.csv", io.BytesIO((header + sane + huge).encode()), "text/csv")},
        headers=tenant.headers,
    )
    # Then the sane order is stored and the other reported, not a 500
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["created"] == 1
    assert report["errors_total"] == 1


async def test_nul_characters_are_refused_in_bodies_paths_and_queries(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    # When NUL characters arrive in a body field, a path and a query
    in_body = await platform.client.post(
        "/v1/orders", json=order("N-1", notes="ring\u0000twice"), headers=tenant.headers
    )
    in_path = await platform.client.get("/v1/orders/%00", headers=tenant.headers)
    in_query = await platform.client.get("/v1/orders?q=%00", headers=tenant.headers)
    in_token = await platform.client.post("/v1/integrations/webhooks/doorstep/%00", content=b"{}")
    # Then each is a 422 problem (PostgreSQL could not store them; they are never meant)
    assert error_fields(assert_problem(in_body, 422, "validation-error")) == ["notes"]
    for response in (in_path, in_query, in_token):
        assert_problem(response, 422, "validation-error")


async def test_a_credential_longer_than_any_key_is_a_401(platform: RunningPlatform) -> None:
    # Given a bearer credential far longer than any Doorstep key
    headers = {"Authorization": "Bearer dsk_" + "a" * 600}
    # When it is used on every service's routes
    responses = [
        await platform.client.get("/v1/orders", headers=headers),
        await platform.client.get("/v1/integrations/connections", headers=headers),
        await platform.client.get("/v1/identity/tenant", headers=headers),
    ]
    # Then each answers 401, not 503 or 422
    for response in responses:
        assert_problem(response, 401, "unauthenticated")


async def test_times_out_of_range_and_without_offset_are_named_422s(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    # When it filters by times that cannot be converted to UTC, or that have no offset
    far = await platform.client.get(
        "/v1/orders", params={"created_from": "9999-12-31T23:59:59-23:59"}, headers=tenant.headers
    )
    naive = await platform.client.get(
        "/v1/orders", params={"created_to": "2026-11-21T12:00:00"}, headers=tenant.headers
    )
    # Then each names its parameter
    assert error_fields(assert_problem(far, 422, "invalid-input")) == ["created_from"]
    assert error_fields(assert_problem(naive, 422, "invalid-input")) == ["created_to"]


async def test_a_revoked_key_cannot_mint_a_new_one_even_while_other_services_cache_it(
    platform: RunningPlatform,
) -> None:
    # Given a key that other services have just cached, then revoked
    tenant = await platform.new_tenant()
    issued = await platform.client.post(
        "/v1/identity/api-keys", json={"name": "leaked"}, headers=tenant.headers
    )
    leaked = {"Authorization": f"Bearer {issued.json()['api_key']}"}
    assert (await platform.client.get("/v1/orders", headers=leaked)).status_code == 200
    revoked = await platform.client.delete(
        f"/v1/identity/api-keys/{issued.json()['id']}", headers=tenant.headers
    )
    assert revoked.status_code == 204
    # When its holder asks identity for a fresh key
    minted = await platform.client.post("/v1/identity/api-keys", json={"name": "mine now"}, headers=leaked)
    # Then identity, which owns the keys, refuses at once
    assert_problem(minted, 401, "unauthenticated")
    assert (
        json.loads((await platform.client.get("/v1/identity/tenant", headers=leaked)).text)["status"] == 401
    )
