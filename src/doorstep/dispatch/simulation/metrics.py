"""The MDRP paper's metrics of a simulated day, computed as Grubhub's evaluator computes them.

Per order (delivered orders only): click-to-door = drop-off - placement; its overage =
max(0, click-to-door - target); ready-to-pickup = pickup - ready. Per courier (every courier of the
instance, idle ones included): utilisation = (driving + one pickup service per trip + one drop-off
service per order) / (off_time - on_time), which may pass 1 when deliveries run past the shift;
orders per hour = 60 x orders delivered / shift minutes; pay = max(pay per order x orders delivered,
guaranteed pay per hour x shift hours). The evaluator reports a courier measure's mean over couriers,
so `courier_utilization` and `orders_per_courier_hour` are such means; the p90 interpolates linearly
between ranks, as pandas' `describe` does. Values are rounded to 4 decimals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from doorstep.dispatch.simulation.engine import SimulationResult

METRIC_KEYS = (
    "orders_delivered",
    "orders_total",
    "click_to_door_mean_min",
    "click_to_door_p90_min",
    "click_to_door_overage_mean_min",
    "ready_to_pickup_mean_min",
    "courier_utilization",
    "orders_per_courier_hour",
    "courier_pay_total",
)

Metrics = dict[str, float | int | None]


def compute_metrics(result: SimulationResult) -> Metrics:
    instance = result.instance
    parameters = instance.parameters
    orders = {order.id: order for order in instance.orders}
    deliveries = result.deliveries()
    click_to_door = [one.dropoff_at - orders[one.order_id].placement_time for one in deliveries.values()]
    ready_to_pickup = [one.pickup_at - orders[one.order_id].ready_time for one in deliveries.values()]
    overage = [max(0.0, value - parameters.target_click_to_door) for value in click_to_door]
    busy = {courier.id: 0.0 for courier in instance.couriers}
    delivered = {courier.id: 0 for courier in instance.couriers}
    for one in result.trips:
        trip = one.trip
        busy[trip.courier_id] += (
            trip.driving_minutes
            + parameters.pickup_service_minutes
            + parameters.dropoff_service_minutes * len(trip.order_ids)
        )
        delivered[trip.courier_id] += len(trip.order_ids)
    utilization: list[float] = []
    per_hour: list[float] = []
    pay = 0.0
    for courier in instance.couriers:
        shift = courier.off_time - courier.on_time
        utilization.append(busy[courier.id] / shift)
        per_hour.append(60 * delivered[courier.id] / shift)
        pay += max(
            parameters.pay_per_order * delivered[courier.id], parameters.guaranteed_pay_per_hour * shift / 60
        )
    return {
        "orders_delivered": len(deliveries),
        "orders_total": len(instance.orders),
        "click_to_door_mean_min": _round(mean(click_to_door)),
        "click_to_door_p90_min": _round(percentile(click_to_door, 0.9)),
        "click_to_door_overage_mean_min": _round(mean(overage)),
        "ready_to_pickup_mean_min": _round(mean(ready_to_pickup)),
        "courier_utilization": _round(mean(utilization)),
        "orders_per_courier_hour": _round(mean(per_hour)),
        "courier_pay_total": _round(pay),
    }


def mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's and pandas' default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
