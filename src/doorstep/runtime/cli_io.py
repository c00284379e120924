"""What every `doorstep` command shares: settings, a migrated service to work on, and output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from doorstep.identity import views as identity_views
from doorstep.infra.service import Service
from doorstep.kernel.errors import DoorstepError
from doorstep.kernel.logging import configure_logging
from doorstep.kernel.settings import Settings, load_settings
from doorstep.runtime.services import build_services, migrate

console = Console(stderr=True, soft_wrap=True)  # keys and URLs must stay copyable
T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant id.")]


def run(work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    settings = load_settings()
    configure_logging(level="WARNING", fmt=settings.log_format)
    try:
        return asyncio.run(work(settings))
    except DoorstepError as error:
        console.print(f"[red]{error.title}:[/red] {error.detail}")
        raise typer.Exit(1) from None


async def ready(settings: Settings, name: str) -> Service:
    """A migrated service to work on directly (the CLI runs beside or without the server)."""
    (service,) = build_services(settings, [name])
    await migrate([service])
    return service


async def require_tenant(settings: Settings, tenant_id: str) -> None:
    identity = await ready(settings, "identity")
    try:
        if await identity_views.tenant(identity.database, tenant_id) is None:
            console.print(f"[red]There is no tenant {tenant_id}.[/red]")
            raise typer.Exit(1)
    finally:
        await identity.database.dispose()


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
