"""`optimized` plans over the routing solver (VROOM) and commits only the trips that must start now: it
bundles same-restaurant orders where one courier serves both best, waits for a near courier about to be
free rather than sending a far idle one, and keeps every MDRP rule on a real instance."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from doorstep.dispatch.simulation.engine import Delivery, Simulation
from doorstep.dispatch.simulation.instance import (
    Courier,
    Instance,
    Order,
    Parameters,
    Point,
    Restaurant,
    load_instance,
)
from doorstep.dispatch.simulation.metrics import compute_metrics
from doorstep.dispatch.simulation.optimized import OptimizedPolicy
from doorstep.dispatch.simulation.policies import NearestPolicy, make_policy

# 100 m a minute, pickup service 4 (half: 2), drop-off service 2 (half: 1), target 40, maximum 90.
PARAMETERS = Parameters(100, 4, 2, 40, 90, 10, 15)
RESTAURANTS = {"rA": Restaurant("rA", Point(0, 0)), "rC": Restaurant("rC", Point(0, 1000))}
BENCH_DATA = Path(
    os.environ.get("DOORSTEP_BENCH_DATA", Path(__file__).resolve().parents[3] / ".." / "shared" / "bench")
)
INSTANCE = BENCH_DATA / "mdrp" / "0r50t75s1p100"


def instance(orders: Sequence[Order], couriers: Sequence[Courier]) -> Instance:
    return Instance("tiny", tuple(orders), RESTAURANTS, tuple(couriers), PARAMETERS)


def test_two_orders_of_one_restaurant_ride_with_the_near_courier() -> None:
    # given two orders at rA ready at 10, dropped 5 and 6 minutes away, c1 3 minutes from rA, c2 11
    day = instance(
        [
            Order("o1", Point(0, 500), placement_time=0, restaurant_id="rA", ready_time=10),
            Order("o2", Point(0, 600), placement_time=1, restaurant_id="rA", ready_time=10),
        ],
        [
            Courier("c1", Point(0, 300), on_time=0, off_time=60),
            Courier("c2", Point(1000, 400), on_time=0, off_time=60),
        ],
    )
    policy = OptimizedPolicy(day)

    # when `optimized` dispatches
    deliveries = Simulation(day, policy).run().deliveries()

    # then c1 takes both in one trip, committed the epoch before it must leave (5, to be at rA at
    # 8 = 10 - 2): pickup 10, o1 at 12 + 5 + 1 = 18, o2 at 19 + 1 + 1 = 21
    assert deliveries == {
        "o1": Delivery("o1", "c1", assigned_at=4, pickup_at=10, dropoff_at=18),
        "o2": Delivery("o2", "c1", assigned_at=4, pickup_at=10, dropoff_at=21),
    }


def near_courier_soon_free() -> Instance:
    """c1 starts at rA with o1 (dropped 5 minutes away, free at 11, 5 minutes from rC); c2 is 30 minutes
    from rC, where o2 is ready at 15."""
    return instance(
        [
            Order("o1", Point(0, 500), placement_time=0, restaurant_id="rA", ready_time=0),
            Order("o2", Point(0, 1500), placement_time=1, restaurant_id="rC", ready_time=15),
        ],
        [
            Courier("c1", Point(0, 0), on_time=0, off_time=60),
            Courier("c2", Point(3000, 1000), on_time=0, off_time=60),
        ],
    )


def test_nearest_sends_the_far_idle_courier() -> None:
    # given o2 due at once for c2 (at rC at 31), c1 busy
    day = near_courier_soon_free()

    # when `nearest` dispatches
    deliveries = Simulation(day, NearestPolicy(day)).run().deliveries()

    # then c2 takes o2: pickup 33, drop-off 33 + 2 + 5 + 1 = 41, 40 minutes after placement
    assert deliveries["o2"] == Delivery("o2", "c2", assigned_at=1, pickup_at=33, dropoff_at=41)


def test_optimized_waits_for_the_near_courier_about_to_be_free() -> None:
    # given the same day
    day = near_courier_soon_free()

    # when `optimized` dispatches
    deliveries = Simulation(day, OptimizedPolicy(day)).run().deliveries()

    # then c1 delivers o1 (pickup 2, at 2 + 2 + 5 + 1 = 10, free at 11) and then o2: at rC at 16, pickup
    # at 18, drop-off at 18 + 2 + 5 + 1 = 26, 15 minutes sooner than the far courier
    assert deliveries == {
        "o1": Delivery("o1", "c1", assigned_at=0, pickup_at=2, dropoff_at=10),
        "o2": Delivery("o2", "c1", assigned_at=11, pickup_at=18, dropoff_at=26),
    }


def test_optimized_grows_a_bundle_not_picked_up_yet() -> None:
    # given c1 sent at 5 for o1 (ready 10, 3 minutes away), and o2 of the same restaurant placed at 6,
    # ready at 10, dropped beside o1; c2 too far to do better
    day = instance(
        [
            Order("o1", Point(0, 500), placement_time=0, restaurant_id="rA", ready_time=10),
            Order("o2", Point(0, 600), placement_time=6, restaurant_id="rA", ready_time=10),
        ],
        [
            Courier("c1", Point(0, 300), on_time=0, off_time=60),
            Courier("c2", Point(2000, 0), on_time=0, off_time=60),
        ],
    )

    # when `optimized` dispatches
    deliveries = Simulation(day, OptimizedPolicy(day)).run().deliveries()

    # then o2 joins c1's bundle at its placement: o1 still at 18, o2 at 21
    assert deliveries == {
        "o1": Delivery("o1", "c1", assigned_at=6, pickup_at=10, dropoff_at=18),
        "o2": Delivery("o2", "c1", assigned_at=6, pickup_at=10, dropoff_at=21),
    }


def test_a_courier_going_off_duty_before_the_pickup_is_not_waited_for() -> None:
    # given o1 at rA ready at 30; c1 waits at rA but goes off duty at 20, c2 is 10 minutes away
    day = instance(
        [Order("o1", Point(0, 500), placement_time=0, restaurant_id="rA", ready_time=30)],
        [
            Courier("c1", Point(0, 0), on_time=0, off_time=20),
            Courier("c2", Point(1000, 0), on_time=0, off_time=60),
        ],
    )
    policy = OptimizedPolicy(day)

    # when `optimized` dispatches (the solver, which has no last pickup time per courier, plans c1)
    deliveries = Simulation(day, policy).run().deliveries()

    # then c2 is sent once o1 is due for it (30 <= 18 + 10 + 2): at rA at 28, pickup 30, drop-off 38
    assert deliveries == {"o1": Delivery("o1", "c2", assigned_at=18, pickup_at=30, dropoff_at=38)}
    assert policy.rescues == 1


def test_optimized_is_registered_as_a_policy() -> None:
    # given a tiny day
    day = near_courier_soon_free()

    # when the policy is made by name
    policy = make_policy("optimized", day)

    # then it is the rolling-horizon policy
    assert (type(policy), policy.name) == (OptimizedPolicy, "optimized")


@pytest.mark.skipif(not INSTANCE.is_dir(), reason=f"the MDRP benchmark data is not at {INSTANCE}")
def test_a_real_morning_keeps_every_rule_and_delivers_every_order() -> None:
    # given the first 40 orders of Grubhub's 0r50t75s1p100 with all its couriers
    full = load_instance(INSTANCE)
    first = sorted(full.orders, key=lambda order: (order.placement_time, order.id))[:40]
    day = replace(full, orders=tuple(first))
    policy = OptimizedPolicy(day)

    # when simulated offline (the engine raises InvalidAssignment on any illegal assignment)
    result = Simulation(day, policy).run()
    metrics = compute_metrics(result)

    # then every order is delivered once, each picked up after it is ready and before the courier's
    # shift ends, within the 90-minute maximum, and the solver planned at least one epoch
    couriers = {courier.id: courier for courier in day.couriers}
    orders = {order.id: order for order in day.orders}
    deliveries = result.deliveries()
    assert (metrics["orders_delivered"], metrics["orders_total"]) == (40, 40)
    assert sorted(deliveries) == sorted(orders)
    assert [
        one.order_id
        for one in deliveries.values()
        if one.pickup_at < orders[one.order_id].ready_time
        or one.pickup_at > couriers[one.courier_id].off_time
        or one.dropoff_at - orders[one.order_id].placement_time > PARAMETERS.maximum_click_to_door
    ] == []
    assert policy.solves > 0
