"""`optimized`: a rolling horizon over the routing solver, committing only the trips that must start now.

At each epoch the open orders become pickup-and-delivery shipments and the couriers vehicles: an idle
courier starts where they are now, a courier whose bundle is not picked up yet starts where that trip
started (its orders pinned to them by a skill, so the plan may only grow the bundle), a courier on a
picked-up trip starts where and when it ends. Times are seconds of the day. A drop-off's service is the
MDRP's, its window shifted by half of it; the pickup service is added to every leg leaving a restaurant
instead, so that a bundle of one restaurant costs one pickup service, as in the engine, and the solver's
schedule is exactly the engine's. The routing model has hard windows only, and VROOM no lateness cost: each drop-off must be
within `slack_minutes` of the earliest any courier could make it (never past the 90-minute maximum
unless even the earliest is), so lateness is bounded by constraints and the solver minimises the metres
driven among the plans that keep them. `from_earliest=False` uses the 40-minute target instead when it
can still be met (more bundling, and more overage on two of the three instances measured).

From the plan, a route's first trip (its leading pickups at one restaurant) becomes an `Assignment` only
when the courier must leave within `commit_minutes` to make its planned pickup; the rest of the plan is
made again at the next epoch, with what has happened since. A due order the plan leaves out, or gives to
a courier whose shift ends before the planned pickup, goes to the nearest idle courier (`_rescue`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from doorstep.dispatch.routing.model import (
    Job,
    Plan,
    Problem,
    Stop,
    StopKind,
    TimeWindow,
    TravelMatrices,
    Vehicle,
    Visit,
)
from doorstep.dispatch.simulation.bundling import EpochPlan
from doorstep.dispatch.simulation.instance import Instance, Order, Point
from doorstep.dispatch.simulation.routes import Trip, plan_trip
from doorstep.dispatch.simulation.state import Assignment, CourierState, DispatchState

RoutingSolver = Callable[[Problem], Plan]
SECONDS = 60
CAPACITY = 1000  # the MDRP limits neither bundle size nor load
OPEN_PRIORITY = 50
PINNED_PRIORITY = 100


def vroom_solver(time_limit: float | None) -> RoutingSolver:
    from doorstep.dispatch.routing import vroom_solver as vroom

    def solve(problem: Problem) -> Plan:
        return vroom.solve(problem, time_limit=time_limit)

    return solve


@dataclass(frozen=True, slots=True)
class _Available:
    """A courier as a vehicle of this epoch's problem: from where and when they can start."""

    state: CourierState
    origin: Point
    at: float
    pinned: Trip | None  # the bundle not picked up yet, which the plan may only grow


