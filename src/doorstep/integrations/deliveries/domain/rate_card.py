"""A tenant's rate card and the price it gives a delivery: base + distance + time, size, peak, zones, minimum.

Amounts are integers in minor units; rates per km and per minute may have decimals. Each line is rounded
half up to the minor unit, and the total is the sum of the lines, so the breakdown always adds up.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from doorstep.contracts.orders import CurrencyCode, GeoPoint, MinorUnits
from doorstep.integrations.deliveries.domain.geo import Ring, in_polygon


class Size(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
    XL = "xl"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Schema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _clock_time(value: str) -> str:
    hours, _, minutes = value.partition(":")
    if not (len(hours) == 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()):
        raise ValueError("give a local time as HH:MM")
    if int(minutes) > 59 or int(hours) > 24 or (int(hours) == 24 and int(minutes) != 0):
        raise ValueError("give a local time from 00:00 to 24:00")
    return value


ClockTime = Annotated[str, AfterValidator(_clock_time)]


def minutes_of(value: str) -> int:
    hours, _, minutes = value.partition(":")
    return int(hours) * 60 + int(minutes)


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: str) -> str:
    if value != "UTC" and value not in _time_zones():
        raise ValueError("give an IANA time zone such as Europe/Berlin")
    return value


Rate = Annotated[float, Field(ge=0, le=10**9)]
Multiplier = Annotated[float, Field(ge=0.1, le=10)]


class PeakWindow(Schema):
    """From `start` (inclusive) to `end` (exclusive) local time on each of `weekdays`."""

    weekdays: list[Weekday] = Field(min_length=1, max_length=7)
    start: ClockTime
    end: ClockTime
    multiplier: Multiplier

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if minutes_of(self.end) <= minutes_of(self.start):
            raise ValueError("a peak window ends after it starts (split one that spans midnight in two)")
        return self

    def covers(self, local: datetime) -> bool:
        if WEEKDAYS[local.weekday()] not in self.weekdays:
            return False
        seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return minutes_of(self.start) * 60 <= seconds < minutes_of(self.end) * 60


def _position(value: list[float]) -> list[float]:
    if not -180 <= value[0] <= 180 or not -90 <= value[1] <= 90:
        raise ValueError("a position is [longitude, latitude] within [-180, 180] and [-90, 90]")
    return value


Position = Annotated[list[float], Field(min_length=2, max_length=3), AfterValidator(_position)]


def _ring(value: list[list[float]]) -> list[list[float]]:
    if value[0][:2] != value[-1][:2]:
        raise ValueError("a linear ring is closed: its last position repeats its first")
    return value


RingIn = Annotated[list[Position], Field(min_length=4, max_length=10_000), AfterValidator(_ring)]
Rings = Annotated[list[RingIn], Field(min_length=1, max_length=100)]


class Polygon(Schema):
    """GeoJSON (RFC 7946): the exterior ring first, then any holes."""

    type: Literal["Polygon"]
    coordinates: Rings

    def rings(self) -> list[list[Ring]]:
        return [list(self.coordinates)]


class MultiPolygon(Schema):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[Rings], Field(min_length=1, max_length=100)]

    def rings(self) -> list[list[Ring]]:
        return [list(polygon) for polygon in self.coordinates]


class ZoneSurcharge(Schema):
    """Added once when the pickup or the drop-off lies in the zone."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    area: Polygon | MultiPolygon = Field(discriminator="type")
    amount: MinorUnits

    def contains(self, point: GeoPoint) -> bool:
        return any(in_polygon(point.lon, point.lat, polygon) for polygon in self.area.rings())


class SizeClass(Schema):
    multiplier: Multiplier = 1.0
    surcharge: MinorUnits = 0


def _default_sizes() -> dict[Size, SizeClass]:
    return {size: SizeClass() for size in Size}


class RateCard(Schema):
    currency: CurrencyCode
    base_fee: MinorUnits
    per_km: Rate = Field(description="Minor units per road kilometre; decimals allowed.")
    per_minute: Rate = Field(description="Minor units per minute of the estimated duration.")
    minimum_fee: MinorUnits = 0
    time_zone: Annotated[str, Field(max_length=64), AfterValidator(_time_zone)] = Field(
        default="UTC", description="The local time peak windows are in (IANA name)."
    )
    peak_windows: list[PeakWindow] = Field(default_factory=list, max_length=100)
    zones: list[ZoneSurcharge] = Field(default_factory=list, max_length=100)
    sizes: dict[Size, SizeClass] = Field(
        default_factory=_default_sizes, description="The sizes quoted, each with its multiplier or surcharge."
    )

    def peak_multiplier(self, at: datetime) -> Decimal:
        """The highest multiplier of the windows covering `at` in the card's time zone; 1 outside them."""
        local = at.astimezone(zoneinfo.ZoneInfo(self.time_zone))
        found = [window.multiplier for window in self.peak_windows if window.covers(local)]
        return _decimal(max(found)) if found else Decimal(1)


@dataclass(frozen=True, slots=True)
class FeeLine:
    kind: str  # base, distance, time, size, peak, zone, minimum
    label: str
    amount: int


@dataclass(frozen=True, slots=True)
class Price:
    currency: str
    lines: tuple[FeeLine, ...]

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


def _decimal(value: float) -> Decimal:
    # repr gives the shortest decimal that round-trips: 1.15 stays 1.15, not 1.149999...
    return Decimal(repr(value))


def minor_units(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def price(
    card: RateCard,
    *,
    distance_m: int,
    duration_s: int,
    size: Size,
    pickup_at: datetime,
    pickup: GeoPoint,
    dropoff: GeoPoint,
) -> Price:
    """The fee for one delivery; a size the card does not list is the caller's to refuse first."""
    km = Decimal(distance_m) / 1000
    minutes = Decimal(duration_s) / 60
    lines = [
        FeeLine("base", "Base fee", card.base_fee),
        FeeLine("distance", f"{km:.2f} km at {card.per_km:g}/km", minor_units(km * _decimal(card.per_km))),
        FeeLine(
            "time",
            f"{minutes:.1f} min at {card.per_minute:g}/min",
            minor_units(minutes * _decimal(card.per_minute)),
        ),
    ]
    subtotal = Decimal(sum(line.amount for line in lines))
    size_class = card.sizes[size]
    size_amount = minor_units(subtotal * (_decimal(size_class.multiplier) - 1)) + size_class.surcharge
    if size_amount:
        lines.append(FeeLine("size", f"Size {size.value}", size_amount))
    multiplier = card.peak_multiplier(pickup_at)
    if multiplier != 1:
        peak = minor_units((subtotal + size_amount) * (multiplier - 1))
        lines.append(FeeLine("peak", f"Peak x{multiplier}", peak))
    for zone in card.zones:
        if zone.amount and (zone.contains(pickup) or zone.contains(dropoff)):
            lines.append(FeeLine("zone", f"Zone {zone.name}", zone.amount))
    total = sum(line.amount for line in lines)
    if total < card.minimum_fee:
        lines.append(FeeLine("minimum", "Up to the minimum fee", card.minimum_fee - total))
    return Price(currency=card.currency, lines=tuple(lines))
