"""The `doorstep` command: running the platform; the other command groups live beside this module."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from doorstep.kernel.logging import configure_logging
from doorstep.kernel.settings import SERVICES, Settings, load_settings
from doorstep.runtime.cli_data import events_app, orders_app
from doorstep.runtime.cli_io import console, run
from doorstep.runtime.cli_simulate import simulate
from doorstep.runtime.cli_tenancy import apikey_app, connection_app, tenant_app
from doorstep.runtime.cli_users import user_app
from doorstep.runtime.services import build_services, make_broker, migrate

app = typer.Typer(help="Doorstep: orders from anywhere to the customer's door.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(apikey_app, name="apikey")
app.add_typer(user_app, name="user")
app.add_typer(connection_app, name="connection")
app.add_typer(orders_app, name="orders")
app.add_typer(events_app, name="events")
app.command("simulate")(simulate)


def main() -> None:
    app()


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

    run(work)


@app.command("docs")
def docs(
    out: Annotated[Path, typer.Option(help="Folder to write openapi.json and asyncapi.json into.")] = Path(
        "docs"
    ),
) -> None:
    """Write the OpenAPI (all-in-one) and AsyncAPI documents."""
    from doorstep.kernel.asyncapi import asyncapi_document
    from doorstep.runtime import permission_table
    from doorstep.runtime.app import build_app

    settings = load_settings()
    asgi = build_app(settings, build_services(settings), make_broker(settings))
    out.mkdir(parents=True, exist_ok=True)
    (out / "openapi.json").write_text(json.dumps(asgi.openapi(), indent=2, ensure_ascii=False) + "\n")
    (out / "asyncapi.json").write_text(json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n")
    (out / "permissions.md").write_text(permission_table.markdown(asgi))
    console.print(f"Wrote {out / 'openapi.json'}, {out / 'asyncapi.json'} and {out / 'permissions.md'}")


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

    run(work)


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
    settings = settings.model_copy(update={"public_url": base_url})
    # One set of services for the seed and the server: the drivers' positions stay in their geo store.
    services = build_services(settings)
    demo_state = asyncio.run(seed_demo(settings, public_url=base_url, orders=orders, services=services))
    configure_logging(level=settings.log_level, fmt="console")
    console.print(
        f"\n[bold green]Doorstep is running[/bold green] at [link={base_url}/docs]{base_url}/docs[/link]\n"
        f"  API key:      [bold]{demo_state['api_key']}[/bold]\n"
        f"  Tenant:       {demo_state['tenant_id']}\n"
        f"  Log in as:    {demo_state.get('admin_email')} / {demo_state.get('password')} (also dispatcher@, customer@)\n"
        f"  Drivers:      driver1@, driver2@, driver3@demo.doorstep.test / {demo_state.get('password')} (on duty in Mitte)\n"
        f"  Shopify hook: {demo_state['webhook_url']}\n"
        f"  Try:          curl -H 'Authorization: Bearer {demo_state['api_key']}' '{base_url}/v1/orders?limit=3'\n"
    )
    asgi = build_app(settings, services, make_broker(settings))
    uvicorn.run(asgi, host=host, port=port, log_config=None, access_log=False, server_header=False)
