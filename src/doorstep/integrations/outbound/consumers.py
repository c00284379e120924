"""The orders events that become status webhooks."""

from __future__ import annotations

from collections.abc import Sequence

from doorstep.infra.service import Subscription
from doorstep.integrations.outbound.domain import EVENT_TYPES
from doorstep.integrations.outbound.handlers import StoreWebhookMessages
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.unit_of_work import handle_together

PATTERNS = tuple(EVENT_TYPES)


def subscription(bus: MessageBus) -> Subscription:
    async def on_order_events(envelopes: Sequence[CloudEvent]) -> None:
        await bus.handle(StoreWebhookMessages(events=tuple(envelopes)))

    # All orders types together, in the order delivered: grouped by type, an order's status change
    # could be stored (and delivered) ahead of its creation when both wait in one batch.
    return Subscription(PATTERNS, handle_together(on_order_events, accepts=_is_order_event))


def _is_order_event(event: CloudEvent) -> bool:
    return event.type in EVENT_TYPES
