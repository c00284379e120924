"""How the policies differ: `cautious` declines a bundle a free courier serves better, `batched` matches
the epoch's orders to couriers at least total cost where `nearest` takes them one by one."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from doorstep.dispatch.simulation.engine import Delivery, Simulation
from doorstep.dispatch.simulation.instance import Courier, Instance, Order, Parameters, Point, Restaurant
from doorstep.dispatch.simulation.policies import BatchedPolicy, CautiousPolicy, NearestPolicy, make_policy

# 100 m a minute, pickup service 4 (half: 2), drop-off service 2 (half: 1), target 20.
PARAMETERS = Parameters(100, 4, 2, 20, 90, 10, 15)
RESTAURANTS = {"rA": Restaurant("rA", Point(0, 0)), "rB": Restaurant("rB", Point(1000, 0))}


def instance(orders: Sequence[Order], couriers: Sequence[Courier]) -> Instance:
    return Instance("tiny", tuple(orders), RESTAURANTS, tuple(couriers), PARAMETERS)


def two_orders_at_one_restaurant() -> Instance:
    """c1 is 3 minutes from rA, c2 11; rA -> o1 5, rA -> o2 8, o2 -> o1 3."""
    return instance(
        [
            Order("o1", Point(0, 500), placement_time=0, restaurant_id="rA", ready_time=10),
            Order("o2", Point(0, 800), placement_time=2, restaurant_id="rA", ready_time=8),
        ],
        [
            Courier("c1", Point(0, 300), on_time=0, off_time=60),
            Courier("c2", Point(1000, 400), on_time=0, off_time=60),
        ],
    )


def test_nearest_bundles_whenever_no_earlier_order_gets_late() -> None:
    # given o2 due for c1 at 3 (pickup 8, o2 dropped at 19), and o1 open at the same restaurant
    day = two_orders_at_one_restaurant()

    # when `nearest` dispatches
    deliveries = Simulation(day, NearestPolicy(day)).run().deliveries()

    # then o1 rides along: pickup waits for it (10), o2 at 21 (still within 2 + 20), o1 last at 26
    assert deliveries == {
        "o1": Delivery("o1", "c1", assigned_at=3, pickup_at=10, dropoff_at=26),
        "o2": Delivery("o2", "c1", assigned_at=3, pickup_at=10, dropoff_at=21),
    }


def test_cautious_sends_a_free_courier_when_bundling_serves_worse() -> None:
    # given the same day; bundling o1 would cost (19 + 26 - 17) click-to-door + 2 x 6 overage = 40,
    # c2 alone: at rA 14, pickup 16, o1 at 18 + 5 + 1 = 24, cost 24 + 2 x 4 = 32
    day = two_orders_at_one_restaurant()

    # when `cautious` dispatches
    deliveries = Simulation(day, CautiousPolicy(day)).run().deliveries()

    # then c2 takes o1 and c1 delivers o2 alone, both assigned at 3
    assert deliveries == {
        "o1": Delivery("o1", "c2", assigned_at=3, pickup_at=16, dropoff_at=24),
        "o2": Delivery("o2", "c1", assigned_at=3, pickup_at=8, dropoff_at=19),
    }


def competing_orders() -> Instance:
    """c1 is 5 minutes from both restaurants, c2 10 from rA and 20 from rB; each drop-off is 5 away."""
    return instance(
        [
            Order("oA", Point(0, 500), placement_time=0, restaurant_id="rA", ready_time=0),
            Order("oB", Point(1000, 500), placement_time=0, restaurant_id="rB", ready_time=0),
        ],
        [
            Courier("c1", Point(500, 0), on_time=0, off_time=60),
            Courier("c2", Point(-1000, 0), on_time=0, off_time=60),
        ],
    )


def test_nearest_takes_orders_one_by_one() -> None:
    # given two orders due at 0 and c1 equally near both restaurants
    day = competing_orders()

    # when `nearest` dispatches, then oA (first by id at equal ready times) takes c1, leaving c2 a
    # 20-minute drive to rB: oB picked up at 22 and dropped off at 24 + 5 + 1
    assert Simulation(day, NearestPolicy(day)).run().deliveries() == {
        "oA": Delivery("oA", "c1", assigned_at=0, pickup_at=7, dropoff_at=15),
        "oB": Delivery("oB", "c2", assigned_at=0, pickup_at=22, dropoff_at=30),
    }


def test_batched_matches_the_epoch_at_least_total_cost() -> None:
    # given the same two orders
    day = competing_orders()

    # when `batched` dispatches, then c1 goes to rB and c2 to rA (10 minutes): 15 + 20 instead of 15 + 30
    assert Simulation(day, BatchedPolicy(day)).run().deliveries() == {
        "oA": Delivery("oA", "c2", assigned_at=0, pickup_at=12, dropoff_at=20),
        "oB": Delivery("oB", "c1", assigned_at=0, pickup_at=7, dropoff_at=15),
    }


def test_an_unknown_policy_is_named() -> None:
    with pytest.raises(
        ValueError, match="unknown policy 'optimal'; choose one of nearest, cautious, batched"
    ):
        make_policy("optimal", competing_orders())
