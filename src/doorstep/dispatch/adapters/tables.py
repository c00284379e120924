from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from doorstep.kernel.outbox import messaging_tables

metadata = MetaData()
Document = JSON().with_variant(JSONB(), "postgresql")

teams = Table(
    "teams",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_teams_tenant", "tenant_id", "id"),
)

zones = Table(
    "zones",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("geometry", Document, nullable=False),
    # The bounding box, so that "which zones contain this point" reads few rows.
    Column("min_lon", Float, nullable=False),
    Column("min_lat", Float, nullable=False),
    Column("max_lon", Float, nullable=False),
    Column("max_lat", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_zones_tenant", "tenant_id", "id"),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("plate", String(20), nullable=True),
    Column("vehicle_type", String(20), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_vehicles_tenant", "tenant_id", "id"),
)

drivers = Table(
    "drivers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("phone", String(32), nullable=True),
    Column("vehicle_type", String(20), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("skills", Document, nullable=False),
    Column("home_zone_id", String(36), ForeignKey("zones.id"), nullable=True),
    Column("team_id", String(36), ForeignKey("teams.id"), nullable=True),
    Column("state", String(20), nullable=False),
    Column("state_changed_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "user_id", name="uq_drivers_tenant_user"),
    Index("ix_drivers_tenant", "tenant_id", "id"),
    Index("ix_drivers_tenant_state", "tenant_id", "state", "id"),
)

shifts = Table(
    "shifts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("driver_id", String(36), ForeignKey("drivers.id", ondelete="CASCADE"), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("breaks", Document, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_shifts_tenant", "tenant_id", "id"),
    Index("ix_shifts_driver_start", "driver_id", "starts_at"),
)

# The downsampled track of each driver (see domain/tracks.py), for replay: not every ping.
driver_track = Table(
    "driver_track",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), nullable=False),
    Column("driver_id", String(36), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("accuracy_m", Float, nullable=True),
    Column("speed_mps", Float, nullable=True),
    Column("heading", Float, nullable=True),
    Index("ix_driver_track_driver_time", "tenant_id", "driver_id", "recorded_at"),
)

outbox, inbox = messaging_tables(metadata)
