"""Builds the integrations service from settings. The one place its dependencies are wired."""

from __future__ import annotations

from pathlib import Path

from doorstep.infra.service import Service, assemble
from doorstep.infra.shared import Shared
from doorstep.integrations import api, consumers
from doorstep.integrations.adapters.tables import inbox, outbox
from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.handlers import HANDLERS
from doorstep.kernel.settings import Settings

NAME = "integrations"


def build(settings: Settings, shared: Shared | None = None) -> Service:
    return assemble(
        name=NAME,
        settings=settings,
        unit_of_work=IntegrationsUnitOfWork,
        outbox=outbox,
        inbox=inbox,
        handlers=HANDLERS,
        shared=shared,
        migrations=Path(__file__).parent / "migrations",
        routers=[api.router],
        consumers=consumers.subscriptions,
    )
