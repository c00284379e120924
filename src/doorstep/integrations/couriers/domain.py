"""Courier deliveries in Doorstep's terms: which status may follow which. Pure, no I/O."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from doorstep.integrations.couriers.ports import CourierStatus


class Provider(StrEnum):
    DOORDASH_DRIVE = "doordash_drive"
    UBER_DIRECT = "uber_direct"


# How far along a delivery is. Webhooks arrive out of order and again: a status at or below the stored
# one's rank is old news and changes nothing. `returned` follows a cancelled or failed delivery.
RANK: dict[CourierStatus, int] = {
    CourierStatus.REQUESTED: 0,
    CourierStatus.ASSIGNED: 1,
    CourierStatus.PICKED_UP: 2,
    CourierStatus.DELIVERED: 3,
    CourierStatus.CANCELLED: 3,
    CourierStatus.FAILED: 3,
    CourierStatus.RETURNED: 4,
}
FINAL = frozenset({CourierStatus.DELIVERED, CourierStatus.CANCELLED, CourierStatus.RETURNED})


def advances(current: CourierStatus, incoming: CourierStatus) -> bool:
    """Whether `incoming` moves a delivery on from `current`; anything else is older than what is stored."""
    if current is CourierStatus.DELIVERED:
        return False
    return RANK[incoming] > RANK[current]


def newer(stored_at: datetime | None, occurred_at: datetime) -> bool:
    return stored_at is None or occurred_at >= stored_at


def position_is_news(located_at: datetime | None, occurred_at: datetime) -> bool:
    """Whether a courier position reported at `occurred_at` is later than the one stored (`located_at`)."""
    return located_at is None or occurred_at > located_at


def tracks_position(status: CourierStatus) -> bool:
    """Whether the courier's position still matters: not once the delivery is over."""
    return status not in FINAL


def cancellable(status: CourierStatus) -> bool:
    return status not in FINAL and status is not CourierStatus.FAILED
