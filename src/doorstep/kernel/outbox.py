"""Outbox and inbox tables: every service has both, in its own database."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text

# SQLite only auto-increments an INTEGER PRIMARY KEY.
SequenceNumber = BigInteger().with_variant(Integer(), "sqlite")


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add `outbox` and `inbox` to a service's metadata."""
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", SequenceNumber, primary_key=True, autoincrement=True),
        Column("id", String(36), nullable=False, unique=True),
        Column("type", String(200), nullable=False),
        Column("tenant_id", String(36), nullable=False),
        Column("envelope", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index(
            "ix_outbox_unpublished",
            "seq",
            sqlite_where=Column("published_at").is_(None),
            postgresql_where=Column("published_at").is_(None),
        ),
        Index("ix_outbox_published_at", "published_at"),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("message_id", String(36), primary_key=True),
        Column("type", String(200), nullable=False),
        Column("tenant_id", String(36), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False),
    )
    return outbox, inbox
