"""`doorstep orders import` and `doorstep events`: moving data in and events along."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from doorstep.kernel.broker import DeadLetterNotFound
from doorstep.kernel.settings import Settings
from doorstep.orders.importing import ImportReport, import_csv
from doorstep.runtime.cli_io import JsonFlag, TenantOption, console, emit, ready, require_tenant, run
from doorstep.runtime.services import make_broker

orders_app = typer.Typer(help="Orders.", no_args_is_help=True)
events_app = typer.Typer(help="Events: dead letters and their replay.", no_args_is_help=True)


@orders_app.command("import")
def orders_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    tenant: TenantOption,
    as_json: JsonFlag = False,
) -> None:
    """Import orders from a CSV file (same columns as POST /v1/orders/import)."""

    async def work(settings: Settings) -> ImportReport:
        await require_tenant(settings, tenant)
        orders = await ready(settings, "orders")
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

    report = run(work)
    if as_json:
        emit(report.model_dump())
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

    rows = run(work)
    if as_json:
        emit({"items": rows})
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

    consumer = run(work)
    console.print(f"Replayed {dead_letter_id} to {consumer}")
