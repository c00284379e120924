"""What the integrations service publishes."""

from __future__ import annotations

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

    def subject(self) -> str:
        return f"{self.platform}:{self.external_id}"
