"""The geocoding port: coordinates for a postal address, used by every service that takes addresses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from doorstep.contracts.orders import GeoPoint
from doorstep.kernel.errors import DoorstepError


class GeocodingFailed(Exception):
    """The geocoder could not answer (down, timed out, refused): unlike None, trying later may help."""


class Geocoder(Protocol):
    async def geocode(self, address: str, *, country_hint: str | None = None) -> GeoPoint | None:
        """The coordinates of a postal address, or None when the geocoder knows no such place.

        `country_hint` is an ISO 3166-1 alpha-2 code (or several, comma-separated) to search in.
        Raises `GeocodingFailed` when it cannot tell.
        """
        ...


class AddressNotGeocoded(DoorstepError):
    """Stops given by address only, and the geocoder knows no such place: a 422 naming each address.

    `fix` says how else the caller can place them; `{locations}` stands for the stops' location fields.
    """

    slug = "address-not-geocoded"
    title = "The geocoder found no coordinates for the address"
    status = 422

    def __init__(self, stops: Iterable[str], *, fix: str = "give {locations}") -> None:
        missing = list(stops)
        locations = " and ".join(f"{stop}.location" for stop in missing)
        super().__init__(
            f"no coordinates found for the {' and '.join(missing)} address; correct it or "
            + fix.format(locations=locations),
            errors=[
                {"field": f"{stop}.address", "in": "body", "message": "no coordinates found"}
                for stop in missing
            ],
        )
