"""The delivery API on the all-in-one platform: rate card, quote, accept (the order follows by event),
status as the order moves, cancel; idempotent accepts, expired quotes, other tenants; on PostgreSQL too."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from tests.identity.integration.test_users import assert_problem, signed_in
from tests.orders.integration.test_orders_api import move
from tests.platform import RunningPlatform, Tenant, running_platform, scratch_postgres_database, settings_for

from doorstep.integrations.deliveries.tables import delivery_quotes
from doorstep.kernel.permissions import Role

RATE_CARD: dict[str, Any] = {
    "currency": "EUR",
    "base_fee": 300,
    "per_km": 100,
    "per_minute": 20,
    "minimum_fee": 500,
    "time_zone": "Europe/Berlin",
}
PICKUP = {
    "name": "Curry Corner",
    "address": "Oranienstraße 12, 10999 Berlin",
    "location": {"lat": 52.0, "lon": 13.0},
}
DROPOFF = {
    "name": "Lena Müller",
    "address": "Skalitzer Straße 80, 10997 Berlin",
    "phone": "+49 151 1234567",
    "location": {"lat": 52.01, "lon": 13.0},
}


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


def quote_request(external_delivery_id: str = "P-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_delivery_id": external_delivery_id,
        "pickup": copy.deepcopy(PICKUP),
        "dropoff": copy.deepcopy(DROPOFF),
        "size": "small",
    }
    body.update(overrides)
    return body


async def with_rate_card(platform: RunningPlatform, headers: dict[str, str], **overrides: Any) -> None:
    response = await platform.client.put(
        "/v1/deliveries/rate-card", json={**RATE_CARD, **overrides}, headers=headers
    )
    assert response.status_code == 200, response.text


async def quoted(platform: RunningPlatform, tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = await platform.client.post(
        "/v1/deliveries/quotes", json=quote_request(**body), headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    quote: dict[str, Any] = response.json()
    return quote


async def accepted(
    platform: RunningPlatform, tenant: Tenant, quote_id: str, status: int = 201
) -> dict[str, Any]:
    response = await platform.client.post(f"/v1/deliveries/quotes/{quote_id}/accept", headers=tenant.headers)
    assert response.status_code == status, response.text
    delivery: dict[str, Any] = response.json()
    return delivery


async def delivery_of(platform: RunningPlatform, tenant: Tenant, delivery_id: str) -> dict[str, Any]:
    response = await platform.client.get(f"/v1/deliveries/{delivery_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    delivery: dict[str, Any] = response.json()
    return delivery


async def test_rate_card_quote_accept_follow_and_cancel(platform: RunningPlatform) -> None:
    # Given a tenant whose admin set a rate card
    tenant = await platform.new_tenant()
    await with_rate_card(platform, tenant.headers)

    # When a partner quotes a 1.1 km trip and accepts it
    quote = await quoted(platform, tenant)
    delivery = await accepted(platform, tenant, quote["id"])

    # Then the quote is priced from the card with 25 km/h, road factor 1.3 and 5 minutes handling
    assert (quote["distance_m"], quote["duration_s"], quote["currency"], quote["fee"]) == (
        1446,
        508,
        "EUR",
        614,
    )
    assert [(line["kind"], line["amount"]) for line in quote["fee_lines"]] == [
        ("base", 300),
        ("distance", 145),
        ("time", 169),
    ]
    created_at = datetime.fromisoformat(quote["created_at"])
    assert datetime.fromisoformat(quote["expires_at"]) - created_at == timedelta(minutes=15)
    # And the delivery is requested until the orders service has created the order
    assert (delivery["status"], delivery["order_id"], delivery["fee"]) == ("requested", None, 614)

    # When the events have been handled
    await platform.settle()

    # Then the order exists, from the delivery API, with the quote's fee, and the delivery shows it placed
    following = await delivery_of(platform, tenant, delivery["id"])
    order_id = following["order_id"]
    assert following["status"] == "placed"
    order = (await platform.client.get(f"/v1/orders/{order_id}", headers=tenant.headers)).json()
    assert (order["source"], order["external_id"], order["delivery_fee"], order["currency"]) == (
        "delivery_api",
        "P-1",
        614,
        "EUR",
    )
    assert (order["customer"]["name"], order["dropoff"]["address"]) == ("Lena Müller", DROPOFF["address"])

    # When the order moves along, then the delivery is cancelled before pick-up
    assert (await move(platform, tenant, order_id, "accepted")).status_code == 200
    await platform.settle()
    assert (await delivery_of(platform, tenant, delivery["id"]))["status"] == "accepted"
    assert (await move(platform, tenant, order_id, "ready_for_pickup")).status_code == 200
    await platform.settle()
    assert (await delivery_of(platform, tenant, delivery["id"]))["status"] == "ready_for_pickup"
    cancelled = await platform.client.post(f"/v1/deliveries/{delivery['id']}/cancel", headers=tenant.headers)
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["cancellation_requested_at"] is not None
    await platform.settle()

    # Then the order is cancelled by the orders service, and the delivery says so
    order = (await platform.client.get(f"/v1/orders/{order_id}", headers=tenant.headers)).json()
    assert order["status"] == "cancelled"
    assert (await delivery_of(platform, tenant, delivery["id"]))["status"] == "cancelled"
    # And cancelling again answers the delivery as it is
    again = await platform.client.post(f"/v1/deliveries/{delivery['id']}/cancel", headers=tenant.headers)
    assert (again.status_code, again.json()["status"]) == (202, "cancelled")


async def test_a_picked_up_delivery_cannot_be_cancelled(platform: RunningPlatform) -> None:
    # Given a delivery whose order was picked up
    tenant = await platform.new_tenant()
    await with_rate_card(platform, tenant.headers)
    delivery = await accepted(platform, tenant, (await quoted(platform, tenant))["id"])
    await platform.settle()
    order_id = (await delivery_of(platform, tenant, delivery["id"]))["order_id"]
    for status in ("accepted", "ready_for_pickup", "picked_up"):
        assert (await move(platform, tenant, order_id, status)).status_code == 200
    await platform.settle()

    # When the partner cancels it
    response = await platform.client.post(f"/v1/deliveries/{delivery['id']}/cancel", headers=tenant.headers)

    # Then it is refused, and the order stays picked up
    assert_problem(response, 409, "delivery-not-cancellable")
    assert response.json()["delivery_status"] == "picked_up"
    order = (await platform.client.get(f"/v1/orders/{order_id}", headers=tenant.headers)).json()
    assert order["status"] == "picked_up"


async def test_accepting_is_idempotent_by_external_delivery_id(platform: RunningPlatform) -> None:
    # Given an accepted quote
    tenant = await platform.new_tenant()
    await with_rate_card(platform, tenant.headers)
    first_quote = await quoted(platform, tenant, external_delivery_id="P-7")
    first = await accepted(platform, tenant, first_quote["id"])

    # When the same quote is accepted again, and another quote for the same external id is accepted
    again = await accepted(platform, tenant, first_quote["id"], status=200)
    other_quote = await quoted(platform, tenant, external_delivery_id="P-7")
    other = await platform.client.post(
        f"/v1/deliveries/quotes/{other_quote['id']}/accept", headers=tenant.headers
    )
    await platform.settle()

    # Then the repeat answers the same delivery, the other quote is a conflict, and there is one order
    assert again["id"] == first["id"]
    assert_problem(other, 409, "delivery-already-exists")
    orders = (await platform.client.get("/v1/orders", headers=tenant.headers)).json()["items"]
    assert [(o["source"], o["external_id"]) for o in orders] == [("delivery_api", "P-7")]


async def test_an_expired_quote_cannot_be_accepted(platform: RunningPlatform) -> None:
    # Given a quote made 16 minutes ago
    tenant = await platform.new_tenant()
    await with_rate_card(platform, tenant.headers)
    quote = await quoted(platform, tenant)
    async with platform.services["integrations"].database.writer_engine.begin() as connection:
        ago = datetime.now(UTC) - timedelta(minutes=16)
        await connection.execute(
            update(delivery_quotes)
            .where(delivery_quotes.c.id == quote["id"])
            .values(created_at=ago, expires_at=ago + timedelta(minutes=15))
        )

    # When it is accepted
    response = await platform.client.post(
        f"/v1/deliveries/quotes/{quote['id']}/accept", headers=tenant.headers
    )
    await platform.settle()

    # Then it is gone, and no order was made
    assert_problem(response, 410, "quote-expired")
    assert (await platform.client.get("/v1/orders", headers=tenant.headers)).json()["items"] == []


async def test_bad_requests_are_refused_naming_the_field(platform: RunningPlatform) -> None:
    # Given a tenant without a rate card
    tenant = await platform.new_tenant()

    # When it quotes, then it is told to set a rate card
    assert_problem(
        await platform.client.post("/v1/deliveries/quotes", json=quote_request(), headers=tenant.headers),
        409,
        "no-rate-card",
    )
    assert_problem(
        await platform.client.get("/v1/deliveries/rate-card", headers=tenant.headers),
        404,
        "rate-card-not-found",
    )

    # When it has one and asks for a drop-off before the pickup, or gives an address no geocoder knows
    await with_rate_card(platform, tenant.headers)
    start = datetime.now(UTC) + timedelta(hours=2)
    backwards = await platform.client.post(
        "/v1/deliveries/quotes",
        json=quote_request(
            pickup_time=start.isoformat(), dropoff_time=(start - timedelta(hours=1)).isoformat()
        ),
        headers=tenant.headers,
    )
    unlocated = await platform.client.post(
        "/v1/deliveries/quotes",
        json=quote_request(
            dropoff={
                **{k: v for k, v in DROPOFF.items() if k != "location"},
                "address": "Nirgendwo 1, Berlin",
            }
        ),
        headers=tenant.headers,
    )
    bad_card = await platform.client.put(
        "/v1/deliveries/rate-card", json={**RATE_CARD, "time_zone": "Berlin"}, headers=tenant.headers
    )

    # Then each is a 422 naming its field
    assert assert_problem(backwards, 422, "invalid-delivery-request")["errors"][0]["field"] == "dropoff_time"
    assert assert_problem(unlocated, 422, "address-not-geocoded")["errors"][0]["field"] == "dropoff.address"
    assert assert_problem(bad_card, 422, "validation-error")["errors"][0]["field"] == "time_zone"


async def test_the_rate_card_needs_pricing_manage_and_changes_are_audited(platform: RunningPlatform) -> None:
    # Given a tenant, a fulfilment admin and a dispatcher
    tenant = await platform.new_tenant()
    _, fulfilment = await signed_in(platform, tenant, "fa@a.test", [Role.FULFILMENT_ADMIN.value])
    _, dispatcher = await signed_in(platform, tenant, "d@a.test", [Role.DISPATCHER.value])

    # When each sets the rate card
    by_fulfilment = await platform.client.put("/v1/deliveries/rate-card", json=RATE_CARD, headers=fulfilment)
    by_dispatcher = await platform.client.put("/v1/deliveries/rate-card", json=RATE_CARD, headers=dispatcher)
    await platform.settle()

    # Then the fulfilment admin may, the dispatcher may not
    assert by_fulfilment.status_code == 200, by_fulfilment.text
    assert_problem(by_dispatcher, 403, "forbidden")
    read = await platform.client.get("/v1/deliveries/rate-card", headers=fulfilment)
    assert (read.status_code, read.json()["base_fee"], read.json()["sizes"]["xl"]) == (
        200,
        300,
        {"multiplier": 1.0, "surcharge": 0},
    )
    # And the change is in the audit log
    audit = await platform.client.get(
        "/v1/identity/audit", params={"object_type": "delivery_rate_card"}, headers=tenant.headers
    )
    assert [(e["action"], e["after"]["base_fee"]) for e in audit.json()["items"]] == [
        ("delivery_rate_card.changed", 300)
    ]


async def test_another_tenants_quotes_and_deliveries_do_not_exist(platform: RunningPlatform) -> None:
    # Given tenant A's quote and delivery
    tenant_a, tenant_b = await platform.new_tenant("A"), await platform.new_tenant("B")
    await with_rate_card(platform, tenant_a.headers)
    await with_rate_card(platform, tenant_b.headers)
    quote = await quoted(platform, tenant_a)
    spare = await quoted(platform, tenant_a, external_delivery_id="P-2")
    delivery = await accepted(platform, tenant_a, quote["id"])

    # When tenant B reads, accepts and cancels them
    answers = [
        await platform.client.get(f"/v1/deliveries/{delivery['id']}", headers=tenant_b.headers),
        await platform.client.post(f"/v1/deliveries/{delivery['id']}/cancel", headers=tenant_b.headers),
        await platform.client.get(f"/v1/deliveries/quotes/{quote['id']}", headers=tenant_b.headers),
        await platform.client.post(f"/v1/deliveries/quotes/{spare['id']}/accept", headers=tenant_b.headers),
    ]

    # Then each is a 404, and A's delivery is not cancelled, its spare quote not accepted
    assert [response.status_code for response in answers] == [404, 404, 404, 404]
    assert (await delivery_of(platform, tenant_a, delivery["id"]))["cancellation_requested_at"] is None
    assert (await accepted(platform, tenant_a, spare["id"]))["external_delivery_id"] == "P-2"


@ON_POSTGRES
async def test_the_flow_on_postgresql(platform: RunningPlatform) -> None:
    # Given a tenant with a rate card on PostgreSQL
    tenant = await platform.new_tenant()
    await with_rate_card(platform, tenant.headers)

    # When a quote is accepted twice and the events are handled
    quote = await quoted(platform, tenant)
    delivery = await accepted(platform, tenant, quote["id"])
    assert (await accepted(platform, tenant, quote["id"], status=200))["id"] == delivery["id"]
    await platform.settle()

    # Then the delivery shows its placed order, and a cancellation cancels it
    following = await delivery_of(platform, tenant, delivery["id"])
    assert following["status"] == "placed"
    cancelled = await platform.client.post(f"/v1/deliveries/{delivery['id']}/cancel", headers=tenant.headers)
    assert cancelled.status_code == 202, cancelled.text
    await platform.settle()
    order = (await platform.client.get(f"/v1/orders/{following['order_id']}", headers=tenant.headers)).json()
    assert (order["status"], order["delivery_fee"]) == ("cancelled", 614)
    assert (await delivery_of(platform, tenant, delivery["id"]))["status"] == "cancelled"
