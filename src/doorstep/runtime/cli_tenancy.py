"""`doorstep tenant`, `doorstep apikey` and `doorstep connection`: setting a tenant up."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from doorstep.identity import views as identity_views
from doorstep.identity.domain.commands import CreateApiKey, CreateTenant, RevokeApiKey
from doorstep.integrations.domain.commands import OpenConnection
from doorstep.kernel.settings import Settings
from doorstep.runtime.cli_io import JsonFlag, TenantOption, console, emit, ready, require_tenant, run

tenant_app = typer.Typer(help="Tenants: the companies one installation serves.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys of a tenant.", no_args_is_help=True)
connection_app = typer.Typer(help="Connections to partner platforms.", no_args_is_help=True)


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="The company's name.")], as_json: JsonFlag = False
) -> None:
    """Create a tenant and its first API key."""

    async def work(settings: Settings) -> dict[str, Any]:
        identity = await ready(settings, "identity")
        try:
            tenant, issued = await identity.bus.handle(CreateTenant(name=name))
        finally:
            await identity.database.dispose()
        return {"tenant_id": tenant.id, "api_key": issued.plaintext}

    result = run(work)
    if as_json:
        emit(result)
    else:
        console.print(
            f"Tenant [bold]{result['tenant_id']}[/bold]\nAPI key [bold]{result['api_key']}[/bold] (shown once)"
        )


@tenant_app.command("list")
def tenant_list(as_json: JsonFlag = False) -> None:
    """List tenants."""

    async def work(settings: Settings) -> list[dict[str, Any]]:
        identity = await ready(settings, "identity")
        try:
            tenants = await identity_views.list_tenants(identity.database)
        finally:
            await identity.database.dispose()
        return [{"tenant_id": t.id, "name": t.name, "created_at": t.created_at.isoformat()} for t in tenants]

    rows = run(work)
    if as_json:
        emit({"items": rows})
        return
    table = Table("tenant_id", "name", "created_at")
    for row in rows:
        table.add_row(row["tenant_id"], row["name"], row["created_at"])
    Console().print(table)


@apikey_app.command("create")
def apikey_create(tenant: TenantOption, name: str = "cli", as_json: JsonFlag = False) -> None:
    """Issue an API key."""

    async def work(settings: Settings) -> dict[str, Any]:
        identity = await ready(settings, "identity")
        try:
            issued = await identity.bus.handle(CreateApiKey(tenant_id=tenant, name=name))
        finally:
            await identity.database.dispose()
        return {"api_key_id": issued.key.id, "api_key": issued.plaintext}

    result = run(work)
    if as_json:
        emit(result)
    else:
        console.print(f"API key [bold]{result['api_key']}[/bold] (id {result['api_key_id']}; shown once)")


@apikey_app.command("list")
def apikey_list(tenant: TenantOption, as_json: JsonFlag = False) -> None:
    """List a tenant's API keys (never their secrets)."""

    async def work(settings: Settings) -> list[dict[str, Any]]:
        identity = await ready(settings, "identity")
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

    rows = run(work)
    if as_json:
        emit({"items": rows})
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
        identity = await ready(settings, "identity")
        try:
            await identity.bus.handle(RevokeApiKey(tenant_id=tenant, api_key_id=api_key_id))
        finally:
            await identity.database.dispose()

    run(work)
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
    if not isinstance(connection_settings, dict):
        console.print("[red]--settings must be a JSON object[/red], e.g. '{\"pickup\": {...}}'")
        raise typer.Exit(2)

    async def work(settings: Settings) -> dict[str, Any]:
        await require_tenant(settings, tenant)
        integrations = await ready(settings, "integrations")
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

    result = run(work)
    if as_json:
        emit(result)
    else:
        console.print(
            f"Connection {result['connection_id']}\nWebhook URL {result['webhook_url']}\nSecret {result['secret']}"
        )
