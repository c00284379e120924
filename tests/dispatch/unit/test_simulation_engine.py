"""The offline MDRP engine under `nearest`: an exact timeline worked out by hand, and the rules it enforces."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from doorstep.dispatch.simulation.engine import Delivery, Simulation
from doorstep.dispatch.simulation.instance import Courier, Instance, Order, Parameters, Point, Restaurant
from doorstep.dispatch.simulation.metrics import compute_metrics
from doorstep.dispatch.simulation.policies import NearestPolicy
from doorstep.dispatch.simulation.state import Assignment, DispatchState, InvalidAssignment

# 100 m a minute, pickup service 4 (half: 2), drop-off service 2 (half: 1), target 20, pay 10 / 15 an hour.
PARAMETERS = Parameters(100, 4, 2, 20, 90, 10, 15)
RESTAURANT_A = Restaurant("rA", Point(0, 0))
RESTAURANT_B = Restaurant("rB", Point(1000, 0))


def instance(orders: Sequence[Order], couriers: Sequence[Courier]) -> Instance:
    return Instance(
        "tiny", tuple(orders), {"rA": RESTAURANT_A, "rB": RESTAURANT_B}, tuple(couriers), PARAMETERS
    )


def tiny_day() -> Instance:
    """Two restaurants, three orders, two couriers; drives in minutes:
    c1 -> rA 3, c2 -> rA 11 (1077 m), c2 -> rB 4, rA -> o1 5, rA -> o2 8, o2 -> o1 3, rB -> o3 6."""
    return instance(
        [
            Order("o1", Point(0, 500), placement_time=0, restaurant_id="rA", ready_time=10),
            Order("o2", Point(0, 800), placement_time=2, restaurant_id="rA", ready_time=8),
            Order("o3", Point(1000, 600), placement_time=5, restaurant_id="rB", ready_time=15),
        ],
        [
            Courier("c1", Point(0, 300), on_time=0, off_time=60),
            Courier("c2", Point(1000, 400), on_time=0, off_time=60),
        ],
    )


class Scripted:
    """A policy that sends, at given epochs, given assignments (to test the engine's rules)."""

    name = "scripted"

    def __init__(self, script: dict[float, list[Assignment]]) -> None:
        self.script = script

    def decide(self, state: DispatchState) -> Sequence[Assignment]:
        return self.script.get(state.now, [])


def test_nearest_bundles_same_restaurant_and_times_every_step_by_the_rules() -> None:
    # given the tiny day under `nearest`
    day = tiny_day()

    # when it is simulated
    result = Simulation(day, NearestPolicy(day)).run()

    # then, by hand:
    # t=0..2 no order is due (o1 ready 10 > now + 3 + 2; o2 placed at 2, ready 8 > 2 + 3 + 2);
    # t=3  o2 is due for c1 (8 <= 3 + 3 + 2): leaves (0,300) at 3, at rA 6, pickup max(6+2, 8) = 8;
    #      o1 (same restaurant, open) joins c1's bundle: [o1, o2] would drop o2 at 23 > max(19, 2 + 20),
    #      late, so [o2, o1]: pickup max(8, 10) = 10, leave 12, o2 at 12+8+1 = 21, o1 at 22+3+1 = 26, free 27;
    # t=9  o3 is due for c2, the only idle courier (15 <= 9 + 4 + 2): at rB 13, pickup max(15, 15) = 15,
    #      leave 17, o3 at 17+6+1 = 24, free 25.
    assert result.deliveries() == {
        "o1": Delivery("o1", "c1", assigned_at=3, pickup_at=10, dropoff_at=26),
        "o2": Delivery("o2", "c1", assigned_at=3, pickup_at=10, dropoff_at=21),
        "o3": Delivery("o3", "c2", assigned_at=9, pickup_at=15, dropoff_at=24),
    }
    (first, second) = result.trips
    assert (first.trip.order_ids, first.trip.arrives_at_restaurant, first.trip.free_at) == (
        ("o2", "o1"),
        6,
        27,
    )
    assert (first.trip.driving_minutes, first.trip.end) == (3 + 8 + 3, Point(0, 500))
    assert (second.trip.order_ids, second.trip.arrives_at_restaurant, second.trip.free_at) == (
        ("o3",),
        13,
        25,
    )


def test_the_tiny_day_metrics_are_the_papers_formulas() -> None:
    # given the tiny day simulated under `nearest` (timeline in the test above)
    day = tiny_day()
    result = Simulation(day, NearestPolicy(day)).run()

    # when its metrics are computed
    metrics = compute_metrics(result)

    # then click-to-door is o1 26-0, o2 21-2, o3 24-5 = [26, 19, 19]: mean 64/3, p90 at rank 1.8 of
    # [19, 19, 26] = 19 + 0.8 x 7 = 24.6; overage over 20: [6, 0, 0] -> 2; ready-to-pickup [0, 2, 0];
    # utilisation c1 (14 driving + 4 pickup + 2 x 2 drop-off) / 60, c2 (10 + 4 + 2) / 60: mean 19/60;
    # orders per hour c1 2, c2 1; pay c1 max(2 x 10, 15) = 20, c2 max(10, 15) = 15
    assert metrics == {
        "orders_delivered": 3,
        "orders_total": 3,
        "click_to_door_mean_min": 21.3333,
        "click_to_door_p90_min": 24.6,
        "click_to_door_overage_mean_min": 2.0,
        "ready_to_pickup_mean_min": 0.6667,
        "courier_utilization": 0.3167,
        "orders_per_courier_hour": 1.5,
        "courier_pay_total": 35.0,
    }


def test_no_courier_picks_up_after_going_off_duty() -> None:
    # given an order ready at 20 and the one courier off duty at 15
    day = instance(
        [Order("o1", Point(0, 500), placement_time=0, restaurant_id="rA", ready_time=20)],
        [Courier("c1", Point(0, 0), on_time=0, off_time=15)],
    )

    # when `nearest` dispatches the day, and when a policy insists at time 1
    result = Simulation(day, NearestPolicy(day)).run()
    insisting = Simulation(day, Scripted({1: [Assignment("c1", ("o1",))]}))

    # then the order is never delivered, and the insisting policy is refused
    assert compute_metrics(result)["orders_delivered"] == 0
    with pytest.raises(InvalidAssignment, match="after going off duty at 15"):
        insisting.run()


def test_a_courier_early_at_the_restaurant_waits_for_the_food() -> None:
    # given a courier 3 minutes from rA and an order ready at 30, assigned at time 0
    day = instance(
        [Order("o1", Point(0, 500), placement_time=0, restaurant_id="rA", ready_time=30)],
        [Courier("c1", Point(0, 300), on_time=0, off_time=60)],
    )

    # when simulated
    result = Simulation(day, Scripted({0: [Assignment("c1", ("o1",))]})).run()

    # then the courier is there at 3 but picks up at the ready time, 30, and drops off at 32 + 5 + 1
    assert result.deliveries()["o1"] == Delivery("o1", "c1", assigned_at=0, pickup_at=30, dropoff_at=38)


def test_bundles_hold_one_restaurant_and_updates_keep_their_orders() -> None:
    # given the tiny day
    day = tiny_day()

    # when policies bundle across restaurants, or drop an order from a bundle not picked up yet
    across = Simulation(day, Scripted({5: [Assignment("c1", ("o2", "o3"))]}))
    dropping = Simulation(
        day, Scripted({2: [Assignment("c1", ("o1", "o2"))], 3: [Assignment("c1", ("o1",))]})
    )

    # then both are refused
    with pytest.raises(InvalidAssignment, match="spans several restaurants"):
        across.run()
    with pytest.raises(InvalidAssignment, match=r"must keep the orders \('o1', 'o2'\)"):
        dropping.run()


def test_a_bundle_grows_until_picked_up_and_never_after() -> None:
    # given the tiny day with c1 sent for o2 at 3 (pickup at 8)
    day = tiny_day()
    before_pickup = Simulation(
        day, Scripted({3: [Assignment("c1", ("o2",))], 7: [Assignment("c1", ("o2", "o1"))]})
    )
    after_pickup = Simulation(
        day, Scripted({3: [Assignment("c1", ("o2",))], 8: [Assignment("c1", ("o2", "o1"))]})
    )

    # when o1 is added at 7, before the pickup, the pickup waits for it (ready 10)
    assert before_pickup.run().deliveries()["o1"] == Delivery(
        "o1", "c1", assigned_at=7, pickup_at=10, dropoff_at=26
    )

    # then adding it at 8, the pickup time, is refused
    with pytest.raises(InvalidAssignment, match="already picked up"):
        after_pickup.run()


def test_orders_are_assigned_only_once_placed_and_couriers_only_once_on_duty() -> None:
    # given the tiny day and a courier who starts at 10
    day = tiny_day()
    late_courier = instance(day.orders, [Courier("c1", Point(0, 300), on_time=10, off_time=60)])

    # when a policy assigns o3 before it is placed (at 5), or c1 before going on duty
    early_order = Simulation(day, Scripted({0: [Assignment("c2", ("o3",))]}))
    early_courier = Simulation(late_courier, Scripted({0: [Assignment("c1", ("o1",))]}))

    # then both are refused
    with pytest.raises(InvalidAssignment, match="order o3 is not open"):
        early_order.run()
    with pytest.raises(InvalidAssignment, match="courier c1 is not on duty before 10"):
        early_courier.run()
