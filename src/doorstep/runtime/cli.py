"""The `doorstep` command."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from doorstep.identity import views as identity_views
from doorstep.identity.domain.commands import CreateApiKey, CreateTenant, RevokeApiKey
from doorstep.integrations.domain.commands import OpenConnection
from doorstep.kernel.broker import DeadLetterNotFound
from doorstep.kernel.errors import DoorstepError
from doorstep.kernel.logging import configure_logging
from doorstep.kernel.service import Service
from doorstep.kernel.settings import SERVICES, Settings, load_settings
from doorstep.orders.importing import ImportReport, import_csv
from doorstep.runtime.services import build_services, make_broker, migrate

app = typer.Typer(help="Doorstep: orders from anywhere to the customer's door.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants: the companies one installation serves.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys of a tenant.", no_args_is_help=True)
connection_app = typer.Typer(help="Connections to partner platforms.", no_args_is_help=True)
orders_app = typer.Typer(help="Orders.", no_args_is_help=True)
events_app = typer.Typer(help="Events: dead letters and their replay.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(apikey_app, name="apikey")
app.add_typer(connection_app, name="connection")
app.add_typer(orders_app, name="orders")
app.add_typer(events_app, name="events")

console = Console(stderr=True, soft_wrap=True)  # keys and URLs must stay copyable
T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant id.")]


def main() -> None:
    app()


def _run(work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    settings = load_settings()
    configure_logging(level="WARNING", fmt=settings.log_format)
    try:
        return asyncio.run(work(settings))
    except DoorstepError as error:
        console.print(f"[red]{error.title}:[/red] {error.detail}")
        raise typer.Exit(1) from None


async def _ready(settings: Settings, name: str) -> Service:
    """A migrated service to work on directly (the CLI runs beside or without the server)."""
    (service,) = build_services(settings, [name])
    await migrate([service])
    return service


async def _require_tenant(settings: Settings, tenant_id: str) -> None:
    identity = await _ready(settings, "identity")
    try:
        if await identity_views.tenant(identity.database, tenant_id) is None:
            console.print(f"[red]There is no tenant {tenant_id}.[/red]")
            raise typer.Exit(1)
    finally:
        await identity.database.dispose()


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")


@app.command("migrate")
def migrate_command(
    service: Annotated[list[str] | None, typer.Option(help="Only these services (repeatable).")] = None,
) -> None:
    """Apply every pending database migration."""

    async def work(settings: Settings) -> None:
        services = build_services(settings, service or SERVICES)
        try:
            await migrate(services)
        finally:
            for one in services:
                await one.database.dispose()
        console.print(f"Migrated: {', '.join(one.name for one in services)}")

    _run(work)


@app.command("docs")
def docs(
    out: Annotated[Path, typer.Option(help="Folder to write openapi.json and asyncapi.json into.")] = Path(
        "docs"
    ),
) -> None:
    """Write the OpenAPI (all-in-one) and AsyncAPI documents."""
    from doorstep.kernel.asyncapi import asyncapi_document
    from doorstep.runtime.app import build_app

    settings = load_settings()
    asgi = build_app(settings, build_services(settings), make_broker(settings))
    out.mkdir(parents=True, exist_ok=True)
    (out / "openapi.json").write_text(json.dumps(asgi.openapi(), indent=2, ensure_ascii=False) + "\n")
    (out / "asyncapi.json").write_text(json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n")
    console.print(f"Wrote {out / 'openapi.json'} and {out / 'asyncapi.json'}")


@app.command("make-migration", hidden=True)
def make_migration(
    service: Annotated[str, typer.Argument(help="The service whose tables changed.")],
    message: Annotated[str, typer.Option("-m", "--message")],
) -> None:
    """For developers: autogenerate an Alembic revision for one service from its table definitions."""
    from doorstep.infra.migrations import make_revision

    async def work(settings: Settings) -> None:
        (one,) = build_services(settings, [service])
        try:
            await make_revision(one.database, one.migrations, message)
        finally:
            await one.database.dispose()

    _run(work)


@app.command()
def serve(
    what: Annotated[str, typer.Argument(help="all, gateway, or one service: " + ", ".join(SERVICES))] = "all",
    host: str = "127.0.0.1",
    port: int = 8000,
    migrations: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Migrate on start.")] = True,
) -> None:
    """Run the all-in-one platform, the gateway, or one service."""
    import uvicorn

    from doorstep.gateway.app import build_gateway
    from doorstep.runtime.app import build_app

    settings = load_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    if what == "gateway":
        asgi = build_gateway(settings)
    elif what == "all" or what in SERVICES:
        names = list(SERVICES) if what == "all" else [what]
        asgi = build_app(
            settings, build_services(settings, names), make_broker(settings), run_migrations=migrations
        )
    else:
        console.print(f"[red]Unknown service {what!r}.[/red] Choose all, gateway, " + ", ".join(SERVICES))
        raise typer.Exit(2)
    uvicorn.run(asgi, host=host, port=port, log_config=None, access_log=False, server_header=False)


@app.command()
def demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    orders: Annotated[int, typer.Option(help="How many sample orders to seed on first run.")] = 300,
) -> None:
    """All-in-one with a demo tenant, a Shopify connection and sample orders; prints the URL and API key."""
    import uvicorn

    from doorstep.runtime.app import build_app
    from doorstep.runtime.demo import seed_demo

    settings = load_settings()
    configure_logging(level="WARNING", fmt="console")
    base_url = f"http://{host}:{port}"
    demo_state = asyncio.run(seed_demo(settings, public_url=base_url, orders=orders))
    settings = settings.model_copy(update={"public_url": base_url})
    configure_logging(level=settings.log_level, fmt="console")
    console.print(
        f"\n[bold green]Doorstep is running[/bold green] at [link={base_url}/docs]{base_url}/docs[/link]\n"
        f"  API key:      [bold]{demo_state['api_key']}[/bold]\n"
        f"  Tenant:       {demo_state['tenant_id']}\n"
        f"  Shopify hook: {demo_state['webhook_url']}\n"
        f"  Try:          curl -H 'Authorization: Bearer {demo_state['api_key']}' '{base_url}/v1/orders?limit=3'\n"
    )
    asgi = build_app(settings, build_services(settings), make_broker(settings))
    uvicorn.run(asgi, host=host, port=port, log_config=None, access_log=False, server_header=False)


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="The company's name.")], as_json: JsonFlag = False
) -> None:
    """Create a tenant and its first API key."""

    async def work(settings: Settings) -> dict[str, Any]:
        identity = await _ready(settings, "identity")
        try:
            tenant, issued = await identity.bus.handle(CreateTenant(name=name))
        finally:
            await identity.database.dispose()
        return {"tenant_id": tenant.id, "api_key": issued.plaintext}

    result = _run(work)
    if as_json:
        _emit(result)
    else:
        console.print(
            f"Tenant [bold]{result['tenant_id']}[/bold]\nAPI key [bold]{result['api_key']}[/bold] (shown once)"
        )


@tenant_app.command("list")
def tenant_list(as_json: JsonFlag = False) -> None:
    """List tenants."""

    async def work(settings: Settings) -> list[dict[str, Any]]:
        identity = await _ready(settings, "identity")
        try:
            tenants = await identity_views.list_tenants(identity.database)
        finally:
            await identity.database.dispose()
        return [{"tenant_id": t.id, "name": t.name, "created_at": t.created_at.isoformat()} for t in tenants]

    rows = _run(work)
    if as_json:
        _emit({"items": rows})
        return
    table = Table("tenant_id", "name", "created_at")
    for row in rows:
        table.add_row(row["tenant_id"], row["name"], row["created_at"])
    Console().print(table)


@apikey_app.command("create")
def apikey_create(tenant: TenantOption, name: str = "cli", as_json: JsonFlag = False) -> None:
    """Issue an API key."""

    async def work(settings: Settings) -> dict[str, Any]:
        identity = await _ready(settings, "identity")
        try:
            issued = await identity.bus.handle(CreateApiKey(tenant_id=tenant, name=name))
        finally:
            await identity.database.dispose()
        return {"api_key_id": issued.key.id, "api_key": issued.plaintext}

    result = _run(work)
    if as_json:
        _emit(result)
    else:
        console.print(f"API key [bold]{result['api_key']}[/bold] (id {result['api_key_id']}; shown once)")


@apikey_app.command("list")
def apikey_list(tenant: TenantOption, as_json: JsonFlag = False) -> None:
    """List a tenant's API keys (never their secrets)."""

    async def work(settings: Settings) -> list[dict[str, Any]]:
        identity = await _ready(settings, "identity")
        try:
            keys = await identity_views.list_api_keys(identity.database, tenant)
        finally:
            await identity.database.dispose()
        return [
            {
                "api_key_id": k.id,
                "name": k.name,
                "prefix": k.display_prefix,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in keys
        ]

    rows = _run(work)
    if as_json:
        _emit({"items": rows})
        return
    table = Table("api_key_id", "name", "prefix", "created_at", "revoked_at")
    for row in rows:
        table.add_row(
            row["api_key_id"], row["name"], row["prefix"], row["created_at"], row["revoked_at"] or ""
        )
    Console().print(table)


@apikey_app.command("revoke")
def apikey_revoke(api_key_id: str, tenant: TenantOption) -> None:
    """Revoke an API key. Services that cached it stop accepting it within DOORSTEP_API_KEY_CACHE_SECONDS."""

    async def work(settings: Settings) -> None:
        identity = await _ready(settings, "identity")
        try:
            await identity.bus.handle(RevokeApiKey(tenant_id=tenant, api_key_id=api_key_id))
        finally:
            await identity.database.dispose()

    _run(work)
    console.print(f"Revoked {api_key_id}")


@connection_app.command("create")
def connection_create(
    tenant: TenantOption,
    platform: Annotated[str, typer.Option(help="doorstep or shopify")],
    settings_json: Annotated[
        str,
        typer.Option(
            "--settings", help='JSON, e.g. {"pickup": {"name": ..., "address": ..., "location": ...}}'
        ),
    ] = "{}",
    secret: Annotated[
        str | None, typer.Option(help="The platform's signing secret (Shopify: the app's secret).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Connect a partner platform; prints the webhook URL to give the platform and the signing secret."""
    try:
        connection_settings = json.loads(settings_json)
    except json.JSONDecodeError as error:
        console.print(f"[red]--settings is not JSON:[/red] {error}")
        raise typer.Exit(2) from None

    async def work(settings: Settings) -> dict[str, Any]:
        await _require_tenant(settings, tenant)
        integrations = await _ready(settings, "integrations")
        try:
            connection = await integrations.bus.handle(
                OpenConnection(
                    tenant_id=tenant, platform=platform, settings=connection_settings, secret=secret
                )
            )
        finally:
            await integrations.database.dispose()
        base = settings.public_url.rstrip("/")
        return {
            "connection_id": connection.id,
            "webhook_url": f"{base}/v1/integrations/webhooks/{connection.platform}/{connection.token}",
            "secret": connection.secret,
        }

    result = _run(work)
    if as_json:
        _emit(result)
    else:
        console.print(
            f"Connection {result['connection_id']}\nWebhook URL {result['webhook_url']}\nSecret {result['secret']}"
        )


@orders_app.command("import")
def orders_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    tenant: TenantOption,
    as_json: JsonFlag = False,
) -> None:
    """Import orders from a CSV file (same columns as POST /v1/orders/import)."""

    async def work(settings: Settings) -> ImportReport:
        await _require_tenant(settings, tenant)
        orders = await _ready(settings, "orders")
        size = file.stat().st_size
        try:
            with (
                file.open("rb") as handle,
                Progress(
                    TextColumn("[bold]Importing[/bold]"),
                    BarColumn(),
                    DownloadColumn(),
                    TimeRemainingColumn(),
                    TextColumn("{task.fields[created]} created"),
                    console=console,
                    disable=as_json,
                ) as progress,
            ):
                task = progress.add_task("import", total=size, created=0)

                def advance(report: ImportReport) -> None:
                    progress.update(task, completed=handle.tell(), created=report.created)

                return await import_csv(
                    handle, bus=orders.bus, tenant_id=tenant, actor="cli", on_batch=advance
                )
        finally:
            await orders.database.dispose()

    report = _run(work)
    if as_json:
        _emit(report.model_dump())
        return
    console.print(
        f"Created {report.created}, duplicates {report.duplicates}, invalid rows {report.errors_total}"
    )
    for problem in report.errors[:20]:
        console.print(f"  row {problem.row}: {problem.field or '-'}: {problem.message}")
    if report.errors_total > 20:
        console.print(f"  ... and {report.errors_total - 20} more (use --json for up to 1000)")


@events_app.command("dead-letters")
def dead_letters(
    consumer: Annotated[str | None, typer.Option(help="Only this consumer (a service name).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List events that a consumer gave up on."""

    async def work(settings: Settings) -> list[dict[str, Any]]:
        broker = make_broker(settings)
        await broker.start()
        try:
            letters = await broker.dead_letters(consumer)
        finally:
            await broker.close()
        return [
            {
                "id": letter.id,
                "consumer": letter.consumer,
                "type": letter.event.type,
                "tenant_id": letter.event.tenantid,
                "reason": letter.reason,
                "attempts": letter.attempts,
                "dead_lettered_at": letter.dead_lettered_at.isoformat(),
            }
            for letter in letters
        ]

    rows = _run(work)
    if as_json:
        _emit({"items": rows})
        return
    table = Table("id", "consumer", "type", "attempts", "reason", "dead_lettered_at")
    for row in rows:
        table.add_row(
            row["id"],
            row["consumer"],
            row["type"],
            str(row["attempts"]),
            row["reason"][:80],
            row["dead_lettered_at"],
        )
    Console().print(table)


@events_app.command("replay")
def replay(
    dead_letter_id: Annotated[str, typer.Argument(help="The event id shown by dead-letters.")],
) -> None:
    """Hand a dead-lettered event back to its consumer."""

    async def work(settings: Settings) -> str:
        broker = make_broker(settings)
        await broker.start()
        try:
            letter = await broker.replay_dead_letter(dead_letter_id)
        except DeadLetterNotFound:
            console.print(f"[red]No dead letter {dead_letter_id}.[/red]")
            raise typer.Exit(1) from None
        finally:
            await broker.close()
        return letter.consumer

    consumer = _run(work)
    console.print(f"Replayed {dead_letter_id} to {consumer}")
