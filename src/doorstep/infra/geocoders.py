"""Geocoder adapters: Nominatim over HTTP, and an offline gazetteer of Berlin for the demo and tests."""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import httpx
import structlog
from pydantic import ValidationError

from doorstep import __version__
from doorstep.contracts.orders import GeoPoint
from doorstep.kernel.geocoding import Geocoder, GeocodingFailed
from doorstep.kernel.settings import Settings

log = structlog.get_logger()

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class MinimumInterval:
    """Lets callers through one at a time, at least `seconds` apart (Nominatim allows 1 request/s)."""

    def __init__(
        self, seconds: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = self._clock()
            if self._next_at is not None and self._next_at > now:
                await self._sleep(self._next_at - now)
                now = max(now, self._next_at)
            self._next_at = now + self._seconds


class GeocodeCache:
    """The last `size` answers (found or not found), least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str | None], GeoPoint | None] = OrderedDict()

    @staticmethod
    def key(address: str, country_hint: str | None) -> tuple[str, str | None]:
        return " ".join(address.split()).casefold(), country_hint.casefold() if country_hint else None

    def get(self, key: tuple[str, str | None]) -> tuple[bool, GeoPoint | None]:
        if key not in self._entries:
            return False, None
        self._entries.move_to_end(key)
        return True, self._entries[key]

    def put(self, key: tuple[str, str | None], point: GeoPoint | None) -> None:
        self._entries[key] = point
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class NominatimGeocoder:
    """Nominatim's `/search?format=jsonv2`, within its usage policy: one request a second per process,
    an identifying User-Agent, and answers cached so an address is asked for once."""

    def __init__(
        self,
        *,
        base_url: str,
        user_agent: str,
        timeout: float = 5.0,
        cache_size: int = 10_000,
        default_country: str | None = None,
        interval: MinimumInterval | None = None,
    ) -> None:
        self._search_url = base_url.rstrip("/") + "/search"
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._timeout = timeout
        self._default_country = default_country
        self._interval = interval or MinimumInterval(1.0)
        self.cache = GeocodeCache(cache_size)
        self.requests = 0

    async def geocode(self, address: str, *, country_hint: str | None = None) -> GeoPoint | None:
        country = country_hint or self._default_country
        key = GeocodeCache.key(address, country)
        cached, point = self.cache.get(key)
        if cached:
            return point
        point = await self._search(address, country)
        self.cache.put(key, point)
        return point

    async def _search(self, address: str, country: str | None) -> GeoPoint | None:
        params = {"q": address, "format": "jsonv2", "limit": "1"}
        if country:
            params["countrycodes"] = country.lower()
        await self._interval.wait()
        self.requests += 1
        try:
            async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
                response = await client.get(self._search_url, params=params)
        except httpx.HTTPError as exc:
            raise GeocodingFailed(f"Nominatim did not answer: {exc!r}") from exc
        if response.status_code != 200:
            raise GeocodingFailed(f"Nominatim answered {response.status_code}")
        try:
            places = response.json()
            if not places:
                return None
            return GeoPoint(lat=float(places[0]["lat"]), lon=float(places[0]["lon"]))
        except (ValueError, KeyError, TypeError, IndexError, ValidationError) as exc:
            raise GeocodingFailed(f"Nominatim answered something unexpected: {exc}") from exc


# Exact places of the demo's merchants (runtime/demo.py), so geocoding them gives their own coordinates.
_PLACES = {
    "Oranienstraße 12, 10999 Berlin": (52.5011, 13.4183),
    "Kastanienallee 40, 10119 Berlin": (52.5365, 13.4089),
    "Simon-Dach-Straße 20, 10245 Berlin": (52.5090, 13.4575),
    "Torstraße 110, 10119 Berlin": (52.5291, 13.4010),
    "Kantstraße 55, 10627 Berlin": (52.5058, 13.3050),
}
# Berlin streets (roughly their middle): a house number on one of them lands near it, always the same spot.
_STREETS = {
    "Bergmannstraße": (52.4895, 13.3950),
    "Boxhagener Straße": (52.5105, 13.4620),
    "Brunnenstraße": (52.5340, 13.3990),
    "Danziger Straße": (52.5395, 13.4230),
    "Friedrichstraße": (52.5200, 13.3880),
    "Hermannstraße": (52.4700, 13.4270),
    "Invalidenstraße": (52.5300, 13.3830),
    "Kantstraße": (52.5060, 13.3050),
    "Karl-Marx-Straße": (52.4780, 13.4390),
    "Kastanienallee": (52.5370, 13.4080),
    "Kurfürstendamm": (52.5010, 13.3180),
    "Müllerstraße": (52.5480, 13.3560),
    "Oranienstraße": (52.5010, 13.4180),
    "Schönhauser Allee": (52.5390, 13.4120),
    "Simon-Dach-Straße": (52.5095, 13.4575),
    "Skalitzer Straße": (52.4995, 13.4270),
    "Sonnenallee": (52.4830, 13.4480),
    "Torstraße": (52.5290, 13.4010),
    "Turmstraße": (52.5265, 13.3400),
    "Warschauer Straße": (52.5080, 13.4490),
    "Wiener Straße": (52.4965, 13.4330),
    "Wilmersdorfer Straße": (52.5070, 13.3060),
}
_HOUSE = re.compile(r"^(?P<street>.+?)\s*(?P<number>[0-9]{1,4})\s*[a-z]?$")
_BERLIN_POSTCODE = re.compile(r"\b1[0-4][0-9]{3}\b")


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("ß", "ss").replace("str.", "strasse ")
    text = re.sub(r"[^\w,]+", " ", text)
    text = " ".join(text.replace("strasse", " strasse").split()).replace(" strasse", "strasse")
    return re.sub(r"\s*,\s*", ", ", text)


class OfflineGazetteer:
    """Knows a few Berlin streets and nothing else: no network, same answer every time."""

    def __init__(self) -> None:
        self._places = {
            _normal(address): GeoPoint(lat=lat, lon=lon) for address, (lat, lon) in _PLACES.items()
        }
        self._streets = {_normal(street): (lat, lon) for street, (lat, lon) in _STREETS.items()}

    async def geocode(self, address: str, *, country_hint: str | None = None) -> GeoPoint | None:
        if country_hint and "de" not in country_hint.casefold().split(","):
            return None
        normal = _normal(address)
        if normal in self._places:
            return self._places[normal]
        street_part, _, rest = normal.partition(",")
        if "berlin" not in rest and not _BERLIN_POSTCODE.search(rest):
            return None
        house = _HOUSE.match(street_part.strip())
        if house is None or house["street"].strip() not in self._streets:
            return None
        lat, lon = self._streets[house["street"].strip()]
        number = int(house["number"])
        # A few hundred metres at most from the street's middle, by house number.
        return GeoPoint(
            lat=round(lat + ((number * 37) % 101 - 50) * 0.00003, 6),
            lon=round(lon + ((number * 53) % 101 - 50) * 0.00005, 6),
        )


def build_geocoder(settings: Settings) -> Geocoder:
    if settings.geocoder == "nominatim":
        return NominatimGeocoder(
            base_url=settings.geocoder_url,
            user_agent=f"Doorstep/{__version__} (+{settings.public_url})",
            timeout=settings.geocoder_timeout_seconds,
            cache_size=settings.geocoder_cache_size,
            default_country=settings.geocoder_country_codes,
        )
    return OfflineGazetteer()
