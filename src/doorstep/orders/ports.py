"""What the orders service needs from the outside world."""

from __future__ import annotations

from doorstep.kernel.geocoding import Geocoder, GeocodingFailed

__all__ = ["Geocoder", "GeocodingFailed"]
