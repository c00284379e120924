"""Support tickets, their comments, and which merchant each order belongs to, in the integrations database."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table, Text, UniqueConstraint

from doorstep.integrations.adapters.tables import metadata

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("subject_type", String(30), nullable=False),
    Column("subject_id", String(100), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("priority", String(20), nullable=False),
    Column("opened_by", String(80), nullable=False),
    Column("assignee", String(36), nullable=True),
    Column("origin", String(20), nullable=False),
    Column("merchant_id", String(100), nullable=True),
    Column("dedup_key", String(200), nullable=True),
    # The dedup key while the ticket is open, NULL once resolved or closed: NULLs never collide, so the
    # constraint allows one open automatic ticket per key on SQLite and PostgreSQL alike.
    Column("open_dedup_key", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("tenant_id", "open_dedup_key", name="uq_tickets_open_dedup_key"),
    Index("ix_tickets_tenant", "tenant_id", "id"),
    Index("ix_tickets_tenant_status", "tenant_id", "status", "id"),
    Index("ix_tickets_subject", "tenant_id", "subject_type", "subject_id"),
)

ticket_comments = Table(
    "ticket_comments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("ticket_id", String(36), nullable=False),
    Column("tenant_id", String(36), nullable=False),
    Column("author", String(80), nullable=False),
    Column("body", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_ticket_comments_ticket", "ticket_id", "at"),
)

# Orders belong to the orders service; this is what its events say about each order's merchant, kept so
# merchant staff can be held to tickets on their merchants' orders without asking orders on every call.
ticket_orders = Table(
    "ticket_orders",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("merchant_id", String(100), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
