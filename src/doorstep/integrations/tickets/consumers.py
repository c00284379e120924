"""Failures that open support tickets by themselves, and the orders events that say whose an order is."""

from __future__ import annotations

from collections.abc import Sequence

from doorstep.contracts.integrations import InboundDeliveryFailed, WebhookEndpointDisabled
from doorstep.contracts.orders import OrderCreated, OrderUpdated
from doorstep.infra.service import Subscription
from doorstep.integrations.tickets.domain import Priority, SubjectType, automatic_key
from doorstep.integrations.tickets.handlers import RaiseAutomaticTicket, RememberOrders
from doorstep.kernel.bus import MessageBus
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.unit_of_work import handle_together

FAILURES = (InboundDeliveryFailed.event_type, WebhookEndpointDisabled.event_type)
ORDERS = (OrderCreated.event_type, OrderUpdated.event_type)
PATTERNS = (*FAILURES, *ORDERS)


def subscriptions(bus: MessageBus) -> list[Subscription]:
    async def on_failure(envelope: CloudEvent) -> None:
        await bus.handle(automatic_ticket(envelope), causing_message=envelope)

    async def on_orders(envelopes: Sequence[CloudEvent]) -> None:
        orders = [_order_reference(envelope) for envelope in envelopes]
        await bus.handle(RememberOrders(orders=tuple(o for o in orders if o is not None)))

    return [
        Subscription(FAILURES, on_failure),
        Subscription(ORDERS, handle_together(on_orders)),
    ]


def automatic_ticket(envelope: CloudEvent) -> RaiseAutomaticTicket:
    """The ticket a failure opens (or the comment it adds to the open one)."""
    event = envelope.payload()
    if isinstance(event, InboundDeliveryFailed):
        where = f" (field `{event.field}`)" if event.field else ""
        return RaiseAutomaticTicket(
            tenant_id=envelope.tenantid,
            subject_type=SubjectType.CONNECTION,
            subject_id=event.connection_id,
            dedup_key=automatic_key(SubjectType.CONNECTION, event.connection_id),
            title=f"Deliveries from the {event.platform} connection cannot be mapped",
            body=f"Inbound delivery {event.delivery_id} could not be mapped: {event.reason}{where}. "
            "It is kept in the inbound log; replay it once the cause is fixed.",
        )
    if isinstance(event, WebhookEndpointDisabled):
        return RaiseAutomaticTicket(
            tenant_id=envelope.tenantid,
            subject_type=SubjectType.WEBHOOK_ENDPOINT,
            subject_id=event.endpoint_id,
            dedup_key=automatic_key(SubjectType.WEBHOOK_ENDPOINT, event.endpoint_id),
            title=f"Status webhooks to {event.url} are disabled",
            body=f"The webhook endpoint {event.endpoint_id} ({event.url}) was disabled: {event.reason}. "
            "Fix the receiver, enable the endpoint again and replay the failed messages.",
            priority=Priority.URGENT,
        )
    raise TypeError(f"no ticket for {envelope.type}")


def _order_reference(envelope: CloudEvent) -> dict[str, object] | None:
    """What a ticket needs to know of the order, read without validating the whole snapshot; None when
    there is nothing to keep: an order created without a merchant, or an update that left it as it was.
    Most orders then cost this consumer no transaction at all."""
    order = envelope.data.get("order")
    if not isinstance(order, dict) or not isinstance(order.get("id"), str):
        return None
    merchant_id = order.get("merchant_id")
    if envelope.type == OrderCreated.event_type and merchant_id is None:
        return None
    if envelope.type == OrderUpdated.event_type and "merchant_id" not in envelope.data.get(
        "changed_fields", ()
    ):
        return None
    return {
        "order_id": order["id"],
        "tenant_id": envelope.tenantid,
        "merchant_id": merchant_id if isinstance(merchant_id, str) else None,
        "updated_at": envelope.time,
    }
