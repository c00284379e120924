"""The metrics' formulas on a hand-built result, and the min-cost matching behind `batched`."""

from __future__ import annotations

from doorstep.dispatch.simulation.engine import AssignedTrip, SimulationResult
from doorstep.dispatch.simulation.instance import Courier, Instance, Order, Parameters, Point, Restaurant
from doorstep.dispatch.simulation.matching import min_cost_matching
from doorstep.dispatch.simulation.metrics import compute_metrics, percentile
from doorstep.dispatch.simulation.routes import plan_trip

PARAMETERS = Parameters(100, 4, 4, 40, 90, 10, 15)  # target 40, pay 10 an order or 15 an hour


def test_overage_pay_and_courier_measures_follow_the_evaluator() -> None:
    # given c1 (2 h shift) delivering o1 and o2 in one trip, c2 (1 h shift) and c3 (30 min) idle, o3 never
    # delivered; drives: c1 -> r 10, r -> o1 20, o1 -> o2 15 (all in metres / 100)
    day = Instance(
        "hand",
        (
            Order("o1", Point(0, 2000), placement_time=0, restaurant_id="r", ready_time=5),
            Order("o2", Point(1500, 2000), placement_time=10, restaurant_id="r", ready_time=20),
            Order("o3", Point(0, 0), placement_time=10, restaurant_id="r", ready_time=20),
        ),
        {"r": Restaurant("r", Point(0, 0))},
        (
            Courier("c1", Point(-1000, 0), on_time=0, off_time=120),
            Courier("c2", Point(0, 0), on_time=0, off_time=60),
            Courier("c3", Point(0, 0), on_time=60, off_time=90),
        ),
        PARAMETERS,
    )
    orders = {order.id: order for order in day.orders}
    trip = plan_trip(
        day, courier_id="c1", origin=Point(-1000, 0), departs_at=10, orders=[orders["o1"], orders["o2"]]
    )
    result = SimulationResult(day, "hand", (AssignedTrip(trip, 10),), epochs=1)

    # when its metrics are computed
    metrics = compute_metrics(result)

    # then: at r 20, pickup max(22, 20) = 22, leave 24, o1 at 24+20+2 = 46, leave 48, o2 at 48+15+2 = 65;
    # click-to-door o1 46, o2 55: mean 50.5, p90 46 + 0.9 x 9 = 54.1, overage [6, 15] -> 10.5;
    # ready-to-pickup [17, 2] -> 9.5; utilisation c1 (45 driving + 4 + 2 x 4) / 120 = 0.475, c2 and c3 0:
    # mean 0.1583; orders per hour [1, 0, 0] -> 1/3; pay c1 max(20, 30) + c2 15 + c3 7.5 = 52.5
    assert (trip.pickup_at, trip.dropoffs_at) == (22, (46, 65))
    assert metrics == {
        "orders_delivered": 2,
        "orders_total": 3,
        "click_to_door_mean_min": 50.5,
        "click_to_door_p90_min": 54.1,
        "click_to_door_overage_mean_min": 10.5,
        "ready_to_pickup_mean_min": 9.5,
        "courier_utilization": 0.1583,
        "orders_per_courier_hour": 0.3333,
        "courier_pay_total": 52.5,
    }


def test_nothing_delivered_gives_no_order_statistics() -> None:
    # given a day in which nothing was delivered
    day = Instance(
        "empty",
        (Order("o1", Point(0, 0), 0, "r", 5),),
        {"r": Restaurant("r", Point(0, 0))},
        (Courier("c1", Point(0, 0), 0, 60),),
        PARAMETERS,
    )

    # when its metrics are computed
    metrics = compute_metrics(SimulationResult(day, "none", (), epochs=0))

    # then the order statistics are absent (null in JSON), the courier's guaranteed pay is still due
    assert metrics["orders_delivered"] == 0
    assert metrics["click_to_door_mean_min"] is None
    assert metrics["click_to_door_p90_min"] is None
    assert metrics["courier_utilization"] == 0.0
    assert metrics["courier_pay_total"] == 15.0


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([10.0], 0.9) == 10.0
    assert percentile([40.0, 10.0, 20.0, 30.0], 0.5) == 25.0
    assert percentile([0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0], 0.9) == 90.0


def test_matching_finds_the_least_total_cost_where_greedy_would_not() -> None:
    # given two bundles and two couriers; greedy takes 1 for row 0, leaving 10 for row 1 (total 11)
    costs: list[list[float | None]] = [[1.0, 2.0], [3.0, 10.0]]

    # when matched, then row 0 takes column 1 and row 1 column 0: 2 + 3 = 5
    assert min_cost_matching(costs) == [(0, 1), (1, 0)]


def test_matching_skips_forbidden_pairs_and_serves_as_many_as_it_can() -> None:
    # given three bundles, two couriers; bundle 0 only fits courier 0, a cheap pair (2, 0) competes with it
    costs: list[list[float | None]] = [[50.0, None], [None, 7.0], [1.0, 3.0]]

    # when matched, then two pairs are made and never a forbidden one: (0, 0) + (1, 1) costs 57 and
    # (2, 0) + (1, 1) costs 8, both two pairs, so the cheaper wins; bundle 0 waits
    assert min_cost_matching(costs) == [(1, 1), (2, 0)]
    assert min_cost_matching([[None, None]]) == []
    assert min_cost_matching([]) == []
