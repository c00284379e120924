"""create delivery rate card, delivery quote and api delivery tables

Revision ID: e7c1d9a3b5f2
Revises: c3e9f1a7d2b4
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e7c1d9a3b5f2"
down_revision: str | None = "c3e9f1a7d2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Document = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "delivery_rate_cards",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("card", Document, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "delivery_quotes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("external_delivery_id", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("request", Document, nullable=False),
        sa.Column("pickup_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dropoff_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("distance_m", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("fee_lines", Document, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_quotes", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_quotes_tenant", ["tenant_id", "id"], unique=False)
    op.create_table(
        "api_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("quote_id", sa.String(length=36), nullable=False),
        sa.Column("external_delivery_id", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "external_delivery_id", name="uq_api_deliveries_external_id"),
        sa.UniqueConstraint("quote_id", name="uq_api_deliveries_quote"),
    )
    with op.batch_alter_table("api_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_api_deliveries_tenant", ["tenant_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_api_deliveries_tenant")
    op.drop_table("api_deliveries")
    with op.batch_alter_table("delivery_quotes", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_quotes_tenant")
    op.drop_table("delivery_quotes")
    op.drop_table("delivery_rate_cards")
