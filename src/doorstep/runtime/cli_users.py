"""`doorstep user`: setting up the first people of a tenant (after that, invitations through the API)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from doorstep.identity.domain.commands import CreateUser
from doorstep.identity.domain.users import User
from doorstep.kernel.permissions import Role
from doorstep.kernel.settings import Settings
from doorstep.runtime.cli_io import JsonFlag, TenantOption, console, emit, ready, run

user_app = typer.Typer(help="Users of a tenant.", no_args_is_help=True)


@user_app.command("create")
def user_create(
    tenant: TenantOption,
    password: Annotated[str, typer.Option(help="At least 10 characters.", prompt=True, hide_input=True)],
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number in international form.")] = None,
    role: Annotated[
        list[str] | None, typer.Option(help="Role (repeatable): " + ", ".join(role.value for role in Role))
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name; the email or phone if left out.")] = None,
    merchant: Annotated[
        list[str] | None, typer.Option(help="Merchant id, for merchant staff (repeatable).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an active user with a password, e.g. the tenant's first admin."""
    if email is None and phone is None:
        console.print("[red]Give --email or --phone.[/red]")
        raise typer.Exit(2)

    async def work(settings: Settings) -> dict[str, Any]:
        identity = await ready(settings, "identity")
        try:
            user: User = await identity.bus.handle(
                CreateUser(
                    tenant_id=tenant,
                    email=email,
                    phone=phone,
                    password=password,
                    name=name or email or phone or "",
                    roles=role or [Role.TENANT_ADMIN.value],
                    merchant_ids=merchant or [],
                )
            )
        finally:
            await identity.database.dispose()
        return {"user_id": user.id, "tenant_id": user.tenant_id, "roles": sorted(user.roles)}

    result = run(work)
    if as_json:
        emit(result)
    else:
        console.print(f"User [bold]{result['user_id']}[/bold] with roles {', '.join(result['roles'])}")
