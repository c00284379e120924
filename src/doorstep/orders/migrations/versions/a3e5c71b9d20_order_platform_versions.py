"""order platform versions: the last platform change applied to each order

Revision ID: a3e5c71b9d20
Revises: 0c8b38ba6c66
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3e5c71b9d20"
down_revision: str | None = "0c8b38ba6c66"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_platform_versions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "order_id"),
    )


def downgrade() -> None:
    op.drop_table("order_platform_versions")
