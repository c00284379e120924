"""The geocoding port: coordinates for a postal address, used by every service that takes addresses."""

from __future__ import annotations

from typing import Protocol

from doorstep.contracts.orders import GeoPoint


class GeocodingFailed(Exception):
    """The geocoder could not answer (down, timed out, refused): unlike None, trying later may help."""


class Geocoder(Protocol):
    async def geocode(self, address: str, *, country_hint: str | None = None) -> GeoPoint | None:
        """The coordinates of a postal address, or None when the geocoder knows no such place.

        `country_hint` is an ISO 3166-1 alpha-2 code (or several, comma-separated) to search in.
        Raises `GeocodingFailed` when it cannot tell.
        """
        ...
