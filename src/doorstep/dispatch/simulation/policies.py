"""Dispatch policies for the simulator: `nearest`, the greedy baseline, and two that improve on it.

Every policy sees only what has happened (orders placed so far, couriers' positions and trips), never the
future. An order is *due* at an epoch when the food is ready by the time the closest idle courier could
be there (ready time <= now + that courier's drive + half the pickup service): assigning earlier would
only make a courier wait at the restaurant instead of serving something else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from doorstep.dispatch.simulation.bundling import EpochPlan, service_cost
from doorstep.dispatch.simulation.instance import Instance, Order
from doorstep.dispatch.simulation.matching import min_cost_matching
from doorstep.dispatch.simulation.optimized import OptimizedPolicy
from doorstep.dispatch.simulation.routes import Trip, plan_trip
from doorstep.dispatch.simulation.state import Assignment, CourierState, DispatchState, Policy


class NearestPolicy:
    """Each open order, earliest ready first, joins an open bundle of its restaurant if that makes no
    order already in it late (see `bundling.extend`); else, once due, it goes to the idle courier with the
    shortest drive to its restaurant who can pick it up before going off duty."""

    name = "nearest"

    def __init__(self, instance: Instance) -> None:
        self.orders = {order.id: order for order in instance.orders}

    def decide(self, state: DispatchState) -> Sequence[Assignment]:
        plan = EpochPlan.of(state, self.orders)
        for order in state.open_orders:
            if plan.try_extend(order):
                continue
            choice = nearest_idle(plan, order)
            if choice is not None and _due(state, order, drive=choice[1]):
                plan.start(choice[0].courier.id, [order])
        return plan.assignments()


class CautiousPolicy:
    """`nearest`, except that an order joins an open bundle only when that serves it and the bundle no
    worse (by `bundling.service_cost`) than the nearest idle courier would serve it alone: bundling saves
    couriers, but a second drop-off on someone else's trip often delivers later than a free courier."""

    name = "cautious"

    def __init__(self, instance: Instance) -> None:
        self.orders = {order.id: order for order in instance.orders}

    def decide(self, state: DispatchState) -> Sequence[Assignment]:
        plan = EpochPlan.of(state, self.orders)
        for order in state.open_orders:
            choice = nearest_idle(plan, order)
            if grow_if_no_worse(plan, order, choice):
                continue
            if choice is not None and _due(state, order, drive=choice[1]):
                plan.start(choice[0].courier.id, [order])
        return plan.assignments()


class BatchedPolicy:
    """`cautious` bundling, then all the due orders of the epoch matched to the idle couriers at least
    total cost (the Hungarian method) instead of one by one, a pair's cost being the trip's service cost
    plus the courier minutes it takes (so that a far courier is not spent when a near one does as well)."""

    name = "batched"

    def __init__(self, instance: Instance, *, courier_minute_cost: float = 1.0) -> None:
        self.orders = {order.id: order for order in instance.orders}
        self.courier_minute_cost = courier_minute_cost

    def decide(self, state: DispatchState) -> Sequence[Assignment]:
        plan = EpochPlan.of(state, self.orders)
        due: list[Order] = []
        for order in state.open_orders:
            choice = nearest_idle(plan, order)
            if grow_if_no_worse(plan, order, choice):
                continue
            if choice is not None and _due(state, order, drive=choice[1]):
                due.append(order)
        couriers = sorted(plan.idle.values(), key=lambda one: one.courier.id)
        if not due or not couriers:
            return plan.assignments()
        target = state.instance.parameters.target_click_to_door
        costs: list[list[float | None]] = []
        for order in due:
            line: list[float | None] = []
            for courier in couriers:
                trip = _alone(state, courier, order)
                if trip.pickup_at > courier.courier.off_time:
                    line.append(None)
                else:
                    busy = trip.free_at - trip.departs_at
                    line.append(service_cost(trip, self.orders, target) + self.courier_minute_cost * busy)
            costs.append(line)
        for row, column in min_cost_matching(costs):
            plan.start(couriers[column].courier.id, [due[row]])
        return plan.assignments()


POLICIES: dict[str, Callable[[Instance], Policy]] = {
    "nearest": NearestPolicy,
    "cautious": CautiousPolicy,
    "batched": BatchedPolicy,
    "optimized": OptimizedPolicy,
}


def make_policy(name: str, instance: Instance) -> Policy:
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}") from None
    return factory(instance)


def nearest_idle(plan: EpochPlan, order: Order) -> tuple[CourierState, int] | None:
    """The idle courier with the shortest drive to the order's restaurant who can pick it up in time."""
    instance = plan.state.instance
    restaurant = instance.restaurants[order.restaurant_id].location
    half_pickup = instance.parameters.pickup_service_minutes / 2
    best: tuple[int, str, CourierState] | None = None
    for courier in plan.idle.values():
        drive = instance.travel_minutes(courier.position, restaurant)
        pickup = max(plan.state.now + drive + half_pickup, order.ready_time)
        if pickup > courier.courier.off_time:
            continue
        key = (drive, courier.courier.id)
        if best is None or key < best[:2]:
            best = (*key, courier)
    return None if best is None else (best[2], best[0])


def grow_if_no_worse(plan: EpochPlan, order: Order, nearest: tuple[CourierState, int] | None) -> bool:
    """Add `order` to its best open bundle if the bundle's service cost grows by no more than the cost
    of the nearest idle courier taking it alone (always, when no courier is idle)."""
    grown = plan.best_extension(order)
    if grown is None:
        return False
    if nearest is not None:
        target = plan.state.instance.parameters.target_click_to_door
        before = plan.open_trips[grown.courier_id]
        added = service_cost(grown, plan.orders, target) - service_cost(before, plan.orders, target)
        if added > service_cost(_alone(plan.state, nearest[0], order), plan.orders, target):
            return False
    plan.keep(grown)
    return True


def _alone(state: DispatchState, courier: CourierState, order: Order) -> Trip:
    return plan_trip(
        state.instance,
        courier_id=courier.courier.id,
        origin=courier.position,
        departs_at=state.now,
        orders=[order],
    )


def _due(state: DispatchState, order: Order, *, drive: int) -> bool:
    return order.ready_time <= state.now + drive + state.instance.parameters.pickup_service_minutes / 2
