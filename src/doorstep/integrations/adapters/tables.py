from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from doorstep.kernel.outbox import messaging_tables

metadata = MetaData()
Document = JSON().with_variant(JSONB(), "postgresql")

connections = Table(
    "connections",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("platform", String(50), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    Column("secret", String(200), nullable=False),
    Column("settings", Document, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_connections_tenant", "tenant_id", "id"),
)

inbound_deliveries = Table(
    "inbound_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("connection_id", String(36), nullable=False),
    Column("platform", String(50), nullable=False),
    Column("platform_delivery_id", String(200), nullable=True),
    Column("headers", Document, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),
    Column("external_id", String(200), nullable=True),
    Column("failure_field", String(200), nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    UniqueConstraint("connection_id", "platform_delivery_id", name="uq_inbound_connection_delivery"),
    Index("ix_inbound_tenant", "tenant_id", "id"),
    Index("ix_inbound_tenant_status", "tenant_id", "status", "id"),
)

order_links = Table(
    "order_links",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("source", String(50), nullable=False),
    Column("external_id", String(200), nullable=True),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Index("ix_order_links_external", "tenant_id", "source", "external_id"),
)

outbox, inbox = messaging_tables(metadata)

from doorstep.integrations.couriers import tables as courier_tables  # noqa: E402, F401  (registers them)
from doorstep.integrations.deliveries import tables as delivery_tables  # noqa: E402, F401  (registers them)
from doorstep.integrations.outbound import tables as outbound_tables  # noqa: E402, F401  (registers them)
from doorstep.integrations.status_reports import tables as status_report_tables  # noqa: E402, F401  (registers them)
from doorstep.integrations.tickets import tables as ticket_tables  # noqa: E402, F401  (registers them)
