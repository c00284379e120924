"""What the integrations service publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

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


class CourierLocation(BaseModel):
    lat: float
    lon: float


class CourierDeliveryCreated(Event):
    """A third-party courier network (DoorDash Drive, Uber Direct) accepted a delivery of an order."""

    event_type = "doorstep.integrations.courier_delivery.created.v1"
    courier_delivery_id: str
    order_id: str
    account_id: str
    provider: str
    provider_delivery_id: str
    status: str
    tracking_url: str | None
    fee: int | None
    currency: str | None
    occurred_at: datetime

    def subject(self) -> str:
        return self.order_id


class CourierDeliveryStatusChanged(Event):
    """A courier delivery moved on, in Doorstep's terms: `assigned`, `picked_up`, `delivered`, `cancelled`,
    `failed` or `returned`. Published once per move and in order per delivery; older news is dropped."""

    event_type = "doorstep.integrations.courier_delivery.status_changed.v1"
    courier_delivery_id: str
    order_id: str
    provider: str
    provider_delivery_id: str
    from_status: str
    status: str
    provider_status: str
    courier_name: str | None = None
    courier_phone: str | None = None
    courier_location: CourierLocation | None = None
    tracking_url: str | None = None
    proof_of_delivery_urls: list[str] = []
    reason: str | None = None
    occurred_at: datetime

    def subject(self) -> str:
        return self.order_id


# Support tickets. The tenant is the envelope's `tenantid`, as for every event. `actor` names who did it
# like the audit trail does (`user:<id>`, `api_key:<id>`, `system`); assignees are user ids. The body and
# the comments are free text that can hold customer data (names, phones, addresses): they stay in the
# ticket, read through `GET /v1/tickets/{id}` with `tickets.read`, and are not copied into events, which
# are fanned out, retained and dead-lettered beyond the ticket's reach (an excerpt would be the line
# where the phone number is). Only the title, the ticket's short headline, travels: a notice names it.
TicketSubjectType = Literal["order", "inbound_delivery", "connection", "webhook_endpoint"]


class TicketEvent(Event):
    """What every ticket event carries: which ticket, what it is about, who did it and when."""

    ticket_id: str
    subject_type: TicketSubjectType
    subject_id: str
    actor: str
    occurred_at: datetime

    def subject(self) -> str:
        return self.ticket_id


class TicketOpened(TicketEvent):
    """A support ticket was opened, by a person or automatically (`origin`, `actor` "system").

    Opened with an assignee, `TicketAssigned` follows it in the same transaction."""

    event_type = "doorstep.integrations.ticket.opened.v1"
    title: str
    priority: Literal["low", "normal", "high", "urgent"]
    origin: Literal["person", "automatic"]
    assignee: str | None


class TicketAssigned(TicketEvent):
    """A ticket's assignee changed: `assignee` is the user now on it (None: unassigned), `previous_assignee`
    the one before (None: nobody). Published on opening with an assignee too."""

    event_type = "doorstep.integrations.ticket.assigned.v1"
    assignee: str | None
    previous_assignee: str | None
    title: str


class TicketCommented(TicketEvent):
    """Someone (`actor`, the comment's author) commented on a ticket; the text stays in the ticket."""

    event_type = "doorstep.integrations.ticket.commented.v1"
    comment_id: str


class TicketClosed(TicketEvent):
    """A ticket was closed, from `from_status` (open, in_progress or resolved)."""

    event_type = "doorstep.integrations.ticket.closed.v1"
    from_status: Literal["open", "in_progress", "resolved"]


class TicketReopened(TicketEvent):
    """A resolved or closed ticket was opened again."""

    event_type = "doorstep.integrations.ticket.reopened.v1"
    from_status: Literal["resolved", "closed"]
