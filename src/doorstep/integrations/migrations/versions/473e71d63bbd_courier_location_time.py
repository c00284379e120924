"""when the courier was at its last reported position

Revision ID: 473e71d63bbd
Revises: f1a2b3c4d5e6
Create Date: 2026-11-22 04:02:29.032468
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "473e71d63bbd"
down_revision: str | None = "f1a2b3c4d5e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("courier_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("courier_location_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("courier_deliveries", schema=None) as batch_op:
        batch_op.drop_column("courier_location_at")
