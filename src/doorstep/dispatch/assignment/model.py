"""What automatic dispatch decides from: the carriers on duty now; and what it decides.

The service gathers a snapshot (open jobs from the database, carriers from the fleet and the geo store,
travel times from the travel port), a policy turns it into `Decisions`, and the service applies them
through the job model, which refuses anything a dispatcher pinned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from doorstep.dispatch.domain.geometry import Point
from doorstep.dispatch.domain.offers import StopRef


class CarrierKind(StrEnum):
    DRIVER = "driver"
    ROBOT = "robot"


@dataclass(frozen=True, slots=True)
class Carrier:
    """A driver or a robot that can take jobs now, where it is and what it can carry."""

    id: str
    kind: CarrierKind
    point: Point  # its latest live position
    profile: str  # the travel profile: the vehicle type (`bicycle`, `car`, ... `robot`)
    capacity: int  # units it can hold at once
    skills: frozenset[str] = frozenset()
    free_from: datetime | None = None  # when it can start: on a break until then, None: now
    available_until: datetime | None = None  # the end of its shift, None: no shift known
    zone_ids: frozenset[str] | None = None  # where it may go (robots); None: anywhere
    range_m: float | None = None  # how far it can still go (robots); None: no limit


@dataclass(frozen=True, slots=True)
class OfferTo:
    """Offer the job to these carriers (one: a single offer; more: a broadcast, first to accept)."""

    job_id: str
    carrier_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AssignTo:
    """Give the job to the carrier (a reassignment when another has it and nothing is pinned)."""

    job_id: str
    carrier_id: str


@dataclass(frozen=True, slots=True)
class RouteOf:
    """The carrier's remaining stops in the order to visit them."""

    carrier_id: str
    stops: tuple[StopRef, ...]


@dataclass(frozen=True, slots=True)
class Decisions:
    offers: tuple[OfferTo, ...] = ()
    assignments: tuple[AssignTo, ...] = ()
    routes: tuple[RouteOf, ...] = ()
    # Jobs no own carrier can bring within their promised window (a courier may take them).
    unservable: tuple[str, ...] = field(default=())
