"""Status reports to partner platforms, in the integrations database."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text, UniqueConstraint

from doorstep.integrations.adapters.tables import inbound_deliveries, metadata
from doorstep.kernel.outbox import SequenceNumber

status_reports = Table(
    "status_reports",
    metadata,
    # The order the changes happened in: reports of one order are sent in it.
    Column("seq", SequenceNumber, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("tenant_id", String(36), nullable=False),
    Column("connection_id", String(36), nullable=False),
    Column("platform", String(50), nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("status", String(30), nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    # Set while a reporter sends it; past it, another may take the report over.
    Column("lease_until", DateTime(timezone=True), nullable=True),
    UniqueConstraint("event_id", name="uq_status_reports_event"),
    Index("ix_status_reports_due", "state", "next_attempt_at"),
    Index("ix_status_reports_order", "order_id", "state", "seq"),
    Index("ix_status_reports_tenant", "tenant_id", "state", "id"),
)

# Which connection an order came from is in the inbound log (the order's platform and external id).
Index(
    "ix_inbound_external",
    inbound_deliveries.c.tenant_id,
    inbound_deliveries.c.platform,
    inbound_deliveries.c.external_id,
)
