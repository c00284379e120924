"""The delivery API's rate cards, quotes and deliveries, in the integrations database."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, UniqueConstraint

from doorstep.integrations.adapters.tables import Document, metadata

delivery_rate_cards = Table(
    "delivery_rate_cards",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("card", Document, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(80), nullable=False),
)

delivery_quotes = Table(
    "delivery_quotes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("external_delivery_id", String(200), nullable=False),
    Column("created_by", String(80), nullable=False),
    # pickup, dropoff, size, customer, items, notes: the request as it will become the order.
    Column("request", Document, nullable=False),
    Column("pickup_time", DateTime(timezone=True), nullable=False),
    Column("dropoff_deadline", DateTime(timezone=True), nullable=True),
    Column("distance_m", Integer, nullable=False),
    Column("duration_s", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("fee_lines", Document, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_delivery_quotes_tenant", "tenant_id", "id"),
)

api_deliveries = Table(
    "api_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("quote_id", String(36), nullable=False),
    Column("external_delivery_id", String(200), nullable=False),
    Column("created_by", String(80), nullable=False),
    Column("order_id", String(36), nullable=True),
    Column("status", String(30), nullable=False),
    Column("status_at", DateTime(timezone=True), nullable=True),
    Column("cancel_requested_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "external_delivery_id", name="uq_api_deliveries_external_id"),
    UniqueConstraint("quote_id", name="uq_api_deliveries_quote"),
    Index("ix_api_deliveries_tenant", "tenant_id", "id"),
)
