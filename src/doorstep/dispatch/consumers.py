"""Events the dispatch service reacts to, each turned into a command: orders become jobs."""

from __future__ import annotations

from typing import Any

from doorstep.contracts.orders import OrderCreated, OrderStatusChanged, OrderUpdated
from doorstep.dispatch.domain.job_commands import TrackOrder
from doorstep.infra.service import Subscription
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent

# What the dispatch service consumes; every process declares these bindings so no event finds no queue.
PATTERNS = (OrderCreated.event_type, OrderUpdated.event_type, OrderStatusChanged.event_type)


def subscriptions(bus: MessageBus) -> list[Subscription]:
    async def on_order_event(envelope: CloudEvent) -> None:
        await bus.handle(_track(envelope), causing_message=envelope)

    return [Subscription(PATTERNS, on_order_event)]


def _track(envelope: CloudEvent) -> TrackOrder:
    data: dict[str, Any] = envelope.data
    if envelope.type == OrderStatusChanged.event_type:
        return TrackOrder(
            tenant_id=envelope.tenantid,
            order_id=data["order_id"],
            status=data["to_status"],
            reason=data.get("reason"),
        )
    # Only the delivery side of the snapshot: items, customer and totals are not dispatch's business.
    order = data["order"]
    return TrackOrder(
        tenant_id=envelope.tenantid,
        order_id=order["id"],
        status=order["status"],
        pickup=order["pickup"],
        dropoff=order["dropoff"],
    )
