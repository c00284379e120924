"""Typed settings from `DOORSTEP_*` environment variables. Read when asked, never at import."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("identity", "orders", "integrations", "dispatch")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    data_dir: Path = Path(".doorstep")
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql+asyncpg://...) for the distributed shape; "
        "unset means one SQLite file per service under data_dir.",
    )
    database_pool_size: int = Field(
        default=20, ge=1, le=1000, description="PostgreSQL connections each service's pool keeps open."
    )
    database_max_overflow: int = Field(
        default=0, ge=0, le=1000, description="Extra PostgreSQL connections, opened and closed per use."
    )
    database_pool_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a free connection before answering 503."
    )
    broker_url: str = Field(default="memory://", description="memory:// or amqp://user:pass@host:port/vhost")
    broker_exchange: str = "doorstep.events"
    broker_queue_prefix: str = Field(default="doorstep", description="Queues are <prefix>.<service>[.dead].")
    broker_delivery_limit: int = Field(default=5, ge=1, le=100)
    public_url: str = Field(default="http://127.0.0.1:8000", description="Where partners reach the gateway.")
    identity_url: str | None = None
    orders_url: str | None = None
    integrations_url: str | None = None
    dispatch_url: str | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    api_key_cache_seconds: float = Field(default=10.0, ge=0)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_retention_hours: float = Field(default=168.0, gt=0)
    idempotency_retention_hours: float = Field(default=24.0, gt=0)
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db for rate limits and token revocations shared across processes; "
        "unset keeps both in the process (the all-in-one shape).",
    )
    redis_prefix: str = Field(default="doorstep:", description="Prefix of every Redis key Doorstep writes.")
    token_issuer: str = Field(default="doorstep", description="The `iss` of access tokens.")
    token_audience: str = Field(default="doorstep", description="The `aud` of access tokens.")
    access_token_seconds: int = Field(default=600, ge=30, le=86_400)
    refresh_token_days: float = Field(default=30.0, gt=0, le=365)
    signing_key_rotation_days: float = Field(
        default=30.0, gt=0, description="Housekeeping starts signing with a new key this often."
    )
    jwks_cache_seconds: float = Field(default=300.0, ge=0)
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (JSON list)."
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=1, description="Requests per minute per API key and per user, at the gateway."
    )
    rate_limit_burst: int = Field(default=100, ge=0, description="Requests allowed at once above the pace.")
    rate_limit_ip_per_minute: int = Field(
        default=120, ge=1, description="Requests per minute per client IP for calls without a credential."
    )
    rate_limit_ip_burst: int = Field(default=30, ge=0)
    rate_limit_webhook_per_minute: int = Field(
        default=1200,
        ge=1,
        description="Partner webhook deliveries per minute per connection, at the gateway.",
    )
    rate_limit_webhook_burst: int = Field(default=300, ge=0)
    otp_per_hour: int = Field(default=5, ge=1, description="One-time codes sent per phone or email per hour.")
    otp_ip_per_hour: int = Field(
        default=30, ge=1, description="One-time codes asked for per client IP per hour."
    )
    geocoder: Literal["offline", "nominatim"] = Field(
        default="offline",
        description="Where addresses without coordinates are geocoded: `offline` knows a few demo streets "
        "in Berlin and needs no network; `nominatim` asks geocoder_url.",
    )
    geocoder_url: str = Field(
        default="https://nominatim.openstreetmap.org", description="Base URL of a Nominatim server."
    )
    geocoder_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    geocoder_cache_size: int = Field(
        default=10_000, ge=0, le=10_000_000, description="Geocoded addresses each process remembers."
    )
    geocoder_country_codes: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z]{2}(,[a-zA-Z]{2})*$",
        description="Search only these countries (ISO 3166-1 alpha-2, comma-separated), e.g. `de`.",
    )

    webhooks_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs (JSON list) that status webhooks may reach although private, e.g. "
        '["10.20.0.0/16"] for a self-hosted receiver; every other private address is refused.',
    )
    webhooks_timeout_seconds: float = Field(
        default=15.0, gt=0, le=60, description="A status webhook not answered with a 2xx by then is retried."
    )
    webhooks_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Status webhooks (with their attempts) and status reports that were delivered, or "
        "failed for good, are deleted this many days after their last attempt; a failed one can no "
        "longer be replayed then. Pending ones are kept, unless no enabled endpoint will take them.",
    )
    delivery_speed_kmh: float = Field(
        default=25.0, gt=0, le=500, description="Average speed of the delivery API's ETAs."
    )
    delivery_road_factor: float = Field(
        default=1.3, ge=1, le=5, description="Road distance over great-circle distance, for quotes."
    )
    delivery_handling_minutes: float = Field(
        default=5.0, ge=0, le=240, description="Minutes at the pickup added to every quoted duration."
    )

    dispatch_stale_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="A driver whose position pings stop for this long shows as stale and is left out of "
        "nearest-driver searches.",
    )

    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs time-limited file links (proof-of-delivery photos and signatures); unset, each "
        "process picks a random key and its links stop working when it restarts.",
    )
    files_backend: Literal["local", "s3"] = Field(
        default="local", description="Where proof-of-delivery files go: `local` (under data_dir) or `s3`."
    )
    files_s3_bucket: str | None = Field(default=None, description="The bucket, with files_backend=s3.")
    files_s3_endpoint_url: str | None = Field(
        default=None, description="An S3-compatible server (MinIO, Ceph...); unset means AWS S3."
    )
    files_s3_region: str | None = None
    files_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, le=1024**3, description="The largest file a client may upload."
    )

    @field_validator("webhooks_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # a ValueError names the bad entry
        return value

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None and self.database_url.startswith("postgresql")

    def service_url(self, service: str) -> str | None:
        value: str | None = getattr(self, f"{service}_url", None)
        return value


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
