"""Courier accounts, quotes, deliveries and their status webhooks, in the integrations database."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, LargeBinary, String, Table, Text, UniqueConstraint

from doorstep.integrations.adapters.tables import Document, metadata

# Credentials are stored as given (like connection secrets): see the README.
courier_accounts = Table(
    "courier_accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("provider", String(30), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    Column("credentials", Document, nullable=False),
    Column("settings", Document, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_courier_accounts_tenant", "tenant_id", "id"),
)

courier_quotes = Table(
    "courier_quotes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("account_id", String(36), nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("provider_quote_id", String(200), nullable=False),
    Column("request", Document, nullable=False),
    Column("fee", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("pickup_eta", DateTime(timezone=True), nullable=True),
    Column("dropoff_eta", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_courier_quotes_tenant", "tenant_id", "id"),
)

courier_deliveries = Table(
    "courier_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("account_id", String(36), nullable=False),
    Column("provider", String(30), nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("quote_id", String(36), nullable=True),
    Column("provider_delivery_id", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("provider_status", String(60), nullable=True),
    Column("tracking_url", Text, nullable=True),
    Column("fee", Integer, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("courier", Document, nullable=True),
    Column("proof_of_delivery", Document, nullable=False),
    Column("status_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # When the courier was at `courier.location`, as the network reported it.
    Column("courier_location_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("tenant_id", "account_id", "order_id", name="uq_courier_deliveries_order"),
    UniqueConstraint("account_id", "provider_delivery_id", name="uq_courier_deliveries_provider_id"),
    Index("ix_courier_deliveries_tenant", "tenant_id", "id"),
)

# Every authentic status webhook, once: a redelivery (same key) is answered without a second effect.
courier_webhook_events = Table(
    "courier_webhook_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("account_id", String(36), nullable=False),
    Column("event_key", String(300), nullable=False),
    Column("provider_delivery_id", String(200), nullable=False),
    Column("provider_status", String(60), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("account_id", "event_key", name="uq_courier_webhook_events_key"),
)
