"""Status-webhook endpoints, their messages and every attempt, in the integrations database."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table, Text, UniqueConstraint

from doorstep.integrations.adapters.tables import Document, metadata
from doorstep.kernel.outbox import SequenceNumber

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", Document, nullable=False),
    Column("description", Text, nullable=True),
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100), nullable=True),
    Column("previous_secret_expires_at", DateTime(timezone=True), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("consecutive_failures", Integer, nullable=False),
    Column("circuit_open_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhook_endpoints_tenant", "tenant_id", "id"),
)

webhook_messages = Table(
    "webhook_messages",
    metadata,
    # The order messages were stored in: deliveries of one order to one endpoint follow it.
    Column("seq", SequenceNumber, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("endpoint_id", String(36), nullable=False),
    Column("tenant_id", String(36), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("subject", String(200), nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    # Set while one dispatcher delivers it; past it, another may take the message over.
    Column("lease_until", DateTime(timezone=True), nullable=True),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_messages_endpoint_event"),
    Index("ix_webhook_messages_due", "state", "next_attempt_at"),
    Index("ix_webhook_messages_queue", "endpoint_id", "subject", "state", "seq"),
    Index("ix_webhook_messages_endpoint", "endpoint_id", "id"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("message_id", String(36), nullable=False),
    Column("endpoint_id", String(36), nullable=False),
    Column("tenant_id", String(36), nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    Column("status", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("snippet", Text, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_webhook_attempts_message", "message_id", "attempted_at"),
)
