"""What a dispatch policy sees at a decision epoch, what it answers, and the Protocol it implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from doorstep.dispatch.simulation.instance import Courier, Instance, Order, Point
from doorstep.dispatch.simulation.routes import Trip


@dataclass(frozen=True, slots=True)
class CourierState:
    courier: Courier
    position: Point  # where the courier is now if idle, else where the current trip ends
    free_at: float  # the epoch's time if idle
    trip: Trip | None  # the trip under way, None when idle

    @property
    def idle(self) -> bool:
        return self.trip is None

    def can_extend(self, now: float) -> bool:
        """The trip's bundle may still grow: the courier has not picked it up yet."""
        return self.trip is not None and now < self.trip.pickup_at


@dataclass(frozen=True, slots=True)
class DispatchState:
    now: float
    instance: Instance
    open_orders: tuple[Order, ...]  # placed and not assigned, by ready time then id
    couriers: tuple[CourierState, ...]  # on duty now, or off duty but still finishing a trip


@dataclass(frozen=True, slots=True)
class Assignment:
    """Send `courier_id` on a trip to deliver `order_ids` in this sequence (one restaurant).

    An idle courier starts a new trip from where they are. A courier whose trip is not picked up yet gets
    its bundle replaced by this one, which must hold every order already in it (an assignment update at
    the restaurant, as the MDRP allows): the drive to the restaurant does not change.
    """

    courier_id: str
    order_ids: tuple[str, ...]


class Policy(Protocol):
    name: str

    def decide(self, state: DispatchState) -> Sequence[Assignment]: ...


class InvalidAssignment(ValueError):
    """A policy asked for something the rules forbid; a bug in the policy, never a simulated event."""
