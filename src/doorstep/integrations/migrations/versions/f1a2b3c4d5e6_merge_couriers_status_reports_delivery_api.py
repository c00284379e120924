"""merge the courier, status report and delivery API branches

Revision ID: f1a2b3c4d5e6
Revises: d4a8b2c6e1f3, d5b8e2f4a6c1, e7c1d9a3b5f2
Create Date: 2026-11-22 03:00:00.000000
"""

from collections.abc import Sequence

revision: str = "f1a2b3c4d5e6"
down_revision: str | Sequence[str] | None = ("d4a8b2c6e1f3", "d5b8e2f4a6c1", "e7c1d9a3b5f2")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to do: the three branches touch different tables."""


def downgrade() -> None:
    """Nothing to undo."""
