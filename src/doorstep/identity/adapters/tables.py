from sqlalchemy import (
    JSON,
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
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from doorstep.kernel.outbox import messaging_tables

metadata = MetaData()
Document = JSON().with_variant(JSONB(), "postgresql")

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("display_prefix", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # NULL: every permission of the tenant (keys made before scopes existed, and `tenant create`'s key).
    Column("scopes", Document, nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("created_by", String(80), nullable=True),
    Index("ix_api_keys_tenant", "tenant_id", "id"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey("tenants.id"), nullable=False),
    Column("email", String(320), nullable=True),  # lower-cased
    Column("phone", String(20), nullable=True),  # E.164
    Column("password_hash", String(200), nullable=True),
    Column("name", String(200), nullable=False),
    Column("status", String(20), nullable=False),  # invited, active, deactivated
    Column("roles", Document, nullable=False),
    Column("merchant_ids", Document, nullable=False),
    Column("profile", Document, nullable=False),
    Column("preferences", Document, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Tokens issued before this moment are refused (deactivation, "log out everywhere").
    Column("sessions_valid_after", DateTime(timezone=True), nullable=True),
    Column("version", Integer, nullable=False),
    UniqueConstraint("tenant_id", "email", name="uq_users_tenant_email"),
    UniqueConstraint("tenant_id", "phone", name="uq_users_tenant_phone"),
    Index("ix_users_tenant", "tenant_id", "id"),
)

invitations = Table(
    "invitations",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=True),
    Index("ix_invitations_user", "user_id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("family_id", String(36), nullable=False),
    Column("tenant_id", String(36), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # The access token issued alongside, so that log-out can revoke it too.
    Column("access_token_id", String(36), nullable=True),
    Column("access_expires_at", DateTime(timezone=True), nullable=True),
    Index("ix_refresh_tokens_family", "family_id"),
    Index("ix_refresh_tokens_user", "user_id"),
)

one_time_codes = Table(
    "one_time_codes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("destination", String(320), nullable=False),  # normalised email or E.164 phone
    Column("code_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("consumed_at", DateTime(timezone=True), nullable=True),
    Column("locked_at", DateTime(timezone=True), nullable=True),
    Index("ix_one_time_codes_destination", "tenant_id", "destination", "created_at"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(36), primary_key=True),
    Column("algorithm", String(10), nullable=False),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", Document, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Stops signing at this moment (a newer key took over) ...
    Column("retired_at", DateTime(timezone=True), nullable=True),
    # ... and leaves the JWKS once every token it signed has expired.
    Column("expires_at", DateTime(timezone=True), nullable=True),
)

role_permissions = Table(
    "role_permissions",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("role", String(40), primary_key=True),
    Column("permissions", Document, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(80), nullable=False),
)

addresses = Table(
    "addresses",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("label", String(100), nullable=False),
    Column("line1", String(300), nullable=False),
    Column("line2", String(300), nullable=True),
    Column("city", String(100), nullable=False),
    Column("postal_code", String(20), nullable=True),
    Column("country", String(2), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lng", Float, nullable=True),
    Column("instructions", String(500), nullable=True),
    Column("is_default", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_addresses_user", "tenant_id", "user_id"),
)

# Append-only: migrations add triggers that refuse UPDATE and DELETE.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(36), primary_key=True),  # the audit event's id: recording twice is a no-op
    Column("tenant_id", String(36), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("service", String(40), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("action", String(80), nullable=False),
    Column("object_type", String(40), nullable=False),
    Column("object_id", String(200), nullable=False),
    Column("before", Document, nullable=True),
    Column("after", Document, nullable=True),
    Column("ip", String(45), nullable=True),
    Column("user_agent", String(300), nullable=True),
    Column("request_id", String(128), nullable=True),
    Index("ix_audit_log_tenant", "tenant_id", "id"),
    Index("ix_audit_log_object", "tenant_id", "object_type", "object_id"),
    Index("ix_audit_log_actor", "tenant_id", "actor"),
)

outbox, inbox = messaging_tables(metadata)
