"""Events the integrations service reacts to, each turned into a command."""

from __future__ import annotations

from doorstep.contracts.orders import OrderCreated
from doorstep.infra.service import Subscription
from doorstep.integrations.domain.commands import LinkOrder
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent

# What the integrations service consumes; every process declares these bindings so no event finds no queue.
PATTERNS = (OrderCreated.event_type,)


def subscriptions(bus: MessageBus) -> list[Subscription]:
    async def on_order_created(envelope: CloudEvent) -> None:
        event = envelope.payload()
        assert isinstance(event, OrderCreated)
        await bus.handle(
            LinkOrder(
                tenant_id=envelope.tenantid,
                order_id=event.order.id,
                source=event.order.source,
                external_id=event.order.external_id,
            ),
            causing_message=envelope,
        )

    return [Subscription(PATTERNS, on_order_created)]
