"""A real Grubhub instance runs offline under each policy, delivers every order, and passes the checks of
Grubhub's evaluator, recomputed here independently of the engine."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import pytest

from doorstep.dispatch.simulation.engine import Simulation, SimulationResult
from doorstep.dispatch.simulation.instance import Instance, Point, load_instance
from doorstep.dispatch.simulation.metrics import compute_metrics
from doorstep.dispatch.simulation.policies import POLICIES, make_policy
from doorstep.dispatch.simulation.routes import Trip

BENCH_DATA = Path(
    os.environ.get("DOORSTEP_BENCH_DATA", Path(__file__).resolve().parents[3] / ".." / "shared" / "bench")
)
INSTANCE = BENCH_DATA / "mdrp" / "0r50t100s1p100"


def minutes(a: Point, b: Point, speed: float) -> int:
    return math.ceil(math.sqrt((a.x - b.x) ** 2 + (a.y - b.y) ** 2) / speed)


def evaluator_violations(instance: Instance, result: SimulationResult) -> list[str]:
    """The evaluator's feasibility conditions (MDRPInstances.pdf, section 2.1), from the trips alone."""
    orders = {order.id: order for order in instance.orders}
    couriers = {courier.id: courier for courier in instance.couriers}
    restaurants = instance.restaurants
    p = instance.parameters
    problems: list[str] = []
    seen: set[str] = set()
    by_courier: dict[str, list[Trip]] = {}
    for one in result.trips:
        trip = one.trip
        by_courier.setdefault(trip.courier_id, []).append(trip)
        for order_id in trip.order_ids:
            if order_id in seen:
                problems.append(f"{order_id} assigned twice")
            seen.add(order_id)
            if one.assigned_at < orders[order_id].placement_time:
                problems.append(f"{order_id} assigned before placement")
            if trip.pickup_at < orders[order_id].ready_time:
                problems.append(f"{order_id} picked up before ready")
            if orders[order_id].restaurant_id != trip.restaurant_id:
                problems.append(f"{order_id} picked up at the wrong restaurant")
        if trip.pickup_at > couriers[trip.courier_id].off_time:
            problems.append(f"{trip.courier_id} picks up after off-time")
    for courier_id, trips in by_courier.items():
        trips.sort(key=lambda trip: trip.departs_at)
        here, free = couriers[courier_id].on_location, float(couriers[courier_id].on_time)
        for trip in trips:
            if trip.origin != here or trip.departs_at < free:
                problems.append(f"{courier_id} teleports or leaves before it is free at {trip.departs_at}")
            arrives = trip.departs_at + minutes(
                here, restaurants[trip.restaurant_id].location, p.meters_per_minute
            )
            if trip.pickup_at < arrives + p.pickup_service_minutes / 2:
                problems.append(f"{courier_id} picks up before arriving and parking")
            clock, here = (
                trip.pickup_at + p.pickup_service_minutes / 2,
                restaurants[trip.restaurant_id].location,
            )
            for order_id, dropoff in zip(trip.order_ids, trip.dropoffs_at, strict=True):
                clock += (
                    minutes(here, orders[order_id].drop_off, p.meters_per_minute)
                    + p.dropoff_service_minutes / 2
                )
                if dropoff != clock:
                    problems.append(f"{order_id} dropped off at {dropoff}, the drive says {clock}")
                clock += p.dropoff_service_minutes / 2
                here = orders[order_id].drop_off
            free = clock
    return problems


@pytest.mark.skipif(not INSTANCE.is_dir(), reason=f"the MDRP benchmark data is not at {INSTANCE}")
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_real_instance_delivers_every_order_feasibly(policy: str) -> None:
    # given Grubhub's instance 0r50t100s1p100 (242 orders, 61 couriers); for the optimiser, whose full day
    # takes ~20 s on a busy machine, its first four hours (54 orders; bench/mdrp.py runs whole days)
    instance = load_instance(INSTANCE)
    if policy == "optimized":
        opening = min(order.placement_time for order in instance.orders)
        instance = replace(
            instance, orders=tuple(o for o in instance.orders if o.placement_time < opening + 4 * 60)
        )
    total = 54 if policy == "optimized" else 242

    # when simulated offline under the policy
    result = Simulation(instance, make_policy(policy, instance)).run()
    metrics = compute_metrics(result)

    # then every order is delivered and the evaluator's checks find nothing wrong
    assert (metrics["orders_delivered"], metrics["orders_total"]) == (total, total)
    assert evaluator_violations(instance, result) == []


@pytest.mark.skipif(not INSTANCE.is_dir(), reason=f"the MDRP benchmark data is not at {INSTANCE}")
def test_the_checker_catches_a_pickup_before_ready_and_a_late_pickup() -> None:
    # given a feasible day, then its first trip forged to pick up one minute early, after the courier's shift
    instance = load_instance(INSTANCE)
    result = Simulation(instance, make_policy("nearest", instance)).run()
    first = result.trips[0]
    courier = next(one for one in instance.couriers if one.id == first.trip.courier_id)
    latest = max(
        (one for one in instance.orders if one.id in first.trip.order_ids), key=lambda one: one.ready_time
    )
    early = replace(first, trip=replace(first.trip, pickup_at=latest.ready_time - 1))
    late = replace(first, trip=replace(first.trip, pickup_at=courier.off_time + 1))

    # when checked, then each forgery is found
    assert f"{latest.id} picked up before ready" in evaluator_violations(
        instance, replace(result, trips=(early, *result.trips[1:]))
    )
    assert f"{courier.id} picks up after off-time" in evaluator_violations(
        instance, replace(result, trips=(late, *result.trips[1:]))
    )
