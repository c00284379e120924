"""What the integrations service publishes."""

from __future__ import annotations

from typing import Literal

from doorstep.contracts.orders import OrderDraft
from doorstep.kernel.messages import Event


class OrderReceived(Event):
    """A partner platform delivered an order, verified and mapped to Doorstep's shape."""

    event_type = "doorstep.integrations.order.received.v1"
    connection_id: str
    platform: str
    delivery_id: str
    external_id: str
    draft: OrderDraft
    # What happened on the platform; `draft` is always the order's whole state after the change, so a
    # change that arrives before the order was created can create it.
    change: Literal["placed", "updated", "cancelled"] = "placed"
    # Orders the platform's changes to one order; a change at or below the applied version is ignored.
    version: int | None = None

    def subject(self) -> str:
        return f"{self.platform}:{self.external_id}"


class InboundDeliveryFailed(Event):
    """A partner's delivery was authentic but could not become an order (or an order change).

    It stays in the inbound log, replayable; the support desk opens a ticket for it.
    """

    event_type = "doorstep.integrations.inbound.failed.v1"
    connection_id: str
    platform: str
    delivery_id: str
    reason: str
    field: str | None

    def subject(self) -> str:
        return self.delivery_id


class WebhookEndpointDisabled(Event):
    """A tenant's status-webhook endpoint stopped receiving: it answered 410, or kept failing for days."""

    event_type = "doorstep.integrations.webhook_endpoint.disabled.v1"
    endpoint_id: str
    url: str
    reason: str

    def subject(self) -> str:
        return self.endpoint_id
