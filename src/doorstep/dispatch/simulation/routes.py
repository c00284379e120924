"""The timing of one courier's trip: to a restaurant, one pickup of a bundle, then its drop-offs in order.

The rules are the MDRP's: pickup at max(latest ready time of the bundle, arrival + half the pickup
service), departure half a service later; a drop-off at arrival + half the drop-off service, departure
half a service later. The engine and the policies share this one function, so a policy's estimate is
exactly what the engine will do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from doorstep.dispatch.simulation.instance import Instance, Order, Point


@dataclass(frozen=True, slots=True)
class Trip:
    courier_id: str
    restaurant_id: str
    order_ids: tuple[str, ...]  # drop-off sequence
    origin: Point
    departs_at: float
    arrives_at_restaurant: float
    pickup_at: float
    dropoffs_at: tuple[float, ...]  # one per order, in sequence
    driving_minutes: int
    free_at: float  # departure from the last drop-off
    end: Point

    def dropoff_of(self, order_id: str) -> float:
        return self.dropoffs_at[self.order_ids.index(order_id)]


def plan_trip(
    instance: Instance,
    *,
    courier_id: str,
    origin: Point,
    departs_at: float,
    orders: Sequence[Order],
) -> Trip:
    """The trip that leaves `origin` at `departs_at` for the bundle `orders` (same restaurant, this order)."""
    if not orders:
        raise ValueError("a trip needs at least one order")
    restaurant_id = orders[0].restaurant_id
    if any(order.restaurant_id != restaurant_id for order in orders):
        raise ValueError("a bundle holds orders of one restaurant only")
    parameters = instance.parameters
    half_pickup = parameters.pickup_service_minutes / 2
    half_dropoff = parameters.dropoff_service_minutes / 2
    restaurant = instance.restaurants[restaurant_id].location
    to_restaurant = instance.travel_minutes(origin, restaurant)
    arrives = departs_at + to_restaurant
    pickup = max(arrives + half_pickup, max(order.ready_time for order in orders))
    clock = pickup + half_pickup
    here = restaurant
    driving = to_restaurant
    dropoffs: list[float] = []
    for order in orders:
        leg = instance.travel_minutes(here, order.drop_off)
        driving += leg
        dropoff = clock + leg + half_dropoff
        dropoffs.append(dropoff)
        clock = dropoff + half_dropoff
        here = order.drop_off
    return Trip(
        courier_id=courier_id,
        restaurant_id=restaurant_id,
        order_ids=tuple(order.id for order in orders),
        origin=origin,
        departs_at=departs_at,
        arrives_at_restaurant=arrives,
        pickup_at=pickup,
        dropoffs_at=tuple(dropoffs),
        driving_minutes=driving,
        free_at=clock,
        end=here,
    )
