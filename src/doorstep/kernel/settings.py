"""Typed settings from `DOORSTEP_*` environment variables. Read when asked, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("identity", "orders", "integrations")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    data_dir: Path = Path(".doorstep")
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql+asyncpg://...) for the distributed shape; "
        "unset means one SQLite file per service under data_dir.",
    )
    broker_url: str = Field(default="memory://", description="memory:// or amqp://user:pass@host:port/vhost")
    broker_exchange: str = "doorstep.events"
    broker_queue_prefix: str = Field(default="doorstep", description="Queues are <prefix>.<service>[.dead].")
    broker_delivery_limit: int = Field(default=5, ge=1, le=100)
    public_url: str = Field(default="http://127.0.0.1:8000", description="Where partners reach the gateway.")
    identity_url: str | None = None
    orders_url: str | None = None
    integrations_url: str | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    api_key_cache_seconds: float = Field(default=10.0, ge=0)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_retention_hours: float = Field(default=168.0, gt=0)
    idempotency_retention_hours: float = Field(default=24.0, gt=0)

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None and self.database_url.startswith("postgresql")

    def service_url(self, service: str) -> str | None:
        value: str | None = getattr(self, f"{service}_url", None)
        return value


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
