"""`doorstep simulate`: replay a day of Grubhub's meal-delivery instances (MDRP) under a dispatch policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doorstep.runtime.cli_io import JsonFlag, console, emit


def simulate(
    instance: Annotated[
        Path, typer.Option("--instance", help="An MDRP instance folder (orders.txt, couriers.txt, ...).")
    ],
    policy: Annotated[
        str,
        typer.Option(help="Dispatch policy: nearest (the greedy baseline), cautious, batched or optimized."),
    ] = "nearest",
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Run the engine in this process, without HTTP, as fast as it goes."),
    ] = False,
    speed: Annotated[float, typer.Option(help="Live mode: simulated minutes per real minute.")] = 60.0,
    as_json: JsonFlag = False,
) -> None:
    """Replay an MDRP instance under a dispatch policy and print the paper's metrics."""
    from doorstep.dispatch.simulation.engine import Simulation
    from doorstep.dispatch.simulation.instance import InstanceError, load_instance
    from doorstep.dispatch.simulation.metrics import compute_metrics
    from doorstep.dispatch.simulation.policies import POLICIES, make_policy

    if not offline:
        console.print(
            "[red]Only --offline is available:[/red] the live mode, through the real services over HTTP at "
            f"--speed {speed:g}, comes with the dispatch service."
        )
        raise typer.Exit(2)
    if policy not in POLICIES:
        console.print(f"[red]Unknown policy {policy!r}.[/red] Choose one of: {', '.join(POLICIES)}")
        raise typer.Exit(2)
    try:
        day = load_instance(instance)
    except InstanceError as error:
        console.print(f"[red]Cannot read the instance:[/red] {error}")
        raise typer.Exit(2) from None
    metrics = compute_metrics(Simulation(day, make_policy(policy, day)).run())
    if as_json:
        emit(dict(metrics))
        return
    console.print(f"[bold]{day.name}[/bold] under [bold]{policy}[/bold] (offline)")
    for key, value in metrics.items():
        console.print(f"  {key:<32} {value}")
