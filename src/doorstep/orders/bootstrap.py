"""Builds the orders service from settings. The one place its dependencies are wired."""

from __future__ import annotations

from pathlib import Path

from doorstep.kernel.service import Service, assemble
from doorstep.kernel.settings import Settings
from doorstep.orders import api, consumers
from doorstep.orders.adapters.tables import inbox, outbox
from doorstep.orders.adapters.unit_of_work import OrdersUnitOfWork
from doorstep.orders.handlers import HANDLERS

NAME = "orders"


def build(settings: Settings) -> Service:
    return assemble(
        name=NAME,
        settings=settings,
        unit_of_work=OrdersUnitOfWork,
        outbox=outbox,
        inbox=inbox,
        handlers=HANDLERS,
        migrations=Path(__file__).parent / "migrations",
        routers=[api.router],
        consumers=consumers.subscriptions,
    )
