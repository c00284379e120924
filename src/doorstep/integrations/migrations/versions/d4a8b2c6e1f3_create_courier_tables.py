"""create courier account, quote, delivery and webhook event tables

Revision ID: d4a8b2c6e1f3
Revises: c3e9f1a7d2b4
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d4a8b2c6e1f3"
down_revision: str | None = "c3e9f1a7d2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Document = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "courier_accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("credentials", Document, nullable=False),
        sa.Column("settings", Document, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("courier_accounts", schema=None) as batch_op:
        batch_op.create_index("ix_courier_accounts_tenant", ["tenant_id", "id"], unique=False)

    op.create_table(
        "courier_quotes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("provider_quote_id", sa.String(length=200), nullable=False),
        sa.Column("request", Document, nullable=False),
        sa.Column("fee", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("pickup_eta", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dropoff_eta", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("courier_quotes", schema=None) as batch_op:
        batch_op.create_index("ix_courier_quotes_tenant", ["tenant_id", "id"], unique=False)

    op.create_table(
        "courier_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=30), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("quote_id", sa.String(length=36), nullable=True),
        sa.Column("provider_delivery_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("provider_status", sa.String(length=60), nullable=True),
        sa.Column("tracking_url", sa.Text(), nullable=True),
        sa.Column("fee", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("courier", Document, nullable=True),
        sa.Column("proof_of_delivery", Document, nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "account_id", "order_id", name="uq_courier_deliveries_order"),
        sa.UniqueConstraint("account_id", "provider_delivery_id", name="uq_courier_deliveries_provider_id"),
    )
    with op.batch_alter_table("courier_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_courier_deliveries_tenant", ["tenant_id", "id"], unique=False)

    op.create_table(
        "courier_webhook_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("event_key", sa.String(length=300), nullable=False),
        sa.Column("provider_delivery_id", sa.String(length=200), nullable=False),
        sa.Column("provider_status", sa.String(length=60), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "event_key", name="uq_courier_webhook_events_key"),
    )


def downgrade() -> None:
    op.drop_table("courier_webhook_events")
    with op.batch_alter_table("courier_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_courier_deliveries_tenant")
    op.drop_table("courier_deliveries")
    with op.batch_alter_table("courier_quotes", schema=None) as batch_op:
        batch_op.drop_index("ix_courier_quotes_tenant")
    op.drop_table("courier_quotes")
    with op.batch_alter_table("courier_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_courier_accounts_tenant")
    op.drop_table("courier_accounts")
