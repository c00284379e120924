"""The ticket's status machine, closing and reopening, and what an automatic failure becomes. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doorstep.contracts.integrations import InboundDeliveryFailed, WebhookEndpointDisabled
from doorstep.integrations.tickets.consumers import automatic_ticket
from doorstep.integrations.tickets.domain import (
    Comment,
    Origin,
    Priority,
    SubjectType,
    Ticket,
    TicketStatus,
    automatic_key,
)
from doorstep.integrations.tickets.errors import TicketStatusConflict
from doorstep.kernel.messages import CloudEvent

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def ticket(status: TicketStatus = TicketStatus.OPEN, dedup_key: str | None = None) -> Ticket:
    return Ticket(
        id="t-1",
        tenant_id="tenant-1",
        subject_type=SubjectType.CONNECTION,
        subject_id="c-1",
        title="Mapping fails",
        body="",
        priority=Priority.NORMAL,
        opened_by="system",
        origin=Origin.AUTOMATIC if dedup_key else Origin.PERSON,
        created_at=T0,
        updated_at=T0,
        status=status,
        dedup_key=dedup_key,
    )


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (TicketStatus.OPEN, TicketStatus.IN_PROGRESS),
        (TicketStatus.OPEN, TicketStatus.RESOLVED),
        (TicketStatus.OPEN, TicketStatus.CLOSED),
        (TicketStatus.IN_PROGRESS, TicketStatus.OPEN),
        (TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED),
        (TicketStatus.IN_PROGRESS, TicketStatus.CLOSED),
        (TicketStatus.RESOLVED, TicketStatus.CLOSED),
        (TicketStatus.RESOLVED, TicketStatus.OPEN),
        (TicketStatus.CLOSED, TicketStatus.OPEN),
    ],
)
def test_allowed_moves_change_the_status_and_the_time(start: TicketStatus, to: TicketStatus) -> None:
    # Given a ticket in `start`
    t = ticket(start)
    later = T0 + timedelta(minutes=5)

    # When it moves to `to`
    t.move(to, later)

    # Then it is there, updated now, and closed_at is set exactly for resolved and closed
    assert (t.status, t.updated_at) == (to, later)
    assert t.closed_at == (later if to in (TicketStatus.RESOLVED, TicketStatus.CLOSED) else None)


@pytest.mark.parametrize(
    ("start", "to", "allowed"),
    [
        (TicketStatus.CLOSED, TicketStatus.IN_PROGRESS, ["open"]),
        (TicketStatus.CLOSED, TicketStatus.RESOLVED, ["open"]),
        (TicketStatus.RESOLVED, TicketStatus.IN_PROGRESS, ["closed", "open"]),
    ],
)
def test_a_forbidden_move_is_a_conflict_listing_the_allowed_statuses(
    start: TicketStatus, to: TicketStatus, allowed: list[str]
) -> None:
    # Given a ticket in `start`
    t = ticket(start)

    # When it is moved to `to`
    with pytest.raises(TicketStatusConflict) as raised:
        t.move(to, T0 + timedelta(minutes=1))

    # Then the conflict lists where it may go, and the ticket is unchanged
    assert raised.value.status == 409
    assert raised.value.extensions == {"current_status": start.value, "allowed_statuses": allowed}
    assert (t.status, t.updated_at) == (start, T0)


def test_closing_twice_and_reopening_an_open_ticket_change_nothing() -> None:
    # Given an open ticket
    t = ticket()
    later = T0 + timedelta(hours=1)

    # When it is reopened, closed, closed again, then reopened
    reopened_open = t.reopen(later)
    closed = t.close(later)
    closed_again = t.close(later + timedelta(hours=1))
    reopened = t.reopen(later + timedelta(hours=2))

    # Then only the real changes say so
    assert (reopened_open, closed, closed_again, reopened) == (False, True, False, True)
    assert (t.status, t.closed_at, t.updated_at) == (TicketStatus.OPEN, None, later + timedelta(hours=2))


def test_the_dedup_key_holds_its_place_only_while_the_ticket_is_open() -> None:
    # Given an automatic ticket for a failing connection
    t = ticket(dedup_key=automatic_key(SubjectType.CONNECTION, "c-1"))

    # When it is taken on, then resolved
    while_open = t.open_dedup_key
    t.move(TicketStatus.IN_PROGRESS, T0)
    taken_on = t.open_dedup_key
    t.move(TicketStatus.RESOLVED, T0)

    # Then the key holds the place while open or in progress, and frees it once resolved
    assert (while_open, taken_on, t.open_dedup_key) == ("connection:c-1", "connection:c-1", None)
    assert t.dedup_key == "connection:c-1"


def test_a_comment_is_kept_in_order_and_touches_the_ticket() -> None:
    # Given a ticket
    t = ticket()
    at = T0 + timedelta(minutes=3)

    # When someone comments
    t.comment(Comment(id="c1", author="user:u-1", body="Looking into it", at=at))

    # Then the comment is there and the ticket was updated then
    assert [(c.author, c.body) for c in t.comments] == [("user:u-1", "Looking into it")]
    assert t.updated_at == at


def test_an_unmappable_delivery_becomes_a_ticket_on_its_connection_naming_the_field() -> None:
    # Given an inbound failure event
    envelope = CloudEvent.wrap(
        InboundDeliveryFailed(
            connection_id="c-9",
            platform="shopify",
            delivery_id="d-7",
            reason="a stop needs coordinates",
            field="shipping_address.latitude",
        ),
        source="/doorstep/integrations",
        tenant_id="tenant-1",
    )

    # When it is turned into an automatic ticket
    raised = automatic_ticket(envelope)

    # Then it is about the connection, keyed by it, and names the delivery, the reason and the field
    assert (raised.tenant_id, raised.subject_type, raised.subject_id, raised.dedup_key) == (
        "tenant-1",
        SubjectType.CONNECTION,
        "c-9",
        "connection:c-9",
    )
    assert raised.title == "Deliveries from the shopify connection cannot be mapped"
    assert raised.body == (
        "Inbound delivery d-7 could not be mapped: a stop needs coordinates "
        "(field `shipping_address.latitude`). It is kept in the inbound log; replay it once the cause is fixed."
    )


def test_a_disabled_endpoint_becomes_an_urgent_ticket_on_the_endpoint() -> None:
    # Given an endpoint-disabled event
    envelope = CloudEvent.wrap(
        WebhookEndpointDisabled(endpoint_id="e-1", url="https://hooks.example/x", reason="410 Gone"),
        source="/doorstep/integrations",
        tenant_id="tenant-1",
    )

    # When it is turned into an automatic ticket
    raised = automatic_ticket(envelope)

    # Then it is about the endpoint, keyed by it, urgent
    assert (raised.subject_type, raised.subject_id, raised.dedup_key, raised.priority) == (
        SubjectType.WEBHOOK_ENDPOINT,
        "e-1",
        "webhook_endpoint:e-1",
        Priority.URGENT,
    )
    assert raised.title == "Status webhooks to https://hooks.example/x are disabled"
