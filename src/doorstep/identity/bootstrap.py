"""Builds the identity service from settings. The one place its dependencies are wired."""

from __future__ import annotations

from pathlib import Path

from doorstep.identity import api
from doorstep.identity.adapters.tables import inbox, outbox
from doorstep.identity.adapters.unit_of_work import IdentityUnitOfWork
from doorstep.identity.handlers import HANDLERS
from doorstep.infra.service import Service, assemble
from doorstep.kernel.settings import Settings

NAME = "identity"


def build(settings: Settings) -> Service:
    return assemble(
        name=NAME,
        settings=settings,
        unit_of_work=IdentityUnitOfWork,
        outbox=outbox,
        inbox=inbox,
        handlers=HANDLERS,
        migrations=Path(__file__).parent / "migrations",
        routers=[api.router],
    )
