"""What the gateway hop costs: the same authenticated request, direct to the services and through the gateway.

    .venv/bin/python bench/gateway.py [--requests 3000] [--latency-requests 1500] [--concurrency 32]
                                      [--rounds 3] [--json] [--write-docs]

One services process (every service, PostgreSQL, Redis for revocations; no edge of its own, exactly as
`doorstep serve <service>` runs behind a gateway) and one `doorstep serve gateway` process in front of
it, with the rate limits in Redis as in the distributed shape. A third process, `doorstep serve all` on the
same database, shows the edge in-process (the all-in-one shape). Each round measures, for each target in
turn, `GET /v1/orders?limit=1` with an API key:

- latency: one request at a time (concurrency 1), p50 and p99;
- throughput: `--concurrency` requests always in flight (saturation), requests per second.

Rounds alternate the targets so that the shared machine's drift hits all of them alike; the table shows
the median over rounds. The added latency is the difference of the percentiles. The rate limit is set far
above what the run sends, so every request pays for the check and none is refused. The client is
bench/intake.py's: one process, asyncio and httptools, keep-alive HTTP/1.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio

# bench/intake.py and bench/report.py: this folder is on sys.path when run as a script.
from intake import (
    DOORSTEP,
    HOST,
    Processes,
    RawClient,
    Server,
    child_env,
    closed_loop,
    create_tenant,
    free_port,
    machine,
    ms,
    order_body,
    percentile,
    say,
    scratch_postgres_database,
)
from report import replace_section

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Gateway hop (`bench/gateway.py`)"
SCRIPT = str(Path(__file__).resolve())
PATH = "/v1/orders?limit=1"
WARMUP = 300
TARGET_ADDED_P50_MS = 1.0
TARGET_THROUGHPUT_RATIO = 0.8
TARGETS = {
    "direct": "services, direct",
    "gateway": "through the gateway",
    "edge": "all-in-one (edge in-process)",
}


def serve_services(port: int) -> None:
    """Every service in one process without an edge, served by uvicorn as `doorstep serve` serves."""
    import uvicorn

    from doorstep.kernel.logging import configure_logging
    from doorstep.kernel.settings import load_settings
    from doorstep.runtime.app import build_app
    from doorstep.runtime.services import build_services, make_broker

    settings = load_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    app = build_app(settings, build_services(settings), make_broker(settings), edge=False)
    uvicorn.run(app, host=HOST, port=port, log_config=None, access_log=False, server_header=False)


async def measure(
    port: int, api_key: str, servers: dict[str, int], args: argparse.Namespace
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"}
    client = RawClient(port, headers, max(args.concurrency, 1))
    try:
        warm = await closed_loop(client, [("GET", PATH, None)] * WARMUP, args.concurrency)
        if warm.answered(200) != WARMUP:
            raise RuntimeError(f"warm-up failed: {dict(warm.statuses)}")
        serial = await closed_loop(client, [("GET", PATH, None)] * args.latency_requests, 1, servers=servers)
        saturated = await closed_loop(
            client, [("GET", PATH, None)] * args.requests, args.concurrency, servers=servers
        )
    finally:
        await client.close()
    answered = max(1, saturated.answered(200))
    return {
        "p50_ms": ms(percentile(serial.latencies, 0.50)),
        "p99_ms": ms(percentile(serial.latencies, 0.99)),
        "mean_ms": round(1000 * statistics.fmean(serial.latencies), 3),
        "serial_failures": serial.failures(200),
        "requests_per_s": round(saturated.rate(200), 1),
        "saturation_p50_ms": ms(percentile(saturated.latencies, 0.50)),
        "saturation_p99_ms": ms(percentile(saturated.latencies, 0.99)),
        "saturation_failures": saturated.failures(200),
        "cpu": saturated.cpu,
        "cpu_ms_per_request": {
            name: round(1000 * seconds / answered, 3)
            for name, seconds in saturated.cpu["per_server_cpu_s"].items()
        },
        "client_cpu_ms_per_request": round(1000 * saturated.cpu["client_cpu_s"] / answered, 3),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        for stop in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop, task.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="doorstep-bench-gateway-"))
    processes = Processes(workdir, verbose=args.verbose)
    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    try:
        async with scratch_postgres_database(args.postgres_url, "gateway") as database_url:
            env = child_env(
                data_dir=str(workdir / "data"),
                database_url=database_url,
                redis_url=args.redis_url,
                redis_prefix=prefix,
                # Far above what the run sends: every request pays for the check, none is refused.
                rate_limit_per_minute="60000000",
                rate_limit_burst="1000000",
            )
            api_key = await create_tenant(env, workdir)
            ports = {name: free_port() for name in TARGETS}
            urls = {
                f"{name}_url": f"http://{HOST}:{ports['direct']}"
                for name in ("identity", "orders", "integrations")
            }
            servers: dict[str, Server] = {}
            servers["direct"] = await processes.start(
                "services",
                [sys.executable, SCRIPT, "--serve-services", str(ports["direct"])],
                env,
                ports["direct"],
            )
            await processes.wait_ready(servers["direct"])
            servers["gateway"] = await processes.start(
                "gateway",
                [DOORSTEP, "serve", "gateway", "--port", str(ports["gateway"])],
                child_env(**{**_settings(env), **urls}),
                ports["gateway"],
            )
            servers["edge"] = await processes.start(
                "all-in-one",
                [DOORSTEP, "serve", "all", "--port", str(ports["edge"]), "--no-migrate"],
                env,
                ports["edge"],
            )
            await processes.wait_ready(servers["gateway"])
            await processes.wait_ready(servers["edge"])
            seed = RawClient(ports["direct"], {"Authorization": f"Bearer {api_key}"}, 1)
            try:
                status, body = await seed.request("POST", "/v1/orders", order_body("bench-gateway-1"))
            finally:
                await seed.close()
            if status != 201:
                raise RuntimeError(f"placing the one order answered {status}: {body[:300]!r}")

            pids = {name: server.pid for name, server in servers.items()}
            rounds: list[dict[str, Any]] = []
            for number in range(1, args.rounds + 1):
                result: dict[str, Any] = {}
                for name in TARGETS:
                    say(f"round {number}/{args.rounds}: {TARGETS[name]}")
                    involved = {"services": pids["direct"]}
                    if name == "gateway":
                        involved["gateway"] = pids["gateway"]
                    if name == "edge":
                        involved = {"all-in-one": pids["edge"]}
                    result[name] = await measure(ports[name], api_key, involved, args)
                    say(
                        f"  p50 {result[name]['p50_ms']} ms, p99 {result[name]['p99_ms']} ms, "
                        f"{result[name]['requests_per_s']} requests/s"
                    )
                rounds.append(result)
    finally:
        await processes.stop_all()
        for name, errors in processes.log_errors.items():
            say(f"{name} logged {len(errors)} error line(s); first: {errors[0][:500]}")
        await _forget_redis_keys(args.redis_url, prefix)
        if args.keep_workdir:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return summarise(rounds)


def _settings(env: dict[str, str]) -> dict[str, str]:
    """`child_env`'s DOORSTEP_* settings back as keyword arguments for another `child_env`."""
    return {
        key.removeprefix("DOORSTEP_").lower(): value
        for key, value in env.items()
        if key.startswith("DOORSTEP_")
    }


