"""Events the orders service reacts to, each turned into a command."""

from __future__ import annotations

from doorstep.contracts import dispatch
from doorstep.contracts.integrations import OrderReceived
from doorstep.contracts.orders import OrderStatus
from doorstep.infra.service import Subscription
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent
from doorstep.orders.domain.commands import FollowDelivery, PlaceOrder
from doorstep.orders.handlers import ApplyPlatformChange

# The dispatch job events that move the order (each carries the order status it implies).
DELIVERY_PATTERNS = (
    dispatch.JobPickedUp.event_type,
    dispatch.JobDelivered.event_type,
    dispatch.JobFailed.event_type,
    dispatch.JobReturnCompleted.event_type,
    dispatch.JobCancelled.event_type,
)

# What the orders service consumes; every process declares these bindings so no event finds no queue.
PATTERNS = (OrderReceived.event_type, *DELIVERY_PATTERNS)


def subscriptions(bus: MessageBus) -> list[Subscription]:
    async def on_order_received(envelope: CloudEvent) -> None:
        event = envelope.payload()
        assert isinstance(event, OrderReceived)
        actor = f"connection:{event.connection_id}"
        if event.change != "placed" or event.version is not None:
            # Updates, cancellations and versioned placements: in the platform's order, each once.
            await bus.handle(
                ApplyPlatformChange(
                    tenant_id=envelope.tenantid,
                    source=event.platform,
                    external_id=event.external_id,
                    draft=event.draft,
                    cancel=event.change == "cancelled",
                    version=event.version,
                    actor=actor,
                ),
                causing_message=envelope,
            )
            return
        draft = event.draft.model_copy(update={"external_id": event.external_id})
        await bus.handle(
            PlaceOrder(
                tenant_id=envelope.tenantid,
                source=event.platform,
                draft=draft,
                actor=actor,
            ),
            causing_message=envelope,
        )

    async def on_delivery_step(envelope: CloudEvent) -> None:
        data = envelope.data
        status = data.get("order_status")
        if status is None:
            return
        driver_id = data.get("driver_id")
        await bus.handle(
            FollowDelivery(
                tenant_id=envelope.tenantid,
                order_id=data["order_id"],
                status=OrderStatus(status),
                reason=data.get("reason"),
                actor=f"dispatch:driver:{driver_id}" if driver_id else "dispatch",
            ),
            causing_message=envelope,
        )

    return [
        Subscription((OrderReceived.event_type,), on_order_received),
        Subscription(DELIVERY_PATTERNS, on_delivery_step),
    ]
