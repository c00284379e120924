"""Orders without coordinates on the all-in-one platform, with its offline geocoder: nothing is dropped."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from tests.identity.integration.test_users import signed_in
from tests.orders.integration.test_orders_api import assert_problem, order, place
from tests.platform import RunningPlatform

from doorstep.orders.adapters.tables import outbox

KNOWN = "Skalitzer Straße 3, 10997 Berlin"  # the offline gazetteer puts it at 52.4983, 13.4274
UNKNOWN = "Unbekannte Gasse 7, 10115 Berlin"


def without_coordinates(external_id: str, dropoff_address: str) -> dict[str, Any]:
    body = order(external_id)
    body["dropoff"] = {"name": "Lena", "address": dropoff_address}
    return body


async def status_changes(platform: RunningPlatform, order_id: str) -> list[tuple[str, str]]:
    async with platform.services["orders"].database.reader() as session:
        envelopes = (
            await session.execute(
                select(outbox.c.envelope).where(outbox.c.type == "doorstep.orders.order.status_changed.v1")
            )
        ).scalars()
        data = [json.loads(envelope)["data"] for envelope in envelopes]
    return [(item["from_status"], item["to_status"]) for item in data if item["order_id"] == order_id]


async def test_an_address_the_geocoder_knows_is_placed_with_its_coordinates(
    platform: RunningPlatform,
) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When an order arrives with a known dropoff address and no coordinates
    placed = await place(platform, tenant, without_coordinates("G-1", KNOWN))

    # Then it is placed with the gazetteer's coordinates
    assert placed["status"] == "placed"
    assert placed["dropoff"] == {
        "name": "Lena",
        "address": KNOWN,
        "phone": None,
        "location": {"lat": 52.4983, "lon": 13.4274},
        "window": None,
    }
    assert placed["status_history"][0]["reason"] is None


async def test_an_order_that_cannot_be_geocoded_waits_for_a_dispatcher_and_is_never_dropped(
    platform: RunningPlatform,
) -> None:
    # Given a tenant with a dispatcher
    tenant = await platform.new_tenant()
    _, dispatcher = await signed_in(platform, tenant, "dispatch@a.test", ["dispatcher"])

    # When an order arrives whose dropoff address no geocoder knows, beside a normal one
    waiting = await place(platform, tenant, without_coordinates("G-2", UNKNOWN))
    normal = await place(platform, tenant, order("G-3"))

    # Then it is stored in needs_attention with the reason, and only placed, rejected or cancelled may follow
    assert waiting["status"] == "needs_attention"
    assert waiting["dropoff"]["location"] is None
    assert waiting["allowed_statuses"] == ["placed", "rejected", "cancelled"]
    assert [(change["status"], change["reason"]) for change in waiting["status_history"]] == [
        (
            "needs_attention",
            "no coordinates for the dropoff address; set them with PATCH or retry geocoding",
        )
    ]

    # And the dispatcher finds exactly it among the orders that need attention
    listed = await platform.client.get("/v1/orders", params={"status": "needs_attention"}, headers=dispatcher)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [waiting["id"]]

    # When the dispatcher retries geocoding, and moves it to placed by hand
    retried = await platform.client.post(f"/v1/orders/{waiting['id']}/geocode", headers=dispatcher)
    moved = await platform.client.post(
        f"/v1/orders/{waiting['id']}/status", json={"status": "placed"}, headers=dispatcher
    )

    # Then both are refused, naming what is missing
    problem = assert_problem(retried, 422, "address-not-geocoded")
    assert problem["errors"] == [
        {"field": "dropoff.address", "in": "body", "message": "no coordinates found"}
    ]
    assert assert_problem(moved, 409, "order-not-located")["missing_locations"] == ["dropoff.location"]

    # When the dispatcher sets the dropoff's coordinates
    patched = await platform.client.patch(
        f"/v1/orders/{waiting['id']}",
        json={"dropoff": {"name": "Lena", "address": UNKNOWN, "location": {"lat": 52.53, "lon": 13.38}}},
        headers=dispatcher,
    )

    # Then the order is placed, the history and the events say so, and nothing waits any more
    assert patched.status_code == 200, patched.text
    detail = patched.json()
    assert detail["status"] == "placed"
    assert detail["dropoff"]["location"] == {"lat": 52.53, "lon": 13.38}
    assert [(change["from_status"], change["status"]) for change in detail["status_history"]] == [
        (None, "needs_attention"),
        ("needs_attention", "placed"),
    ]
    assert detail["status_history"][1]["reason"] == "both stops have coordinates"
    assert await status_changes(platform, waiting["id"]) == [("needs_attention", "placed")]
    listed = await platform.client.get("/v1/orders", params={"status": "needs_attention"}, headers=dispatcher)
    assert listed.json()["items"] == []
    everything = await platform.client.get("/v1/orders", headers=tenant.headers)
    assert sorted(item["id"] for item in everything.json()["items"]) == sorted([waiting["id"], normal["id"]])


async def test_a_csv_import_without_coordinates_is_geocoded_or_kept_waiting(
    platform: RunningPlatform,
) -> None:
    # Given a CSV without coordinate columns: one known address, one unknown
    tenant = await platform.new_tenant()
    csv = (
        "external_id,pickup_name,pickup_address,dropoff_name,dropoff_address,customer_name,"
        "item_name,quantity,unit_price,currency\n"
        f'C-1,Curry Corner,"Oranienstraße 12, 10999 Berlin",Lena,"{KNOWN}",Lena,Currywurst,1,450,EUR\n'
        f'C-2,Curry Corner,"Oranienstraße 12, 10999 Berlin",Jonas,"{UNKNOWN}",Jonas,Pommes,1,300,EUR\n'
    )

    # When it is imported
    response = await platform.client.post(
        "/v1/orders/import", files={"file": ("orders.csv", csv.encode(), "text/csv")}, headers=tenant.headers
    )

    # Then both orders are stored: one placed with coordinates, one waiting
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 2, "duplicates": 0, "errors": [], "errors_total": 0}
    listed = await platform.client.get("/v1/orders", headers=tenant.headers)
    found = {
        item["external_id"]: (item["status"], item["pickup"]["location"], item["dropoff"]["location"])
        for item in listed.json()["items"]
    }
    assert found == {
        "C-1": ("placed", {"lat": 52.5011, "lon": 13.4183}, {"lat": 52.4983, "lon": 13.4274}),
        "C-2": ("needs_attention", {"lat": 52.5011, "lon": 13.4183}, None),
    }


async def test_a_placed_order_refuses_a_new_address_nobody_can_locate(platform: RunningPlatform) -> None:
    # Given a placed order
    tenant = await platform.new_tenant()
    placed = await place(platform, tenant, order("G-4"))

    # When its dropoff is changed to an unknown address without coordinates
    response = await platform.client.patch(
        f"/v1/orders/{placed['id']}",
        json={"dropoff": {"name": "Lena", "address": UNKNOWN}},
        headers=tenant.headers,
    )

    # Then it is a 422 naming dropoff.location, and the order keeps its dropoff
    problem = assert_problem(response, 422, "stop-without-location")
    assert [error["field"] for error in problem["errors"]] == ["dropoff.location"]
    current = await platform.client.get(f"/v1/orders/{placed['id']}", headers=tenant.headers)
    assert current.json()["dropoff"] == placed["dropoff"]
