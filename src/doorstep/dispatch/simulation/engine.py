"""A discrete-event simulation of a meal-delivery day under a dispatch policy, without I/O.

Time runs over decision epochs: every `epoch_minutes` from the first event, and at every order
placement, ready time, courier on-time and end of a trip. At each epoch the engine reveals the orders
placed so far, frees the couriers whose trip has ended, asks the policy for assignments and applies
them, checking every MDRP rule (see `apply`). A trip, once assigned, is planned in full by
`routes.plan_trip`, so the engine needs no events inside it; a bundle not picked up yet may still grow.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from doorstep.dispatch.simulation.instance import Courier, Instance, Order, Point
from doorstep.dispatch.simulation.routes import Trip, plan_trip
from doorstep.dispatch.simulation.state import (
    Assignment,
    CourierState,
    DispatchState,
    InvalidAssignment,
    Policy,
)


@dataclass(frozen=True, slots=True)
class AssignedTrip:
    trip: Trip
    assigned_at: float  # the last time its bundle was set (assignment or update)


@dataclass(frozen=True, slots=True)
class Delivery:
    order_id: str
    courier_id: str
    assigned_at: float
    pickup_at: float
    dropoff_at: float


@dataclass(frozen=True, slots=True)
class SimulationResult:
    instance: Instance
    policy: str
    trips: tuple[AssignedTrip, ...]
    epochs: int

    def deliveries(self) -> dict[str, Delivery]:
        return {
            order_id: Delivery(order_id, one.trip.courier_id, one.assigned_at, one.trip.pickup_at, dropoff)
            for one in self.trips
            for order_id, dropoff in zip(one.trip.order_ids, one.trip.dropoffs_at, strict=True)
        }


class _CourierRun:
    __slots__ = ("courier", "current", "position", "trips")

    def __init__(self, courier: Courier) -> None:
        self.courier = courier
        self.position: Point = courier.on_location
        self.current: AssignedTrip | None = None
        self.trips: list[AssignedTrip] = []

    def finish_trip(self, now: float) -> None:
        if self.current is not None and self.current.trip.free_at <= now:
            self.trips.append(self.current)
            self.position = self.current.trip.end
            self.current = None

    def view(self, now: float) -> CourierState:
        if self.current is None:
            return CourierState(self.courier, self.position, now, None)
        trip = self.current.trip
        return CourierState(self.courier, trip.end, trip.free_at, trip)


class Simulation:
    def __init__(self, instance: Instance, policy: Policy, *, epoch_minutes: float = 1.0) -> None:
        if epoch_minutes <= 0:
            raise ValueError("epoch_minutes must be positive")
        self.instance = instance
        self.policy = policy
        self.epoch_minutes = epoch_minutes
        self.orders = {order.id: order for order in instance.orders}
        self.runs = {courier.id: _CourierRun(courier) for courier in instance.couriers}
        self.open: dict[str, Order] = {}
        self._epochs: list[float] = []

    def run(self) -> SimulationResult:
        pending = sorted(self.instance.orders, key=lambda order: (order.placement_time, order.id))
        last_pickup = max((courier.off_time for courier in self.instance.couriers), default=0)
        self._schedule(order.placement_time for order in pending)
        self._schedule(order.ready_time for order in pending)
        self._schedule(courier.on_time for courier in self.instance.couriers)
        start = self._epochs[0] if self._epochs else 0.0
        ticks = int((last_pickup - start) // self.epoch_minutes) + 1
        self._schedule(start + n * self.epoch_minutes for n in range(max(ticks, 0)))
        revealed = 0
        epochs = 0
        while self._epochs:
            now = heapq.heappop(self._epochs)
            while self._epochs and self._epochs[0] == now:
                heapq.heappop(self._epochs)
            if now > last_pickup:
                break
            while revealed < len(pending) and pending[revealed].placement_time <= now:
                self.open[pending[revealed].id] = pending[revealed]
                revealed += 1
            for run in self.runs.values():
                run.finish_trip(now)
            if revealed == len(pending) and not self.open:
                break
            epochs += 1
            for assignment in self.policy.decide(self._state(now)):
                self.apply(assignment, now)
        trips = [one for run in self.runs.values() for one in run.trips]
        trips += [run.current for run in self.runs.values() if run.current is not None]
        trips.sort(key=lambda one: (one.assigned_at, one.trip.courier_id))
        return SimulationResult(self.instance, self.policy.name, tuple(trips), epochs)

    def _schedule(self, times: Iterable[float]) -> None:
        for time in times:
            heapq.heappush(self._epochs, float(time))

    def _state(self, now: float) -> DispatchState:
        open_orders = sorted(self.open.values(), key=lambda order: (order.ready_time, order.id))
        couriers = tuple(
            run.view(now)
            for run in self.runs.values()
            if run.courier.on_time <= now and (now <= run.courier.off_time or run.current is not None)
        )
        return DispatchState(now, self.instance, tuple(open_orders), couriers)

    def apply(self, assignment: Assignment, now: float) -> None:
        """Check the assignment against the rules, then start or update the courier's trip."""
        run = self.runs.get(assignment.courier_id)
        if run is None:
            raise InvalidAssignment(f"unknown courier {assignment.courier_id}")
        courier = run.courier
        ids = assignment.order_ids
        if not ids or len(set(ids)) != len(ids):
            raise InvalidAssignment(f"courier {courier.id}: a bundle needs distinct orders, got {ids}")
        if now < courier.on_time:
            raise InvalidAssignment(f"courier {courier.id} is not on duty before {courier.on_time}")
        current = run.current
        kept: tuple[str, ...]
        if current is None:
            origin, departs_at, kept = run.position, now, ()
        elif now < current.trip.pickup_at:
            origin, departs_at, kept = current.trip.origin, current.trip.departs_at, current.trip.order_ids
            if not set(kept) <= set(ids):
                raise InvalidAssignment(f"courier {courier.id}: an update must keep the orders {kept}")
        else:
            raise InvalidAssignment(f"courier {courier.id} is on a trip already picked up at {now}")
        for order_id in ids:
            if order_id not in self.open and order_id not in kept:
                raise InvalidAssignment(f"order {order_id} is not open (not placed yet, or assigned)")
        orders = [self.orders[order_id] for order_id in ids]
        if len({order.restaurant_id for order in orders}) != 1:
            raise InvalidAssignment(f"courier {courier.id}: bundle {ids} spans several restaurants")
        trip = plan_trip(
            self.instance, courier_id=courier.id, origin=origin, departs_at=departs_at, orders=orders
        )
        if trip.pickup_at > courier.off_time:
            raise InvalidAssignment(
                f"courier {courier.id} would pick up at {trip.pickup_at}, after going off duty at {courier.off_time}"
            )
        for order_id in ids:
            self.open.pop(order_id, None)
        run.current = AssignedTrip(trip, now)
        self._schedule([trip.free_at])
