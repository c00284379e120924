from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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

# Jobs (see domain/jobs.py): one row per job with its tasks as documents, its offers, status history and
# proof of delivery beside it. `version` guards against two writers changing the same job at once.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("status", String(30), nullable=False),
    Column("driver_id", String(36), nullable=True),
    Column("pinned", Boolean, nullable=False),
    Column("size", Integer, nullable=False),
    Column("skills", Document, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("pickup", Document, nullable=False),
    Column("dropoff", Document, nullable=False),
    Column("return_task", Document, nullable=True),
    Column("requirements", Document, nullable=False),
    Column("stop_positions", Document, nullable=False),
    Column("declined_by", Document, nullable=False),
    Column("expired_for", Document, nullable=False),
    Column("failure", String(30), nullable=True),
    Column("courier", String(100), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "order_id", name="uq_jobs_tenant_order"),
    Index("ix_jobs_tenant", "tenant_id", "id"),
    Index("ix_jobs_tenant_status", "tenant_id", "status", "id"),
    Index("ix_jobs_tenant_driver", "tenant_id", "driver_id", "id"),
)

job_offers = Table(
    "job_offers",
    metadata,
    Column("job_id", String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("driver_id", String(36), nullable=False),
    Column("offered_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    # The offer time-out worker reads the open offers that are due.
    Index("ix_job_offers_status_expiry", "status", "expires_at"),
)

job_status_history = Table(
    "job_status_history",
    metadata,
    Column("job_id", String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("from_status", String(30), nullable=True),
    Column("to_status", String(30), nullable=False),
    Column("actor", String(20), nullable=False),
    Column("reason", String(500), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

# What the driver brought to the door: file keys and what was checked. The PIN itself is not kept.
job_proofs = Table(
    "job_proofs",
    metadata,
    Column("job_id", String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("photo_keys", Document, nullable=False),
    Column("signature_key", String(300), nullable=True),
    Column("pin_ok", Boolean, nullable=False),
    Column("age_check", Document, nullable=True),
    Column("cash_collected", BigInteger, nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# The delivery side of the orders dispatch has heard of (from the orders events): an order becomes a job
# once it is accepted and both stops have coordinates.
dispatch_orders = Table(
    "dispatch_orders",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("order_id", String(36), primary_key=True),
    Column("status", String(30), nullable=False),
    Column("pickup", Document, nullable=False),
    Column("dropoff", Document, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

outbox, inbox = messaging_tables(metadata)