async def _forget_redis_keys(url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def median(target: str, key: str) -> float:
        return round(float(statistics.median(r[target][key] for r in rounds)), 3)

    def cpu(target: str) -> dict[str, float]:
        names = rounds[0][target]["cpu_ms_per_request"]
        return {
            name: round(statistics.median(r[target]["cpu_ms_per_request"][name] for r in rounds), 3)
            for name in names
        }

    summary: dict[str, Any] = {
        name: {
            "p50_ms": median(name, "p50_ms"),
            "p99_ms": median(name, "p99_ms"),
            "mean_ms": median(name, "mean_ms"),
            "requests_per_s": median(name, "requests_per_s"),
            "saturation_p50_ms": median(name, "saturation_p50_ms"),
            "saturation_p99_ms": median(name, "saturation_p99_ms"),
            "cpu_ms_per_request": cpu(name),
            "client_cpu_ms_per_request": median(name, "client_cpu_ms_per_request"),
            "machine_pct": round(statistics.median(r[name]["cpu"]["machine_pct"] for r in rounds), 1),
        }
        for name in TARGETS
    }
    # Added latency and the throughput ratio per round (each round's targets ran minutes apart at most),
    # then their median.
    added_p50 = statistics.median(r["gateway"]["p50_ms"] - r["direct"]["p50_ms"] for r in rounds)
    added_p99 = statistics.median(r["gateway"]["p99_ms"] - r["direct"]["p99_ms"] for r in rounds)
    ratio = statistics.median(r["gateway"]["requests_per_s"] / r["direct"]["requests_per_s"] for r in rounds)
    edge_p50 = statistics.median(r["edge"]["p50_ms"] - r["direct"]["p50_ms"] for r in rounds)
    edge_ratio = statistics.median(
        r["edge"]["requests_per_s"] / r["direct"]["requests_per_s"] for r in rounds
    )
    failures = {
        f"{name} round {index}": {**r[name]["serial_failures"], **r[name]["saturation_failures"]}
        for index, r in enumerate(rounds, 1)
        for name in TARGETS
        if r[name]["serial_failures"] or r[name]["saturation_failures"]
    }
    return {
        "targets": summary,
        "hop": {
            "added_p50_ms": round(added_p50, 3),
            "added_p99_ms": round(added_p99, 3),
            "throughput_ratio": round(ratio, 3),
            "latency_met": added_p50 < TARGET_ADDED_P50_MS,
            "throughput_met": ratio >= TARGET_THROUGHPUT_RATIO,
        },
        "edge_in_process": {"added_p50_ms": round(edge_p50, 3), "throughput_ratio": round(edge_ratio, 3)},
        "failures": failures,
        "rounds": rounds,
    }


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def markdown(result: dict[str, Any], args: argparse.Namespace, host: dict[str, Any]) -> str:
    command = shlex.join([".venv/bin/python", "bench/gateway.py", *args.argv])
    targets = result["targets"]
    hop = result["hop"]

    def row(label: str, value: Any) -> str:
        return f"| {label} | " + " | ".join(value(targets[name]) for name in TARGETS) + " |"

    def cpu(block: dict[str, Any]) -> str:
        per = block["cpu_ms_per_request"]
        return ", ".join(f"{name} {value:.3f}" for name, value in per.items()) + (
            f"; client {block['client_cpu_ms_per_request']:.3f}"
        )

    lines = [
        "Command (from the repository root):",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Run on {args.started:%Y-%m-%d %H:%M} UTC, on {host['cpu_count']} CPUs ({host['cpu_model']}), "
        f"{host['memory_gib']} GiB RAM, {host['platform']}; {host['python']}. The machine is shared: load "
        f"average {host['load_average_at_start'][0]} at the start. {args.rounds} rounds; per round and "
        f"target {args.latency_requests} requests one at a time and {args.requests} at concurrency "
        f"{args.concurrency}, after {WARMUP} warm-up requests. Medians over the rounds.",
        "",
        "`GET /v1/orders?limit=1` with an API key (one order in the tenant), on PostgreSQL; Redis holds the "
        "rate limits and revocations.",
        "",
        "| | " + " | ".join(TARGETS.values()) + " |",
        "|---|" + "---|" * len(TARGETS),
        row("p50 at concurrency 1", lambda t: f"{_fmt(t['p50_ms'])} ms"),
        row("p99 at concurrency 1", lambda t: f"{_fmt(t['p99_ms'])} ms"),
        row(f"requests/s at concurrency {args.concurrency}", lambda t: _fmt(t["requests_per_s"])),
        row(
            "p50 / p99 at saturation",
            lambda t: f"{_fmt(t['saturation_p50_ms'])} / {_fmt(t['saturation_p99_ms'])} ms",
        ),
        row("CPU per request at saturation (ms)", cpu),
        row("machine busy at saturation", lambda t: f"{t['machine_pct']:.0f}%"),
        "",
        f"**The gateway hop** adds {_fmt(hop['added_p50_ms'])} ms at p50 and {_fmt(hop['added_p99_ms'])} ms "
        f"at p99 (target: under {TARGET_ADDED_P50_MS:g} ms at p50: "
        f"**{'met' if hop['latency_met'] else 'missed'}**), and keeps {100 * hop['throughput_ratio']:.0f}% of "
        f"the direct throughput (target: {100 * TARGET_THROUGHPUT_RATIO:.0f}% or more: "
        f"**{'met' if hop['throughput_met'] else 'missed'}**). "
        f"The edge in-process (all-in-one) adds {_fmt(result['edge_in_process']['added_p50_ms'])} ms at p50 "
        f"and keeps {100 * result['edge_in_process']['throughput_ratio']:.0f}% of the throughput.",
        "",
        "How each number is taken:",
        "",
        "- **services, direct**: the client calls a process with every service and no edge (as `doorstep "
        "serve <service>` runs behind a gateway); the service verifies the key itself (introspection, "
        "cached) and checks the revocation list in Redis.",
        "- **through the gateway**: the client calls `doorstep serve gateway`, which verifies the key (the "
        "same cached introspection and revocation check), takes one GCRA step in Redis, forwards over a "
        "keep-alive aiohttp connection, and the service verifies again (defence in depth).",
        "- **all-in-one (edge in-process)**: `doorstep serve all` on the same database: the edge verifies "
        "once and hands the principal to the services in the ASGI scope, plus the Redis GCRA step.",
        "- Added latency is the gateway's percentile minus the direct one, per round; the throughput ratio "
        "is the gateway's requests/s over the direct ones, per round; both are medians over the rounds.",
        "- CPU per request is each process's CPU time (from `/proc`) during the saturation phase divided by "
        "the requests answered; PostgreSQL's and Redis's own CPU is not in it.",
    ]
    if result["failures"]:
        lines += ["", f"Failures: {json.dumps(result['failures'])}"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per saturation phase")
    parser.add_argument("--latency-requests", type=int, default=1500, help="requests one at a time")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight at saturation")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds over the targets")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS.relative_to(ROOT)}")
    parser.add_argument(
        "--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres", help="server URL"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temporary directory and logs")
    parser.add_argument("--verbose", action="store_true", help="say which process runs where")
    parser.add_argument("--serve-services", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.requests, args.latency_requests, args.concurrency, args.rounds) < 1:
        parser.error("--requests, --latency-requests, --concurrency and --rounds must be positive")
    args.argv = list(argv)
    args.started = datetime.now(UTC)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.serve_services:
        serve_services(args.serve_services)
        return 0
    host = machine()
    try:
        result = asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted; the servers, the scratch database and the Redis keys of this run are gone")
        return 130
    if args.json:
        sys.stdout.write(json.dumps({"machine": host, "result": result}, indent=2) + "\n")
    else:
        sys.stdout.write(markdown(result, args, host) + "\n")
    if args.write_docs:
        replace_section(HEADING, markdown(result, args, host))
        say(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
