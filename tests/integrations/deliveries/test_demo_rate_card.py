"""The demo tenant quotes deliveries out of the box: a Berlin rate card in euros, evening peak, a Mitte zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from tests.platform import running_platform, settings_for

from doorstep.integrations.deliveries.tables import delivery_rate_cards
from doorstep.runtime.demo import seed_demo

BERLIN = ZoneInfo("Europe/Berlin")


def next_monday_at(hour: int) -> datetime:
    today = datetime.now(BERLIN).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime(monday.year, monday.month, monday.day, hour, 0, tzinfo=BERLIN)


def quote_request(external_id: str, pickup_time: datetime) -> dict[str, Any]:
    # From a demo merchant in Prenzlauer Berg, within the Mitte zone, to a street 1.2 km by road away.
    return {
        "external_delivery_id": external_id,
        "pickup": {"name": "Phở Saigon", "address": "Kastanienallee 40, 10119 Berlin"},
        "dropoff": {"name": "Lena Müller", "address": "Danziger Straße 50, 10435 Berlin"},
        "pickup_time": pickup_time.isoformat(),
    }


async def test_the_demo_tenant_quotes_from_its_berlin_rate_card(tmp_path: Path) -> None:
    # Given the demo, seeded with a few orders
    settings = settings_for(tmp_path)
    demo = await seed_demo(settings, public_url="http://testserver", orders=10)
    headers = {"Authorization": f"Bearer {demo['api_key']}"}

    async with running_platform(settings) as platform:
        # When a partner quotes a medium parcel on a Monday late morning, and again in the evening
        late_morning = await platform.client.post(
            "/v1/deliveries/quotes", json=quote_request("DEMO-1", next_monday_at(11)), headers=headers
        )
        evening = await platform.client.post(
            "/v1/deliveries/quotes", json=quote_request("DEMO-2", next_monday_at(18)), headers=headers
        )

    # Then both are priced in euros from the card: base, km, minutes, the Mitte zone, and the evening peak
    assert late_morning.status_code == 201, late_morning.text
    assert evening.status_code == 201, evening.text
    assert (late_morning.json()["currency"], late_morning.json()["distance_m"]) == ("EUR", 1180)
    assert [(line["kind"], line["amount"]) for line in late_morning.json()["fee_lines"]] == [
        ("base", 290),
        ("distance", 100),
        ("time", 94),
        ("zone", 150),
    ]
    assert [(line["kind"], line["amount"]) for line in evening.json()["fee_lines"]] == [
        ("base", 290),
        ("distance", 100),
        ("time", 94),
        ("peak", 121),
        ("zone", 150),
    ]
    assert (late_morning.json()["fee"], evening.json()["fee"]) == (634, 755)


async def test_a_demo_seeded_before_it_had_a_rate_card_gets_one_on_the_next_start(tmp_path: Path) -> None:
    # Given a demo whose tenant has no rate card (as one seeded before demos had one)
    settings = settings_for(tmp_path)
    demo = await seed_demo(settings, public_url="http://testserver", orders=10)
    async with running_platform(settings) as platform:
        async with platform.services["integrations"].database.writer_engine.begin() as connection:
            await connection.execute(delete(delivery_rate_cards))
        headers = {"Authorization": f"Bearer {demo['api_key']}"}
        before = await platform.client.get("/v1/deliveries/rate-card", headers=headers)

    # When the demo starts again
    again = await seed_demo(settings, public_url="http://testserver", orders=10)

    # Then it is the same tenant, now with the demo's card
    async with running_platform(settings) as platform:
        after = await platform.client.get("/v1/deliveries/rate-card", headers=headers)
    assert (again, before.status_code) == (demo, 404)
    assert (after.status_code, after.json()["currency"], after.json()["base_fee"]) == (200, "EUR", 290)
    assert [zone["name"] for zone in after.json()["zones"]] == ["Mitte"]
