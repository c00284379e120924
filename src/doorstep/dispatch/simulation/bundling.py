"""Growing a bundle that is not picked up yet, and the trips a policy plans within one epoch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from doorstep.dispatch.simulation.instance import Instance, Order
from doorstep.dispatch.simulation.routes import Trip, plan_trip
from doorstep.dispatch.simulation.state import Assignment, CourierState, DispatchState


def overage(trip: Trip, orders: dict[str, Order], target: float) -> float:
    return sum(
        max(0.0, dropoff - orders[order_id].placement_time - target)
        for order_id, dropoff in zip(trip.order_ids, trip.dropoffs_at, strict=True)
    )


def service_cost(
    trip: Trip, orders: dict[str, Order], target: float, *, overage_weight: float = 2.0
) -> float:
    """How badly a trip serves its orders: their click-to-door minutes, plus `overage_weight` times their
    minutes over the target."""
    click_to_door = sum(
        dropoff - orders[order_id].placement_time
        for order_id, dropoff in zip(trip.order_ids, trip.dropoffs_at, strict=True)
    )
    return click_to_door + overage_weight * overage(trip, orders, target)


def extend(
    instance: Instance, trip: Trip, order: Order, orders: dict[str, Order], off_time: int
) -> Trip | None:
    """The best trip with `order` inserted into `trip`'s bundle, or None if none is allowed.

    Allowed: same restaurant, pickup still by the courier's off-time, and no order already in the bundle
    made late by it: each keeps a drop-off within the click-to-door target, or no later than before.
    Best: the least total overage over the target, then the earliest drop-offs.
    """
    if order.restaurant_id != trip.restaurant_id:
        return None
    target = instance.parameters.target_click_to_door
    before = dict(zip(trip.order_ids, trip.dropoffs_at, strict=True))
    bundle = [orders[order_id] for order_id in trip.order_ids]
    best: tuple[float, float, Trip] | None = None
    for position in range(len(bundle) + 1):
        sequence = [*bundle[:position], order, *bundle[position:]]
        candidate = plan_trip(
            instance,
            courier_id=trip.courier_id,
            origin=trip.origin,
            departs_at=trip.departs_at,
            orders=sequence,
        )
        if candidate.pickup_at > off_time:
            return None
        late = any(
            candidate.dropoff_of(order_id) > max(before[order_id], orders[order_id].placement_time + target)
            for order_id in trip.order_ids
        )
        if late:
            continue
        key = (overage(candidate, orders, target), sum(candidate.dropoffs_at))
        if best is None or key < best[:2]:
            best = (*key, candidate)
    return None if best is None else best[2]


@dataclass
class EpochPlan:
    """The trips of one epoch as the policy builds them: those under way and those it adds or grows."""

    state: DispatchState
    orders: dict[str, Order]
    idle: dict[str, CourierState] = field(default_factory=dict)
    open_trips: dict[str, Trip] = field(default_factory=dict)  # courier id: bundle not picked up yet
    changed: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, state: DispatchState, orders: dict[str, Order]) -> EpochPlan:
        plan = cls(state, orders)
        for courier in state.couriers:
            if courier.trip is None:
                if state.now <= courier.courier.off_time:
                    plan.idle[courier.courier.id] = courier
            elif courier.can_extend(state.now):
                plan.open_trips[courier.courier.id] = courier.trip
        return plan

    def off_time(self, courier_id: str) -> int:
        return next(one.courier.off_time for one in self.state.couriers if one.courier.id == courier_id)

    def best_extension(self, order: Order) -> Trip | None:
        """The open trip at the order's restaurant, grown by it, that drops it off soonest, if any allows."""
        best: Trip | None = None
        for trip in self.open_trips.values():
            if trip.restaurant_id != order.restaurant_id:
                continue
            grown = extend(self.state.instance, trip, order, self.orders, self.off_time(trip.courier_id))
            if grown is not None and (best is None or grown.dropoff_of(order.id) < best.dropoff_of(order.id)):
                best = grown
        return best

    def try_extend(self, order: Order) -> bool:
        best = self.best_extension(order)
        if best is None:
            return False
        self.keep(best)
        return True

    def start(self, courier_id: str, orders: Sequence[Order]) -> Trip:
        courier = self.idle.pop(courier_id)
        trip = plan_trip(
            self.state.instance,
            courier_id=courier_id,
            origin=courier.position,
            departs_at=self.state.now,
            orders=orders,
        )
        self.keep(trip)
        return trip

    def keep(self, trip: Trip) -> None:
        self.open_trips[trip.courier_id] = trip
        self.changed.add(trip.courier_id)

    def assignments(self) -> list[Assignment]:
        return [
            Assignment(courier_id, self.open_trips[courier_id].order_ids)
            for courier_id in sorted(self.changed)
        ]
