"""create status report table, and index the inbound log by platform order

Revision ID: d5b8e2f4a6c1
Revises: c3e9f1a7d2b4
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5b8e2f4a6c1"
down_revision: str | None = "c3e9f1a7d2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_reports",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("platform", sa.String(length=50), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("event_id", name="uq_status_reports_event"),
    )
    with op.batch_alter_table("status_reports", schema=None) as batch_op:
        batch_op.create_index("ix_status_reports_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_status_reports_order", ["order_id", "state", "seq"], unique=False)
        batch_op.create_index("ix_status_reports_tenant", ["tenant_id", "state", "id"], unique=False)
    with op.batch_alter_table("inbound_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_external", ["tenant_id", "platform", "external_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbound_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_external")
    with op.batch_alter_table("status_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_status_reports_tenant")
        batch_op.drop_index("ix_status_reports_order")
        batch_op.drop_index("ix_status_reports_due")
    op.drop_table("status_reports")
