"""Quotes for stops given by address only: geocoded before pricing, the order carries the coordinates;
an address no geocoder knows is a 422 naming it, a geocoder that does not answer a 503 to retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.identity.integration.test_users import assert_problem
from tests.integrations.deliveries.test_delivery_api import accepted, delivery_of, with_rate_card
from tests.orders.unit.test_geocoders import nominatim
from tests.platform import RunningPlatform, running_platform, settings_for

# The offline gazetteer knows both: the first exactly (a demo merchant), the second by its street.
PICKUP = {"name": "Curry Corner", "address": "Oranienstraße 12, 10999 Berlin"}
DROPOFF = {"name": "Lena Müller", "address": "Skalitzer Straße 3, 10997 Berlin", "phone": "+49 151 1234567"}
UNKNOWN = "Unbekannte Gasse 7, 10115 Berlin"


def by_address(pickup: dict[str, Any] = PICKUP, dropoff: dict[str, Any] = DROPOFF) -> dict[str, Any]:
    return {"external_delivery_id": "G-1", "pickup": pickup, "dropoff": dropoff, "size": "small"}


async def test_a_quote_by_addresses_is_priced_from_the_geocoded_points_and_its_order_has_them(
    platform: RunningPlatform,
) -> None:
    # Given a tenant with a rate card, on the platform's offline geocoder
    tenant = await platform.new_tenant()
    await with_rate_card(platform, tenant.headers)

    # When a partner quotes a trip between two Berlin addresses without coordinates, and accepts it
    response = await platform.client.post("/v1/deliveries/quotes", json=by_address(), headers=tenant.headers)
    assert response.status_code == 201, response.text
    quote = response.json()
    delivery = await accepted(platform, tenant, quote["id"])
    await platform.settle()

    # Then the stops carry the gazetteer's points, 0.69 km apart as the crow flies (x1.3 by road)
    assert (quote["pickup"]["location"], quote["dropoff"]["location"]) == (
        {"lat": 52.5011, "lon": 13.4183},
        {"lat": 52.4983, "lon": 13.4274},
    )
    assert (quote["distance_m"], quote["duration_s"], quote["fee"]) == (897, 429, 533)
    assert [(line["kind"], line["amount"]) for line in quote["fee_lines"]] == [
        ("base", 300),
        ("distance", 90),
        ("time", 143),
    ]
    # And the order the orders service placed has the same coordinates: it geocoded nothing itself
    following = await delivery_of(platform, tenant, delivery["id"])
    assert following["status"] == "placed"
    order = (await platform.client.get(f"/v1/orders/{following['order_id']}", headers=tenant.headers)).json()
    assert (order["pickup"]["location"], order["dropoff"]["location"]) == (
        {"lat": 52.5011, "lon": 13.4183},
        {"lat": 52.4983, "lon": 13.4274},
    )


async def test_an_address_the_geocoder_does_not_know_is_a_422_naming_it(platform: RunningPlatform) -> None:
    # Given a tenant with a rate card
    tenant = await platform.new_tenant()
    await with_rate_card(platform, tenant.headers)

    # When the drop-off address is unknown, and then both are
    one = await platform.client.post(
        "/v1/deliveries/quotes",
        json=by_address(dropoff={**DROPOFF, "address": UNKNOWN}),
        headers=tenant.headers,
    )
    both = await platform.client.post(
        "/v1/deliveries/quotes",
        json=by_address({**PICKUP, "address": UNKNOWN}, {**DROPOFF, "address": UNKNOWN}),
        headers=tenant.headers,
    )
    # And an unknown address beside its own coordinates is not looked up at all
    located = await platform.client.post(
        "/v1/deliveries/quotes",
        json=by_address(
            dropoff={**DROPOFF, "address": UNKNOWN, "location": {"lat": 52.4983, "lon": 13.4274}}
        ),
        headers=tenant.headers,
    )

    # Then the first two are 422 problems naming each address not found; the third is quoted
    assert [e["field"] for e in assert_problem(one, 422, "address-not-geocoded")["errors"]] == [
        "dropoff.address"
    ]
    assert [e["field"] for e in assert_problem(both, 422, "address-not-geocoded")["errors"]] == [
        "pickup.address",
        "dropoff.address",
    ]
    assert (located.status_code, located.json()["distance_m"]) == (201, 897)


async def test_a_geocoder_that_does_not_answer_is_a_503_to_retry(tmp_path: Path) -> None:
    async with nominatim() as server:
        # Given a platform whose Nominatim is overloaded, and a tenant with a rate card
        server.status = 503
        settings = settings_for(tmp_path, geocoder="nominatim", geocoder_url=server.base_url)
        async with running_platform(settings) as platform:
            tenant = await platform.new_tenant()
            await with_rate_card(platform, tenant.headers)

            # When a partner quotes by address, and then with coordinates
            by_street = await platform.client.post(
                "/v1/deliveries/quotes", json=by_address(), headers=tenant.headers
            )
            with_points = await platform.client.post(
                "/v1/deliveries/quotes",
                json=by_address(
                    {**PICKUP, "location": {"lat": 52.5011, "lon": 13.4183}},
                    {**DROPOFF, "location": {"lat": 52.4983, "lon": 13.4274}},
                ),
                headers=tenant.headers,
            )

    # Then the first is a 503 to retry in 30 seconds, after one request; the second is quoted as usual
    assert_problem(by_street, 503, "geocoder-unavailable")
    assert by_street.headers["retry-after"] == "30"
    assert [request.query["q"] for request in server.requests] == [PICKUP["address"]]
    assert (with_points.status_code, with_points.json()["fee"]) == (201, 533)