class OptimizedPolicy:
    name = "optimized"

    def __init__(
        self,
        instance: Instance,
        *,
        solver: RoutingSolver | None = None,
        time_limit: float | None = None,
        commit_minutes: float = 1.0,
        slack_minutes: float = 5.0,
        from_earliest: bool = True,
    ) -> None:
        self.from_earliest = from_earliest
        self.instance = instance
        self.orders = {order.id: order for order in instance.orders}
        self.solver = solver or vroom_solver(time_limit)
        self.commit_minutes = commit_minutes
        self.slack_minutes = slack_minutes
        self.solves = 0
        self.rescues = 0

    def decide(self, state: DispatchState) -> Sequence[Assignment]:
        if not state.open_orders:
            return []
        available = self._available(state)
        if not any(one.state.trip is None or one.pinned is not None for one in available):
            return []
        problem = _ProblemBuilder(self, state, available).build()
        self.solves += 1
        plan = self.solver(problem)
        epoch = EpochPlan.of(state, self.orders)
        by_id = {one.state.courier.id: one for one in available}
        for courier_id in sorted(plan.routes):
            trip = self._first_trip(state, by_id[courier_id], plan.routes[courier_id])
            if trip is not None:
                if courier_id in epoch.idle:
                    epoch.idle.pop(courier_id)
                epoch.keep(trip)
        self._rescue(state, epoch, plan, by_id)
        return epoch.assignments()

    def _rescue(
        self, state: DispatchState, epoch: EpochPlan, plan: Plan, by_id: dict[str, _Available]
    ) -> None:
        """Send the nearest idle courier for a due order the plan leaves out or gives to a courier whose
        shift ends before the planned pickup (the routing model has no per-vehicle last pickup time)."""
        committed = {order_id for trip in epoch.open_trips.values() for order_id in trip.order_ids}
        half_pickup = self.instance.parameters.pickup_service_minutes / 2
        planned: dict[str, bool] = {}
        for courier_id, visits in plan.routes.items():
            off = by_id[courier_id].state.courier.off_time
            for visit in visits:
                if visit.kind is StopKind.PICKUP:
                    planned[visit.job_id] = visit.start / SECONDS + half_pickup <= off
        for order in state.open_orders:
            if order.id in committed or planned.get(order.id, False):
                continue
            restaurant = self.instance.restaurants[order.restaurant_id].location
            choices = sorted(
                (self.instance.travel_minutes(one.position, restaurant), courier_id)
                for courier_id, one in epoch.idle.items()
                if max(
                    state.now + self.instance.travel_minutes(one.position, restaurant) + half_pickup,
                    order.ready_time,
                )
                <= one.courier.off_time
            )
            if choices and order.ready_time <= state.now + choices[0][0] + half_pickup:
                self.rescues += 1
                epoch.start(choices[0][1], [order])

    def _available(self, state: DispatchState) -> list[_Available]:
        out: list[_Available] = []
        for courier in state.couriers:
            off = courier.courier.off_time
            if courier.trip is None:
                if state.now <= off:
                    out.append(_Available(courier, courier.position, state.now, None))
            elif courier.can_extend(state.now):
                trip = courier.trip
                out.append(_Available(courier, trip.origin, trip.departs_at, trip))
            elif courier.free_at < off:
                out.append(_Available(courier, courier.position, courier.free_at, None))
        return out

    def _first_trip(self, state: DispatchState, courier: _Available, visits: Sequence[Visit]) -> Trip | None:
        """The route's leading trip as the engine would run it, if it must be committed now."""
        if courier.state.trip is not None and courier.pinned is None:
            return None  # busy on a picked-up trip: the plan for them is a forecast only
        pickups: list[Order] = []
        for visit in visits:
            if visit.kind is not StopKind.PICKUP:
                break
            order = self.orders[visit.job_id]
            if pickups and order.restaurant_id != pickups[0].restaurant_id:
                break
            pickups.append(order)
        if not pickups:
            return None
        rank = {visit.job_id: n for n, visit in enumerate(visits) if visit.kind is StopKind.DELIVERY}
        bundle = sorted(pickups, key=lambda order: rank.get(order.id, len(visits)))
        off = courier.state.courier.off_time
        if courier.pinned is not None:
            return self._grown(courier.pinned, bundle, off)
        restaurant = self.instance.restaurants[bundle[0].restaurant_id].location
        drive = self.instance.travel_minutes(courier.origin, restaurant)
        leave_by = visits[0].start / SECONDS - drive  # the service start is the arrival or later
        if leave_by > state.now + self.commit_minutes:
            return None
        trip = plan_trip(
            self.instance,
            courier_id=courier.state.courier.id,
            origin=courier.origin,
            departs_at=state.now,
            orders=bundle,
        )
        return trip if trip.pickup_at <= off else None

    def _grown(self, before: Trip, bundle: Sequence[Order], off: int) -> Trip | None:
        """The pinned trip grown to `bundle`, if that keeps every order in it from getting late."""
        ids = {order.id for order in bundle}
        if ids == set(before.order_ids) or not set(before.order_ids) <= ids:
            return None
        if bundle[0].restaurant_id != before.restaurant_id:
            return None
        trip = plan_trip(
            self.instance,
            courier_id=before.courier_id,
            origin=before.origin,
            departs_at=before.departs_at,
            orders=bundle,
        )
        target = self.instance.parameters.target_click_to_door
        late = any(
            trip.dropoff_of(order_id)
            > max(before.dropoff_of(order_id), self.orders[order_id].placement_time + target)
            for order_id in before.order_ids
        )
        return None if late or trip.pickup_at > off else trip


