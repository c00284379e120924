"""The orders events of delivery-API orders: each delivery shows its order's id and current status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from doorstep.contracts.orders import OrderCreated, OrderStatusChanged
from doorstep.infra.service import Subscription
from doorstep.integrations.deliveries.domain.model import SOURCE
from doorstep.integrations.deliveries.handlers import ObserveOrders
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.unit_of_work import handle_together

PATTERNS = (OrderCreated.event_type, OrderStatusChanged.event_type)


def subscription(bus: MessageBus) -> Subscription:
    async def on_order_events(envelopes: Sequence[CloudEvent]) -> None:
        seen = [observation for envelope in envelopes if (observation := observed(envelope)) is not None]
        if seen:
            await bus.handle(ObserveOrders(observations=tuple(seen)))

    # Both types together, in the order delivered; a late one changes nothing (the order's own times).
    return Subscription(PATTERNS, handle_together(on_order_events, accepts=lambda e: e.type in PATTERNS))


def observed(envelope: CloudEvent) -> dict[str, Any] | None:
    """What the event says of a delivery-API order's status, read without validating the whole order;
    None for every other order, so those cost this consumer no transaction."""
    data = envelope.data
    if envelope.type == OrderCreated.event_type:
        order = data.get("order")
        if not isinstance(order, dict) or order.get("source") != SOURCE:
            return None
        order_id, external_id, status, at = (
            order.get("id"),
            order.get("external_id"),
            order.get("status"),
            order.get("updated_at"),
        )
    elif envelope.type == OrderStatusChanged.event_type:
        if data.get("source") != SOURCE:
            return None
        order_id, external_id, status, at = (
            data.get("order_id"),
            data.get("external_id"),
            data.get("to_status"),
            data.get("changed_at"),
        )
    else:
        return None
    if not all(isinstance(value, str) for value in (order_id, external_id, status, at)):
        return None
    assert isinstance(at, str)
    return {
        "tenant_id": envelope.tenantid,
        "external_id": external_id,
        "order_id": order_id,
        "status": status,
        "at": datetime.fromisoformat(at),
    }
