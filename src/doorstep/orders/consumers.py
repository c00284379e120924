"""Events the orders service reacts to, each turned into a command."""

from __future__ import annotations

from doorstep.contracts.integrations import OrderReceived
from doorstep.infra.service import Subscription
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent
from doorstep.orders.domain.commands import PlaceOrder
from doorstep.orders.handlers import ApplyPlatformChange

# What the orders service consumes; every process declares these bindings so no event finds no queue.
PATTERNS = (OrderReceived.event_type,)


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

    return [Subscription(PATTERNS, on_order_received)]
