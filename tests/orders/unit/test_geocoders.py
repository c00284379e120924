"""The geocoder adapters: the offline gazetteer, and Nominatim against a local server speaking its API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from doorstep.contracts.orders import GeoPoint
from doorstep.infra.geocoders import (
    GeocodeCache,
    MinimumInterval,
    NominatimGeocoder,
    OfflineGazetteer,
    build_geocoder,
)
from doorstep.kernel.geocoding import GeocodingFailed
from doorstep.kernel.settings import Settings

# The offline gazetteer


@pytest.mark.parametrize(
    ("address", "point"),
    [
        ("Oranienstraße 12, 10999 Berlin", GeoPoint(lat=52.5011, lon=13.4183)),
        ("Kastanienallee 40, 10119 Berlin", GeoPoint(lat=52.5365, lon=13.4089)),
        ("  kastanienallee 40 ,  10119 BERLIN ", GeoPoint(lat=52.5365, lon=13.4089)),
    ],
)
async def test_the_gazetteer_knows_the_demo_merchants_exactly(address: str, point: GeoPoint) -> None:
    assert await OfflineGazetteer().geocode(address) == point


async def test_a_house_on_a_known_street_gets_the_same_point_near_the_street_every_time() -> None:
    # Given the gazetteer, asked twice and spelled three ways
    gazetteer = OfflineGazetteer()
    first = await gazetteer.geocode("Skalitzer Straße 3, 10997 Berlin")
    again = await OfflineGazetteer().geocode("Skalitzer Straße 3, 10997 Berlin")
    short = await gazetteer.geocode("Skalitzer Str. 3, Berlin")
    other_house = await gazetteer.geocode("Skalitzer Straße 4, 10997 Berlin")

    # Then it is one point, a few hundred metres at most from the street's middle, and another house differs
    assert first == again == short == GeoPoint(lat=52.4983, lon=13.4274)
    assert other_house == GeoPoint(lat=52.49941, lon=13.425)


@pytest.mark.parametrize(
    ("address", "country_hint"),
    [
        ("Unbekannte Gasse 7, 10115 Berlin", None),  # a street it does not know
        ("Skalitzer Straße 3, 80331 München", None),  # a known street name in another city
        ("Skalitzer Straße, 10997 Berlin", None),  # no house number
        ("Skalitzer Straße 3, 10997 Berlin", "fr"),  # another country
        ("", None),
    ],
)
async def test_the_gazetteer_answers_none_for_what_it_does_not_know(
    address: str, country_hint: str | None
) -> None:
    assert await OfflineGazetteer().geocode(address, country_hint=country_hint) is None


def test_settings_choose_the_adapter() -> None:
    assert isinstance(build_geocoder(Settings()), OfflineGazetteer)
    nominatim = build_geocoder(Settings(geocoder="nominatim", geocoder_url="http://127.0.0.1:9/"))
    assert isinstance(nominatim, NominatimGeocoder)


# The minimum interval and the cache, on a clock the test moves


@dataclass
class FakeClock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_callers_pass_at_most_once_a_second() -> None:
    # Given a one-second interval
    clock = FakeClock()
    interval = MinimumInterval(1.0, clock=clock, sleep=clock.sleep)

    # When three callers come at once, then one 0.3 s later, then one after a long pause
    await asyncio.gather(interval.wait(), interval.wait(), interval.wait())
    clock.now += 0.3
    await interval.wait()
    clock.now += 60
    await interval.wait()

    # Then the second and third wait a second each, the fourth the 0.7 s left, the fifth not at all
    assert clock.slept == [1.0, 1.0, pytest.approx(0.7)]


def test_the_cache_keeps_the_most_recently_used_answers_up_to_its_size() -> None:
    # Given a cache of two
    cache = GeocodeCache(2)
    a, b, c = (GeocodeCache.key(text, "de") for text in ("A 1, Berlin", "B 2, Berlin", "C 3, Berlin"))
    cache.put(a, GeoPoint(lat=1, lon=1))
    cache.put(b, None)

    # When A is read and C is added
    assert cache.get(a) == (True, GeoPoint(lat=1, lon=1))
    cache.put(c, GeoPoint(lat=3, lon=3))

    # Then B, the least recently used, is gone; "not found" was remembered like a point
    assert len(cache) == 2
    assert cache.get(b) == (False, None)
    assert cache.get(c) == (True, GeoPoint(lat=3, lon=3))
    assert GeocodeCache.key("  a 1,   BERLIN ", "DE") == a


# Nominatim against a local server


@dataclass
class FakeNominatim:
    """Nominatim's documented `/search?format=jsonv2`: a list of places with `lat`/`lon` as strings."""

    places: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    status: int = 200
    body: str | None = None
    delay: float = 0.0
    requests: list[web.Request] = field(default_factory=list)
    base_url: str = ""

    async def search(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200 or self.body is not None:
            return web.Response(status=self.status, text=self.body or "busy")
        assert request.query["format"] == "jsonv2"
        return web.json_response(self.places.get(request.query["q"], []))


@asynccontextmanager
async def nominatim() -> AsyncIterator[FakeNominatim]:
    server = FakeNominatim()
    app = web.Application()
    app.router.add_get("/search", server.search)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.base_url = f"http://127.0.0.1:{port}/"
    try:
        yield server
    finally:
        await runner.cleanup()


ALEXANDERPLATZ = {
    "place_id": 134567,
    "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
    "osm_type": "node",
    "lat": "52.5219184",
    "lon": "13.4132147",
    "category": "place",
    "type": "square",
    "place_rank": 25,
    "importance": 0.61,
    "addresstype": "square",
    "name": "Alexanderplatz",
    "display_name": "Alexanderplatz, Mitte, Berlin, 10178, Deutschland",
    "boundingbox": ["52.5201", "52.5238", "13.4098", "13.4167"],
}


def adapter(server: FakeNominatim, clock: FakeClock, **options: object) -> NominatimGeocoder:
    return NominatimGeocoder(
        base_url=server.base_url,
        user_agent="Doorstep/0.1.0 (+https://doorstep.example)",
        interval=MinimumInterval(1.0, clock=clock, sleep=clock.sleep),
        **options,  # type: ignore[arg-type]
    )


async def test_nominatim_finds_an_address_with_one_polite_request() -> None:
    async with nominatim() as server:
        # Given a Nominatim that knows Alexanderplatz
        server.places["Alexanderplatz 1, 10178 Berlin"] = [ALEXANDERPLATZ]
        clock = FakeClock()
        geocoder = adapter(server, clock)

        # When it is asked twice for it, with a country hint
        first = await geocoder.geocode("Alexanderplatz 1, 10178 Berlin", country_hint="DE")
        second = await geocoder.geocode("Alexanderplatz 1,  10178 Berlin", country_hint="de")

    # Then both answers are its point, from one request that identified Doorstep and limited the search
    assert first == second == GeoPoint(lat=52.5219184, lon=13.4132147)
    [request] = server.requests
    assert dict(request.query) == {
        "q": "Alexanderplatz 1, 10178 Berlin",
        "format": "jsonv2",
        "limit": "1",
        "countrycodes": "de",
    }
    assert request.headers["User-Agent"] == "Doorstep/0.1.0 (+https://doorstep.example)"
    assert clock.slept == []


async def test_nominatim_not_finding_an_address_is_none_and_remembered() -> None:
    async with nominatim() as server:
        # Given a Nominatim that knows nothing, and an adapter searching Germany by default
        clock = FakeClock()
        geocoder = adapter(server, clock, default_country="de")

        # When it is asked twice for an unknown address
        answers = [await geocoder.geocode("Nirgendwo 1"), await geocoder.geocode("Nirgendwo 1")]

    # Then the answer is None both times, from one request
    assert answers == [None, None]
    assert [dict(request.query) for request in server.requests] == [
        {"q": "Nirgendwo 1", "format": "jsonv2", "limit": "1", "countrycodes": "de"}
    ]


async def test_nominatim_requests_for_different_addresses_are_a_second_apart() -> None:
    async with nominatim() as server:
        # Given an adapter on a clock that does not move by itself
        clock = FakeClock()
        geocoder = adapter(server, clock)

        # When three different addresses are asked for at once
        await asyncio.gather(*(geocoder.geocode(f"Straße {number}") for number in range(3)))

    # Then three requests went out, the second and third each a second after the one before
    assert len(server.requests) == 3
    assert clock.slept == [1.0, 1.0]


@pytest.mark.parametrize(
    ("status", "body", "delay"),
    [
        (503, None, 0.0),  # overloaded
        (429, None, 0.0),  # the policy's answer to too many requests
        (200, "<html>not json</html>", 0.0),
        (200, json.dumps([{"lat": "north", "lon": "13.4"}]), 0.0),
        (200, json.dumps([{"lat": "95.0", "lon": "13.4"}]), 0.0),
        (200, json.dumps({"error": "Unable to geocode"}), 0.0),
        (200, None, 2.0),  # slower than the timeout
    ],
    ids=["503", "429", "html", "bad-number", "out-of-range", "error-object", "timeout"],
)
async def test_nominatim_failing_is_geocoding_failed_and_not_remembered(
    status: int, body: str | None, delay: float
) -> None:
    async with nominatim() as server:
        # Given a Nominatim that fails this way, then recovers
        server.status, server.body, server.delay = status, body, delay
        server.places["Alexanderplatz 1"] = [ALEXANDERPLATZ]
        geocoder = adapter(server, FakeClock(), timeout=0.2)

        # When it is asked
        with pytest.raises(GeocodingFailed):
            await geocoder.geocode("Alexanderplatz 1")

        # Then the failure was not cached: once it recovers, the next question is asked again
        server.status, server.body, server.delay = 200, None, 0.0
        assert await geocoder.geocode("Alexanderplatz 1") == GeoPoint(lat=52.5219184, lon=13.4132147)
        assert len(server.requests) == 2
