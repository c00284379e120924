"""Builds the orders service from settings. The one place its dependencies are wired."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

from doorstep.infra.service import Service, assemble
from doorstep.infra.shared import Shared, make_shared
from doorstep.kernel.settings import Settings
from doorstep.orders import api, consumers
from doorstep.orders.adapters.repositories import prune_idempotency_keys
from doorstep.orders.adapters.tables import inbox, outbox
from doorstep.orders.adapters.unit_of_work import OrdersUnitOfWork
from doorstep.orders.handlers import HANDLERS

NAME = "orders"


def build(settings: Settings, shared: Shared | None = None) -> Service:
    shared = shared or make_shared(settings)
    service = assemble(
        name=NAME,
        settings=settings,
        unit_of_work=OrdersUnitOfWork,
        outbox=outbox,
        inbox=inbox,
        handlers=HANDLERS,
        shared=shared,
        migrations=Path(__file__).parent / "migrations",
        routers=[api.router],
        consumers=consumers.subscriptions,
        dependencies={"geocoder": shared.geocoder(settings)},
    )
    retention = timedelta(hours=settings.idempotency_retention_hours)
    service.maintenance.append(partial(prune_idempotency_keys, service.database, older_than=retention))
    return service
