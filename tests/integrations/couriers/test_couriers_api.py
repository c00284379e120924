"""Couriers on demand on the all-in-one platform, against a local server speaking DoorDash Drive and Uber Direct."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from tests.integrations.couriers.fake_couriers import (
    doordash_account,
    dumps,
    fake_couriers,
    uber_account,
    uber_signature,
)
from tests.platform import RunningPlatform, Tenant

from doorstep.integrations.adapters.tables import outbox

REQUEST: dict[str, Any] = {
    "pickup": {
        "name": "Curry Corner",
        "address": "Oranienstraße 12, 10999 Berlin",
        "phone": "+49 30 111",
        "location": {"lat": 52.5011, "lon": 13.4183},
    },
    "dropoff": {
        "name": "Lena Müller",
        "address": "Skalitzer Straße 80, 10997 Berlin",
        "phone": "+49 151 1234567",
        "location": {"lat": 52.4996, "lon": 13.4310},
        "instructions": "2nd floor",
    },
    "items": [{"name": "Currywurst", "quantity": 2, "unit_price": 450}],
    "order_value": 900,
    "currency": "EUR",
}


async def open_account(platform: RunningPlatform, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    response = await platform.client.post(
        "/v1/integrations/courier-accounts", json=body, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    opened: dict[str, Any] = response.json()
    return opened


async def courier_events(platform: RunningPlatform, courier_delivery_id: str) -> list[dict[str, Any]]:
    async with platform.services["integrations"].database.reader() as session:
        rows = (await session.execute(select(outbox.c.envelope).order_by(outbox.c.seq))).scalars().all()
    found = [json.loads(row) for row in rows]
    return [
        {"type": e["type"].split(".")[3], **{k: e["data"][k] for k in ("status",) if k in e["data"]}}
        for e in found
        if e["type"].startswith("doorstep.integrations.courier_delivery.")
        and e["data"]["courier_delivery_id"] == courier_delivery_id
    ]


async def test_uber_direct_quote_create_webhooks_out_of_order_and_redelivered(
    platform: RunningPlatform,
) -> None:
    async with fake_couriers() as fake:
        # Given a tenant with an Uber Direct account on the local server
        tenant = await platform.new_tenant()
        account = await open_account(platform, tenant, uber_account(fake.base_url))
        assert "credentials" not in account
        listed = await platform.client.get("/v1/integrations/courier-accounts", headers=tenant.headers)
        assert [a["id"] for a in listed.json()["items"]] == [account["id"]]
        assert "credentials" not in listed.json()["items"][0]

        # When it asks for a quote for an order, and creates the delivery from it (twice)
        quoted = await platform.client.post(
            f"/v1/integrations/courier-accounts/{account['id']}/quotes",
            json={"order_id": "order-1", "request": REQUEST},
            headers=tenant.headers,
        )
        assert quoted.status_code == 201, quoted.text
        quote = quoted.json()
        created = await platform.client.post(
            "/v1/integrations/courier-deliveries", json={"quote_id": quote["id"]}, headers=tenant.headers
        )
        again = await platform.client.post(
            "/v1/integrations/courier-deliveries", json={"quote_id": quote["id"]}, headers=tenant.headers
        )

        # Then the quote is Uber's, and one delivery exists for the order
        assert (quote["provider_quote_id"], quote["fee"], quote["currency"]) == (
            "dqt_6gQ2dt31TjiOPfwux",
            1250,
            "EUR",
        )
        assert created.status_code == 201, created.text
        delivery = created.json()
        assert again.json()["id"] == delivery["id"]
        assert (delivery["provider_delivery_id"], delivery["status"]) == ("del_0001", "requested")
        creates = [r for r in fake.requests if r[0] == "POST" and r[1].endswith("/deliveries")]
        assert len(creates) == 1
        assert creates[0][2]["quote_id"] == "dqt_6gQ2dt31TjiOPfwux"
        assert creates[0][2]["dropoff_notes"] == "2nd floor"
        assert fake.token_requests == 1

        # When Uber reports delivered, then (late) pickup, then delivered again
        url = account["webhook_url"].removeprefix("http://testserver")

        async def report(event_id: str, status: str, at: str, extra: dict[str, Any] | None = None) -> Any:
            body = dumps(
                {
                    "kind": "event.delivery_status",
                    "id": event_id,
                    "delivery_id": "del_0001",
                    "status": status,
                    "created": at,
                    "data": {"id": "del_0001", "status": status, **(extra or {})},
                }
            )
            response = await platform.client.post(
                url, content=body, headers={"X-Postmates-Signature": uber_signature(body)}
            )
            assert response.status_code == 202, response.text
            return response.json()

        delivered = await report(
            "evt_3",
            "delivered",
            "2026-11-21T18:31:00Z",
            {
                "courier": {"name": "Mia", "phone_number": "+49 30 9"},
                "dropoff": {"verification": {"signature": {"image_url": "https://uber.example/sig.png"}}},
            },
        )
        late = await report("evt_1", "pickup", "2026-11-21T18:05:00Z")
        repeated = await report("evt_3", "delivered", "2026-11-21T18:31:00Z")
        forged = await platform.client.post(url, content=b"{}", headers={"X-Postmates-Signature": "00"})

        # Then only the news is applied, once, and the forged one is refused
        assert [delivered, late, repeated] == [
            {"outcome": "applied", "duplicate": False},
            {"outcome": "ignored", "duplicate": False},
            {"outcome": "applied", "duplicate": True},
        ]
        assert forged.status_code == 401
        stored = await platform.client.get(
            f"/v1/integrations/courier-deliveries/{delivery['id']}", headers=tenant.headers
        )
        body = stored.json()
        assert (body["status"], body["provider_status"], body["courier"]["name"]) == (
            "delivered",
            "delivered",
            "Mia",
        )
        assert body["proof_of_delivery"] == ["https://uber.example/sig.png"]
        assert await courier_events(platform, delivery["id"]) == [
            {"type": "created", "status": "requested"},
            {"type": "status_changed", "status": "delivered"},
        ]


async def test_doordash_direct_delivery_status_and_cancel(platform: RunningPlatform) -> None:
    async with fake_couriers() as fake:
        # Given a DoorDash Drive account and a delivery created directly (no quote)
        tenant = await platform.new_tenant()
        account = await open_account(platform, tenant, doordash_account(fake.base_url))
        assert account["webhook_secret"].startswith("Bearer dd_")
        created = await platform.client.post(
            "/v1/integrations/courier-deliveries",
            json={"account_id": account["id"], "order_id": "order-2", "request": {**REQUEST, "tip": 150}},
            headers=tenant.headers,
        )
        assert created.status_code == 201, created.text
        delivery = created.json()
        [(_, _, sent)] = [r for r in fake.requests if r[1] == "/drive/v2/deliveries"]
        assert (sent["external_delivery_id"], sent["order_value"], sent["tip"]) == (delivery["id"], 900, 150)
        assert sent["dropoff_location"] == {"lat": 52.4996, "lng": 13.431}

        # When DoorDash reports the dasher confirmed, with the configured Authorization
        url = account["webhook_url"].removeprefix("http://testserver")
        event = dumps(
            {
                "event_name": "DASHER_CONFIRMED",
                "created_at": "2026-11-21T18:02:00Z",
                "external_delivery_id": delivery["id"],
                "dasher_name": "Sam",
                "dasher_location": {"lat": 52.5, "lng": 13.42},
            }
        )
        confirmed = await platform.client.post(
            url, content=event, headers={"Authorization": account["webhook_secret"]}
        )
        wrong = await platform.client.post(url, content=event, headers={"Authorization": "Bearer nope"})
        # And the dispatcher cancels it, twice
        cancelled = await platform.client.post(
            f"/v1/integrations/courier-deliveries/{delivery['id']}/cancel", headers=tenant.headers
        )
        twice = await platform.client.post(
            f"/v1/integrations/courier-deliveries/{delivery['id']}/cancel", headers=tenant.headers
        )

        # Then the status moved to assigned, then cancelled, once each, and DoorDash was told once
        assert (confirmed.status_code, confirmed.json()["outcome"], wrong.status_code) == (
            202,
            "applied",
            401,
        )
        assert (cancelled.status_code, cancelled.json()["status"], twice.json()["status"]) == (
            200,
            "cancelled",
            "cancelled",
        )
        assert [r[0] for r in fake.requests if r[1].endswith("/cancel")] == ["PUT"]
        assert await courier_events(platform, delivery["id"]) == [
            {"type": "created", "status": "requested"},
            {"type": "status_changed", "status": "assigned"},
            {"type": "status_changed", "status": "cancelled"},
        ]


async def test_network_errors_are_clear_problems_and_other_tenants_see_nothing(
    platform: RunningPlatform,
) -> None:
    async with fake_couriers() as fake:
        # Given a tenant with a DoorDash account, and another tenant
        tenant, other = await platform.new_tenant("A"), await platform.new_tenant("B")
        account = await open_account(platform, tenant, doordash_account(fake.base_url))
        quotes = f"/v1/integrations/courier-accounts/{account['id']}/quotes"
        body = {"order_id": "order-3", "request": REQUEST}

        # When DoorDash refuses the address, then fails with a 503
        fake.fail_next = [
            (400, {"code": "validation_error", "message": "dropoff_address is outside the area"}),
            (503, {"code": "unavailable", "message": "try later"}),
        ]
        refused = await platform.client.post(quotes, json=body, headers=tenant.headers)
        failed = await platform.client.post(quotes, json=body, headers=tenant.headers)
        # And the other tenant asks for a quote on this account, and bad credentials are given
        foreign = await platform.client.post(quotes, json=body, headers=other.headers)
        bad = await platform.client.post(
            "/v1/integrations/courier-accounts",
            json={**doordash_account(fake.base_url), "credentials": {"developer_id": "d", "key_id": "k"}},
            headers=tenant.headers,
        )

        # Then each is a problem naming what went wrong, never a 500
        assert (refused.status_code, refused.json()["type"]) == (
            422,
            "https://doorstep.dev/problems/courier-request-rejected",
        )
        assert "outside the area" in refused.json()["detail"]
        assert (failed.status_code, failed.json()["type"]) == (
            502,
            "https://doorstep.dev/problems/courier-network-failed",
        )
        assert foreign.status_code == 404
        assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "credentials.signing_secret")


async def test_courier_positions_are_kept_when_later_and_never_published(platform: RunningPlatform) -> None:
    async with fake_couriers() as fake:
        # Given an Uber Direct delivery whose courier was assigned at 18:05
        tenant = await platform.new_tenant()
        account = await open_account(platform, tenant, uber_account(fake.base_url))
        created = await platform.client.post(
            "/v1/integrations/courier-deliveries",
            json={"account_id": account["id"], "order_id": "order-4", "request": REQUEST},
            headers=tenant.headers,
        )
        delivery = created.json()
        provider_id = delivery["provider_delivery_id"]
        url = account["webhook_url"].removeprefix("http://testserver")

        async def send(kind: str, event_id: str, status: str, at: str, lat: float | None = None) -> str:
            payload: dict[str, Any] = {
                "kind": kind,
                "id": event_id,
                "delivery_id": provider_id,
                "status": status,
                "created": at,
                "data": {"id": provider_id, "status": status, "courier": {"name": "Cori R."}},
            }
            if lat is not None:
                payload["location"] = {"lat": lat, "lng": 13.42}
            body = dumps(payload)
            response = await platform.client.post(
                url, content=body, headers={"X-Postmates-Signature": uber_signature(body)}
            )
            assert response.status_code == 202, response.text
            outcome: str = response.json()["outcome"]
            return outcome

        async def courier() -> tuple[Any, Any]:
            found = await platform.client.get(
                f"/v1/integrations/courier-deliveries/{delivery['id']}", headers=tenant.headers
            )
            body = found.json()
            return body["courier"], body["courier_location_at"]

        assert await send("event.delivery_status", "evt_1", "pickup", "2026-11-21T18:05:00Z") == "applied"
        assert await courier() == ({"name": "Cori R.", "phone": None, "location": None}, None)

        # When Uber reports the courier's position every 20 seconds, one of them late, one twice
        outcomes = [
            await send("event.courier_update", "evt_2", "pickup", "2026-11-21T18:05:20Z", 52.501),
            await send("event.courier_update", "evt_4", "pickup", "2026-11-21T18:06:00Z", 52.503),
            await send("event.courier_update", "evt_3", "pickup", "2026-11-21T18:05:40Z", 52.502),
            await send("event.courier_update", "evt_4", "pickup", "2026-11-21T18:06:00Z", 52.503),
        ]

        # Then the later positions are kept, the late one changes nothing, and the delivery shows the latest
        assert outcomes == ["location_updated", "location_updated", "ignored", "location_updated"]
        assert await courier() == (
            {"name": "Cori R.", "phone": None, "location": {"lat": 52.503, "lon": 13.42}},
            "2026-11-21T18:06:00Z",
        )

        # When the pickup is reported (late, without a position), then delivery, then a position after it
        picked_up = await send("event.delivery_status", "evt_5", "pickup_complete", "2026-11-21T18:05:50Z")
        delivered = await send("event.delivery_status", "evt_6", "delivered", "2026-11-21T18:30:00Z", 52.499)
        after = await send("event.courier_update", "evt_7", "delivered", "2026-11-21T18:30:20Z", 52.6)

        # Then the statuses move on, the drop-off position is kept, the one after the delivery is not
        assert (picked_up, delivered, after) == ("applied", "applied", "ignored")
        assert await courier() == (
            {"name": "Cori R.", "phone": None, "location": {"lat": 52.499, "lon": 13.42}},
            "2026-11-21T18:30:00Z",
        )
        # And only the status changes were published: positions do not go through the outbox
        assert await courier_events(platform, delivery["id"]) == [
            {"type": "created", "status": "requested"},
            {"type": "status_changed", "status": "assigned"},
            {"type": "status_changed", "status": "picked_up"},
            {"type": "status_changed", "status": "delivered"},
        ]


async def test_doordash_dasher_positions_on_the_way_are_kept(platform: RunningPlatform) -> None:
    async with fake_couriers() as fake:
        # Given a DoorDash delivery whose Dasher confirmed at 18:02, at a first position
        tenant = await platform.new_tenant()
        account = await open_account(platform, tenant, doordash_account(fake.base_url))
        created = await platform.client.post(
            "/v1/integrations/courier-deliveries",
            json={"account_id": account["id"], "order_id": "order-5", "request": REQUEST},
            headers=tenant.headers,
        )
        delivery = created.json()
        url = account["webhook_url"].removeprefix("http://testserver")

        async def dasher(event_name: str, at: str, lat: float) -> str:
            event = dumps(
                {
                    "event_name": event_name,
                    "created_at": at,
                    "external_delivery_id": delivery["id"],
                    "dasher_name": "Sam",
                    "dasher_location": {"lat": lat, "lng": 13.42},
                }
            )
            response = await platform.client.post(
                url, content=event, headers={"Authorization": account["webhook_secret"]}
            )
            assert response.status_code == 202, response.text
            outcome: str = response.json()["outcome"]
            return outcome

        confirmed = await dasher("DASHER_CONFIRMED", "2026-11-21T18:02:00Z", 52.50)

        # When the Dasher's way to the pickup is reported with a later position
        on_the_way = await dasher("DASHER_ENROUTE_TO_PICKUP", "2026-11-21T18:04:00Z", 52.51)

        # Then the status stays assigned, and the position is the later one
        found = await platform.client.get(
            f"/v1/integrations/courier-deliveries/{delivery['id']}", headers=tenant.headers
        )
        body = found.json()
        assert (confirmed, on_the_way) == ("applied", "location_updated")
        assert (body["status"], body["provider_status"]) == ("assigned", "DASHER_CONFIRMED")
        assert (body["courier"]["location"], body["courier_location_at"]) == (
            {"lat": 52.51, "lon": 13.42},
            "2026-11-21T18:04:00Z",
        )
