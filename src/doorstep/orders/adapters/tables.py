from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from doorstep.kernel.outbox import SequenceNumber, messaging_tables

metadata = MetaData()
Document = JSON().with_variant(JSONB(), "postgresql")

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("source", String(50), nullable=False),
    Column("external_id", String(200), nullable=True),
    Column("merchant_id", String(100), nullable=True),
    Column("status", String(30), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("delivery_fee", BigInteger, nullable=False),
    Column("tip", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    # Searchable copies of what `document` holds, for the list filters.
    Column("customer_name", String(200), nullable=False),
    Column("customer_phone", String(40), nullable=True),
    Column("customer_email", String(320), nullable=True),
    Column("pickup_address", String(500), nullable=False),
    Column("dropoff_address", String(500), nullable=False),
    Column("document", Document, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    # Who placed it ("user:<id>", "api_key:<id>", "connection:<id>"): a customer sees the orders they placed.
    Column("placed_by", String(200), nullable=True),
    UniqueConstraint("tenant_id", "source", "external_id", name="uq_orders_tenant_source_external_id"),
    Index("ix_orders_tenant_placed_by", "tenant_id", "placed_by", "id"),
    Index("ix_orders_tenant_id", "tenant_id", "id"),
    Index("ix_orders_tenant_status", "tenant_id", "status", "id"),
    Index("ix_orders_tenant_created", "tenant_id", "created_at"),
)

order_status_history = Table(
    "order_status_history",
    metadata,
    Column("seq", SequenceNumber, primary_key=True, autoincrement=True),
    Column("order_id", String(36), nullable=False),
    Column("tenant_id", String(36), nullable=False),
    Column("from_status", String(30), nullable=True),
    Column("to_status", String(30), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_order_status_history_order", "tenant_id", "order_id", "seq"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", SmallInteger, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_idempotency_keys_created", "created_at"),
)

outbox, inbox = messaging_tables(metadata)

from doorstep.orders.adapters import platform_versions as _platform_versions  # noqa: E402, F401  (its table joins metadata)
