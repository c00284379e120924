"""One ASGI app for a set of services: the all-in-one process, or one service per process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import structlog
from fastapi import FastAPI

from doorstep.gateway.edge import EdgeConfig, install_edge, internal
from doorstep.infra import log_notifier
from doorstep.infra.identity_client import make_authenticator
from doorstep.infra.outbox_relay import OutboxRelay
from doorstep.infra.service import Service
from doorstep.kernel import context
from doorstep.kernel.broker import Broker, EventHandler, topic_matches
from doorstep.kernel.http import create_app
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.settings import SERVICES, Settings
from doorstep.runtime.services import migrate

log = structlog.get_logger()


def build_app(
    settings: Settings,
    services: Sequence[Service],
    broker: Broker,
    *,
    run_migrations: bool = True,
    edge: bool | None = None,
) -> FastAPI:
    """`edge`: front the services with the gateway's edge; by default when they are the whole platform.

    A process with all services is the all-in-one shape, which clients call directly; one with some of
    them sits behind the gateway, which is the edge there.
    """
    names = [service.name for service in services]
    shared = services[0].shared
    front = EdgeConfig.from_settings(settings, shared.edge_limiter()) if _fronted(edge, names) else None
    relays = [
        OutboxRelay(
            database=service.database,
            outbox=service.outbox,
            broker=broker,
            batch_size=settings.relay_batch_size,
            poll_seconds=settings.relay_poll_seconds,
            retention=timedelta(hours=settings.outbox_retention_hours),
        )
        for service in services
    ]
    if settings.broker_url.startswith("memory") and "identity" in names:
        # No notifications service yet: in the all-in-one shape messages go to the log.
        broker.subscribe("notifications", list(log_notifier.PATTERNS), log_notifier.deliver_to_log)
    for service, relay in zip(services, relays, strict=True):
        service.outbox_signal.connect(relay.wake)
        if service.subscriptions:
            patterns = [pattern for sub in service.subscriptions for pattern in sub.patterns]
            broker.subscribe(service.name, patterns, _dispatcher(service))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            await migrate(services)
        client = _identity_client(settings, app if "identity" in names else None)
        authenticator = make_authenticator(settings, client, shared)
        app.state.authenticator = authenticator
        if front is not None:
            front.authenticator = authenticator  # one authenticator, one cache: the edge verifies once
        await broker.start()
        for relay in relays:
            await relay.start()
        housekeeping = asyncio.create_task(_housekeeping(services), name="housekeeping")
        log.info("doorstep_started", services=names, broker=settings.broker_url.split("@")[-1])
        try:
            yield
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            for relay in relays:
                await relay.stop()
            await broker.close()
            await authenticator.close()
            for service in services:
                await service.database.dispose()
            await shared.close()

    readiness = {f"{service.name}_database": service.database.ping for service in services}
    readiness["broker"] = broker.ping
    if shared.redis is not None:
        readiness["redis"] = shared.ping
    app = create_app(
        service="+".join(names),
        routers=[router for service in services for router in service.routers],
        lifespan=lifespan,
        readiness=readiness,
        description=DESCRIPTION,
    )
    if front is not None:
        install_edge(app, front)
    app.state.edge = front
    app.state.services = {service.name: service for service in services}
    app.state.public_url = settings.public_url
    app.state.broker = broker
    app.state.relays = relays
    return app


async def _housekeeping(services: Sequence[Service], every: timedelta = timedelta(minutes=10)) -> None:
    while True:
        for service in services:
            for task in service.maintenance:
                try:
                    await task()
                except Exception:
                    log.exception("maintenance_failed", service=service.name)
        await asyncio.sleep(every.total_seconds())


def _fronted(edge: bool | None, names: Sequence[str]) -> bool:
    return set(names) == set(SERVICES) if edge is None else edge


def _identity_client(settings: Settings, local_app: FastAPI | None) -> httpx.AsyncClient:
    if local_app is not None:
        # Same client, same code path as across the network; only the socket is missing. The call
        # comes from inside, so the edge lets it reach identity's internal routes (introspection).
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=internal(local_app)), base_url="http://identity.local"
        )
    if not settings.identity_url:
        raise RuntimeError("set DOORSTEP_IDENTITY_URL: this process does not run the identity service")
    return httpx.AsyncClient(base_url=settings.identity_url, timeout=5.0)


def _dispatcher(service: Service) -> EventHandler:
    async def dispatch(envelope: CloudEvent) -> None:
        correlation = context.correlation_id.set(envelope.correlationid or envelope.id)
        bound = structlog.contextvars.bind_contextvars(event_id=envelope.id, event_type=envelope.type)
        try:
            for subscription in service.subscriptions:
                if any(topic_matches(pattern, envelope.type) for pattern in subscription.patterns):
                    await subscription.handler(envelope)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            context.correlation_id.reset(correlation)

    return dispatch


DESCRIPTION = """
Doorstep takes an order from wherever it is placed to the customer's door.

Authenticate with `Authorization: Bearer <api key>` (`doorstep tenant create NAME` prints one).
Errors are RFC 9457 problem details (`application/problem+json`) with a stable `type`.
Lists use cursor pagination: pass `next_cursor` back as `cursor`.
"""
