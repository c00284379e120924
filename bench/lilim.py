"""Dispatch routing on the Li & Lim pickup-and-delivery benchmark, against the best-known solutions.

    .venv/bin/python bench/lilim.py [--instances GLOB[,GLOB]] [--every N[,M]] [--time-limit S] [--json]
                                    [--solver pyvrp|vroom] [--peer ortools|none] [--seed N] [--write-docs]

Reads `../shared/bench/lilim/` beside the repository (or `--data`, or $DOORSTEP_LILIM_DIR): by default
every 100- and 200-task instance. Each instance is solved in this process, one at a time, every solver
single-threaded; the time limit is 10 s for 100 tasks and 30 s for 200 unless `--time-limit` says
otherwise. Routes are checked by doorstep.dispatch.routing.check on a problem scaled 10^6 with durations
rounded up (so a pass means feasible in exact doubles), and distances are recomputed in doubles.
Compare vehicles first: a distance gap is given only at the best-known vehicle count.
OR-Tools' routing solver with guided local search runs as a peer under the same limit (bench/lilim_ortools.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from doorstep.dispatch.routing import Plan, Problem, check
from doorstep.dispatch.routing.lilim import (
    BestKnown,
    Instance,
    best_known,
    parse,
    plan_of_routes,
    task_routes,
    to_problem,
)
from report import replace_section  # bench/report.py: this folder is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "bench" / "lilim"
DEFAULT_INSTANCES = "pdp_100/*.txt,pdp_200/*.txt"
HEADING = "## Dispatch: Li & Lim (`bench/lilim.py`)"
CHECK_SCALE = 10**6
TIME_LIMITS = {100: 10.0, 200: 30.0}  # seconds per instance, by task count
TARGETS = {100: (95.0, 0.5), 200: (85.0, 1.5)}  # % at best-known vehicles, mean gap % at equal vehicles

Solve = Callable[..., Plan]


def solver(name: str) -> Solve:
    if name == "pyvrp":
        from doorstep.dispatch.routing import pyvrp_solver

        return pyvrp_solver.solve
    if name == "vroom":
        from doorstep.dispatch.routing import vroom_solver

        return vroom_solver.solve
    if name == "ortools":
        from lilim_ortools import solve

        return solve
    raise SystemExit(f"unknown solver {name}")


def instances(data: Path, globs: str, every: Sequence[int] = (1,)) -> list[Path]:
    """The instances matching `globs`, every Nth of each folder (`every` by folder in order, the last repeats)."""
    found = sorted({path for pattern in globs.split(",") for path in data.glob(pattern.strip())})
    by_folder: dict[str, list[Path]] = {}
    for path in found:
        by_folder.setdefault(path.parent.name, []).append(path)
    return [
        path
        for n, (_, paths) in enumerate(sorted(by_folder.items()))
        for path in paths[:: every[min(n, len(every) - 1)]]
    ]


def size_class(path: Path) -> int:
    """100 or 200, as the folder (`pdp_100`) and the best-known table name them; lc101 has 106 tasks."""
    return int(path.parent.name.rsplit("_", 1)[-1])


def run_one(
    name: str, solve: Solve, instance: Instance, best: BestKnown, limit: float, seed: int, size: int
) -> dict[str, Any]:
    started, cpu_started = time.perf_counter(), time.process_time()
    problem = to_problem(instance)
    plan = solve(problem, time_limit=limit, seed=seed)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    routes = task_routes(instance, plan)
    exact: Problem = to_problem(instance, scale=CHECK_SCALE)
    violations = check(exact, plan_of_routes(exact, instance, routes))
    distance = instance.routes_distance(routes)
    vehicles = len(routes)
    return {
        "solver": name,
        "instance": instance.name,
        "tasks": size,
        "vehicles": vehicles,
        "distance": round(distance, 4),
        "bks_vehicles": best.vehicles,
        "bks_distance": best.distance,
        "gap_pct": round(100 * (distance - best.distance) / best.distance, 3) + 0.0
        if vehicles == best.vehicles
        else None,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "time_limit": limit,
        "feasible": not violations,
        "violations": [v.detail for v in violations[:3]],
        "routes": routes,
    }


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tasks in sorted({r["tasks"] for r in rows}):
        group = [r for r in rows if r["tasks"] == tasks]
        equal = [r["gap_pct"] for r in group if r["gap_pct"] is not None]
        at_bks = 100 * len(equal) / len(group)
        mean_gap = statistics.fmean(equal) if equal else None
        max_seconds = max(r["seconds"] for r in group)
        share_target, gap_target = TARGETS.get(tasks, (None, None))
        met = None
        if share_target is not None and gap_target is not None:
            limit = TIME_LIMITS[tasks]
            met = (
                at_bks >= share_target
                and mean_gap is not None
                and mean_gap < gap_target
                and all(r["feasible"] for r in group)
                and all(r["cpu_seconds"] <= limit * 1.05 for r in group)
            )
        out.append(
            {
                "tasks": tasks,
                "instances": len(group),
                "at_bks_vehicles_pct": round(at_bks, 1),
                "more_vehicles": sum(r["vehicles"] > r["bks_vehicles"] for r in group),
                "fewer_vehicles": sum(r["vehicles"] < r["bks_vehicles"] for r in group),
                "mean_gap_pct": None if mean_gap is None else round(mean_gap, 3),
                "max_seconds": max_seconds,
                "max_cpu_seconds": max(r["cpu_seconds"] for r in group),
                "all_feasible": all(r["feasible"] for r in group),
                "targets_met": met,
            }
        )
    return out


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "load": [round(v, 2) for v in os.getloadavg()],
    }


def gap(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    shown = "-" if row["gap_pct"] is None else f"{row['gap_pct']:.2f}"
    return (
        f"{row['vehicles']} / {row['distance']:.2f} / {shown} / {row['seconds']:.1f} ({row['cpu_seconds']:.1f})"
        f" / {'yes' if row['feasible'] else 'NO'}"
    )


def summary_lines(label: str, groups: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for g in groups:
        mean = "-" if g["mean_gap_pct"] is None else f"{g['mean_gap_pct']:.2f}%"
        target = TARGETS.get(g["tasks"])
        verdict = {True: "met", False: "NOT met", None: "no target"}[g["targets_met"]]
        lines.append(
            f"| {label} | {g['tasks']} | {g['instances']} | {g['at_bks_vehicles_pct']:.0f}% "
            f"(+{g['more_vehicles']} / -{g['fewer_vehicles']}) | {mean} | {g['max_seconds']:.1f} s "
            f"| {g['max_cpu_seconds']:.1f} s | {'yes' if g['all_feasible'] else 'NO'} "
            f"| {f'{target[0]:.0f}%, < {target[1]}%' if target else '-'}: {verdict} |"
        )
    return lines


def markdown(result: dict[str, Any], command: str) -> str:
    rows, peers = result["rows"], result["peer_rows"]
    host = result["machine"]
    sample = result["sample"]
    lines = [
        "Command (from the repository root):",
        "",
        f"```sh\n{command}\n```",
        "",
    ]
    if sample:
        lines += [
            f"**A sample: {len(rows)} of the {result['full_set']} instances**, run while the machine was shared "
            f"(load average {host['load']} at the start, {result['load_at_end']} at the end); the full set "
            "is `make bench-lilim`.",
            "",
        ]
    lines += [
        f"Run on {result['date']} UTC: {host['cpus']} CPUs ({host['cpu_model']}), Python {host['python']}. "
        f"Solver `{result['solver']}`, peer `{result['peer']}`, seed {result['seed']}; each instance alone, "
        "single-threaded, under its time limit (wall time; CPU time in brackets: below the wall time means "
        "the run shared its core). Feasibility by `doorstep.dispatch.routing.check` at 10^6 scale with "
        "durations rounded up; distances in doubles from the visiting order. Targets: 100 tasks at the "
        "best-known vehicle count on 95% with a mean gap under 0.5% within 10 s; 200 tasks 85%, 1.5%, 30 s.",
        "",
        "| solver | tasks | instances | at BKS vehicles (more / fewer) | mean gap at equal vehicles "
        "| max wall | max CPU | all feasible | target |",
        "|---|---:|---:|---|---:|---:|---:|---|---|",
        *summary_lines(result["solver"], result["summary"]),
        *summary_lines(result["peer"], result["peer_summary"]),
        "",
        f"| instance | BKS vehicles / distance | {result['solver']}: vehicles / distance / gap % / wall s (CPU s) "
        f"/ feasible | {result['peer']}: same |",
        "|---|---|---|---|",
    ]
    peer_of = {r["instance"]: r for r in peers}
    for row in rows:
        lines.append(
            f"| {row['instance']} | {row['bks_vehicles']} / {row['bks_distance']:.2f} | {gap(row)} "
            f"| {gap(peer_of.get(row['instance']))} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DOORSTEP_LILIM_DIR", DEFAULT_DATA)))
    parser.add_argument(
        "--instances", default=DEFAULT_INSTANCES, help="globs under the data folder, comma-separated"
    )
    parser.add_argument(
        "--every",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1],
        help="take every Nth instance of each folder: N, or N,M for pdp_100 and pdp_200",
    )
    parser.add_argument("--time-limit", type=float, help="seconds per instance (default: 10 / 30 by size)")
    parser.add_argument("--solver", choices=["pyvrp", "vroom"], default="pyvrp")
    parser.add_argument("--peer", choices=["ortools", "none"], default="ortools")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object per instance, then the summary")
    parser.add_argument(
        "--write-docs", action="store_true", help="rewrite this section of docs/benchmarks.md"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    paths = instances(args.data, args.instances, args.every)
    if not paths:
        raise SystemExit(f"no instances match {args.instances} under {args.data}")
    bks = best_known(args.data / "bks_lilim.csv")
    host = machine()
    primary = solver(args.solver)
    peer = None if args.peer == "none" else solver(args.peer)
    rows: list[dict[str, Any]] = []
    peer_rows: list[dict[str, Any]] = []
    for path in paths:
        instance = parse(path)
        size = size_class(path)
        limit = args.time_limit or TIME_LIMITS.get(size, size / 10)
        row = run_one(args.solver, primary, instance, bks[instance.name], limit, args.seed, size)
        rows.append(row)
        if peer is not None:
            peer_row = run_one(args.peer, peer, instance, bks[instance.name], limit, args.seed, size)
            peer_rows.append(peer_row)
            row = {**row, "peer": peer_row}
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            peer_text = f"   {args.peer}: {gap(row['peer'])}" if "peer" in row else ""
            print(
                f"{row['instance']:>10} BKS {row['bks_vehicles']}/{row['bks_distance']:.2f}  {gap(row)}{peer_text}",
                flush=True,
            )
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": host,
        "load_at_end": [round(v, 2) for v in os.getloadavg()],
        "solver": args.solver,
        "peer": args.peer,
        "seed": args.seed,
        "sample": len(paths) < len(instances(args.data, DEFAULT_INSTANCES)),
        "full_set": len(instances(args.data, DEFAULT_INSTANCES)),
        "rows": rows,
        "peer_rows": peer_rows,
        "summary": summary(rows),
        "peer_summary": summary(peer_rows),
    }
    if args.json:
        print(
            json.dumps(
                {"summary": result["summary"], "peer_summary": result["peer_summary"], "machine": host}
            )
        )
    else:
        print(
            "\n".join(
                summary_lines(args.solver, result["summary"])
                + summary_lines(args.peer, result["peer_summary"])
            )
        )
    if args.write_docs:
        command = " ".join(
            [".venv/bin/python", "bench/lilim.py", *(argv if argv is not None else sys.argv[1:])]
        )
        replace_section(HEADING, markdown(result, command))
        print("wrote docs/benchmarks.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
