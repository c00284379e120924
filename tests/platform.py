"""Start Doorstep in-process for tests: any set of services, SQLite or PostgreSQL, memory or RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from doorstep.identity.domain.commands import CreateTenant
from doorstep.infra.service import Service
from doorstep.kernel.settings import SERVICES, Settings
from doorstep.runtime.app import build_app
from doorstep.runtime.services import build_services, make_broker


@dataclass
class Tenant:
    tenant_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class RunningPlatform:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def services(self) -> dict[str, Service]:
        services: dict[str, Service] = self.app.state.services
        return services

    async def new_tenant(self, name: str = "Test Tenant") -> Tenant:
        tenant, issued = await self.services["identity"].bus.handle(CreateTenant(name=name))
        return Tenant(tenant.id, issued.plaintext)

    async def settle(self) -> None:
        """Publish every committed outbox row now and let the consumers handle it (memory broker)."""
        for _ in range(3):
            for relay in self.app.state.relays:
                await relay.publish_pending()


def settings_for(
    data_dir: Path, *, database_url: str | None = None, broker_url: str = "memory://", **overrides: object
) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        broker_url=broker_url,
        public_url="http://testserver",
        log_format="console",
        log_level="WARNING",
        **overrides,  # type: ignore[arg-type]
    )


@asynccontextmanager
async def running_platform(
    settings: Settings, names: Sequence[str] = SERVICES
) -> AsyncIterator[RunningPlatform]:
    """The app with its lifespan (migrations, broker, relays) and a client that talks to it in-process."""
    app = build_app(settings, build_services(settings, names), make_broker(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield RunningPlatform(app=app, client=client, settings=settings)


@asynccontextmanager
async def scratch_postgres_database(server_url: str) -> AsyncIterator[str]:
    """A new, uniquely named PostgreSQL database for one test (or session); dropped afterwards."""
    url = make_url(server_url)
    name = f"doorstep_test_{uuid.uuid4().hex[:12]}"
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# Partner and courier APIs that tests serve on 127.0.0.1: allowed the way a self-hosted partner on a
# private network would be (`DOORSTEP_WEBHOOKS_ALLOWED_NETWORKS`); everything else stays refused.
LOCAL_NETWORKS = ["127.0.0.0/8"]
