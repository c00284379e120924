"""Events the integrations service reacts to, each turned into a command."""

from __future__ import annotations

from collections.abc import Sequence

from doorstep.contracts.orders import OrderCreated
from doorstep.infra.service import Subscription
from doorstep.integrations.adapters.platforms import PLATFORMS
from doorstep.integrations.deliveries import consumers as delivery_consumers
from doorstep.integrations.deliveries.domain.model import SOURCE as DELIVERY_API
from doorstep.integrations.domain.commands import LinkOrder, LinkOrders
from doorstep.integrations.outbound import consumers as outbound_consumers
from doorstep.integrations.status_reports import consumers as status_report_consumers
from doorstep.integrations.tickets import consumers as ticket_consumers
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.unit_of_work import handle_together

# What the integrations service consumes; every process declares these bindings so no event finds no queue.
PATTERNS = tuple(
    dict.fromkeys(
        (
            OrderCreated.event_type,
            *outbound_consumers.PATTERNS,
            *ticket_consumers.PATTERNS,
            *status_report_consumers.PATTERNS,
            *delivery_consumers.PATTERNS,
        )
    )
)


def subscriptions(bus: MessageBus) -> list[Subscription]:
    async def on_orders_created(envelopes: Sequence[CloudEvent]) -> None:
        # Every event of the delivery batch is marked handled in one transaction; only the orders
        # that came from a platform (a connection) have a link to keep.
        links = {envelope.id: link for envelope in envelopes if (link := _link(envelope)) is not None}
        await bus.handle(LinkOrders(messages=tuple(envelopes), links=links))

    return [
        Subscription((OrderCreated.event_type,), handle_together(on_orders_created)),
        outbound_consumers.subscription(bus),
        *ticket_consumers.subscriptions(bus),
        status_report_consumers.subscription(bus),
        delivery_consumers.subscription(bus),
    ]


def _link(envelope: CloudEvent) -> LinkOrder | None:
    """The link to keep for the order of this `OrderCreated`, or None when it came from no platform."""
    order = envelope.data.get("order")
    source = order.get("source") if isinstance(order, dict) else None
    if isinstance(source, str) and source not in PLATFORMS and source != DELIVERY_API:
        # Placed through the API or imported: nothing to link, so the whole snapshot (items, stops,
        # customer) is not validated just to be dropped. The orders service built it from a valid order.
        return None
    event = envelope.payload()
    assert isinstance(event, OrderCreated)
    if event.order.source not in PLATFORMS and event.order.source != DELIVERY_API:
        return None
    return LinkOrder(
        tenant_id=envelope.tenantid,
        order_id=event.order.id,
        source=event.order.source,
        external_id=event.order.external_id,
    )