class _ProblemBuilder:
    """The routing `Problem` of one epoch; location 0 is a point at no distance from all, the routes' end;
    a restaurant is a location of its own even where a courier or a drop-off is at the same point."""

    def __init__(self, policy: OptimizedPolicy, state: DispatchState, available: list[_Available]) -> None:
        self.instance = policy.instance
        self.orders = policy.orders
        self.slack = policy.slack_minutes
        self.from_earliest = policy.from_earliest
        self.state = state
        self.available = available
        self.points: list[Point | None] = [None]
        self.index: dict[tuple[str, Point], int] = {}
        self.restaurants: set[int] = set()

    def build(self) -> Problem:
        parameters = self.instance.parameters
        horizon = parameters.maximum_click_to_door + parameters.dropoff_service_minutes
        vehicles = []
        jobs: list[Job] = []
        for one in self.available:
            courier = one.state.courier
            skills: frozenset[str] = frozenset()
            if one.pinned is not None:
                skills = frozenset({f"pinned:{courier.id}"})
                for order_id in one.pinned.order_ids:
                    deadline = max(
                        one.pinned.dropoff_of(order_id),
                        self.orders[order_id].placement_time + parameters.target_click_to_door,
                    )
                    jobs.append(self._job(self.orders[order_id], deadline, skills, PINNED_PRIORITY))
            vehicles.append(
                Vehicle(
                    id=courier.id,
                    capacity=(CAPACITY,),
                    start=self._location(one.origin),
                    end=0,
                    shift=TimeWindow(_seconds(one.at), _seconds(max(one.at, courier.off_time) + horizon)),
                    skills=skills,
                )
            )
        for order in self.state.open_orders:
            jobs.append(self._job(order, self._deadline(order), frozenset(), OPEN_PRIORITY))
        return Problem(tuple(jobs), tuple(vehicles), {"car": self._matrices()})

    def _deadline(self, order: Order) -> float:
        """The latest drop-off allowed: the target, or the earliest any courier can make plus slack."""
        parameters = self.instance.parameters
        target = order.placement_time + parameters.target_click_to_door
        maximum = order.placement_time + parameters.maximum_click_to_door
        restaurant = self.instance.restaurants[order.restaurant_id].location
        half_pickup = parameters.pickup_service_minutes / 2
        tail = half_pickup + self.instance.travel_minutes(restaurant, order.drop_off)
        tail += parameters.dropoff_service_minutes / 2
        earliest = min(
            (
                max(
                    one.at + self.instance.travel_minutes(one.origin, restaurant) + half_pickup,
                    order.ready_time,
                )
                for one in self.available
                if one.pinned is None or one.pinned.restaurant_id == order.restaurant_id
            ),
            default=maximum,
        )
        earliest += tail
        if self.from_earliest:
            return max(min(earliest + self.slack, maximum), earliest)
        if earliest <= target:
            return target
        return max(min(earliest + self.slack, maximum), earliest)

    def _job(self, order: Order, deadline: float, skills: frozenset[str], priority: int) -> Job:
        parameters = self.instance.parameters
        half_pickup = parameters.pickup_service_minutes / 2
        half_dropoff = parameters.dropoff_service_minutes / 2
        restaurant = self.instance.restaurants[order.restaurant_id].location
        latest = _seconds(deadline - half_dropoff)
        return Job(
            id=order.id,
            size=(1,),
            pickup=Stop(
                self._location(restaurant, at_restaurant=True),
                (TimeWindow(max(0, _seconds(order.ready_time - half_pickup)), latest),),
                0,
            ),
            delivery=Stop(
                self._location(order.drop_off),
                (TimeWindow(0, latest),),
                _seconds(parameters.dropoff_service_minutes),
            ),
            skills=skills,
            priority=priority,
        )

    def _location(self, point: Point, *, at_restaurant: bool = False) -> int:
        key = ("restaurant" if at_restaurant else "", point)
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.points)
            self.points.append(point)
            if at_restaurant:
                self.restaurants.add(found)
        return found

    def _matrices(self) -> TravelMatrices:
        """Durations in whole minutes as the engine counts them; distances in exact metres, the solver's
        cost, which leaves far fewer equal-cost plans than minutes would (VROOM breaks such ties
        differently from run to run within one process)."""
        durations: list[tuple[int, ...]] = []
        distances: list[tuple[int, ...]] = []
        pickup = _seconds(self.instance.parameters.pickup_service_minutes)
        for here, origin in enumerate(self.points):
            service = pickup if here in self.restaurants else 0
            durations.append(
                tuple(
                    self._minutes(origin, destination) + (service if there != here else 0)
                    for there, destination in enumerate(self.points)
                )
            )
            distances.append(tuple(_metres(origin, destination) for destination in self.points))
        return TravelMatrices(durations=tuple(durations), distances=tuple(distances))

    def _minutes(self, origin: Point | None, destination: Point | None) -> int:
        if origin is None or destination is None:
            return 0
        return SECONDS * self.instance.travel_minutes(origin, destination)


def _metres(origin: Point | None, destination: Point | None) -> int:
    if origin is None or destination is None:
        return 0
    return round(math.hypot(destination.x - origin.x, destination.y - origin.y))


def _seconds(minutes: float) -> int:
    return round(minutes * SECONDS)
