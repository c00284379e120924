"""What the gateway hop costs: the same authenticated request, direct to the services and through the gateway.

    .venv/bin/python bench/gateway.py [--latency-requests 3000] [--requests 1500] [--concurrency 10]
                                      [--diagnostic-concurrency 32] [--rounds 9] [--json] [--write-docs]

One services process (every service on PostgreSQL, Redis for revocations, no edge of its own, as
`doorstep serve <service>` runs behind a gateway) and one `doorstep serve gateway` in front of it, with the
rate limits in Redis as in the distributed shape. A third process, `doorstep serve all` on the same
database, shows the edge in-process (the all-in-one shape). The request is `GET /v1/orders?limit=1` with an
API key:

- latency: one request at a time, the targets taking turns every few dozen requests; p50 and p99;
- throughput: `--concurrency` requests always in flight (saturation), in rounds that alternate the targets.

The rate limit is set far above what the run sends: every request pays for the check, none is refused.
The client is bench/intake.py's: one process, asyncio and httptools, keep-alive HTTP/1.1. Every process,
the scratch database and the Redis keys of the run are removed again, also on errors and Ctrl-C.
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
from contextlib import AsyncExitStack
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
SLICE = 50
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


def _client(port: int, api_key: str, connections: int) -> RawClient:
    return RawClient(port, {"Authorization": f"Bearer {api_key}"}, connections)


async def latencies(ports: dict[str, int], api_key: str, args: argparse.Namespace) -> dict[str, Any]:
    """One request at a time, the targets taking turns every `SLICE` requests, so drift hits all alike."""
    clients = {name: _client(port, api_key, 1) for name, port in ports.items()}
    seen: dict[str, list[float]] = {name: [] for name in ports}
    failures: dict[str, dict[str, int]] = {}
    try:
        for name, client in clients.items():
            warm = await closed_loop(client, [("GET", PATH, None)] * WARMUP, 1)
            if warm.answered(200) != WARMUP:
                raise RuntimeError(f"warm-up of {name} failed: {dict(warm.statuses)}")
        for _ in range(max(1, args.latency_requests // SLICE)):
            for name, client in clients.items():
                load = await closed_loop(client, [("GET", PATH, None)] * SLICE, 1)
                seen[name] += load.latencies
                if load.failures(200):
                    failures[name] = load.failures(200)
    finally:
        for client in clients.values():
            await client.close()
    return {
        name: {
            "p50_ms": ms(percentile(values, 0.50)),
            "p99_ms": ms(percentile(values, 0.99)),
            "mean_ms": round(1000 * statistics.fmean(values), 3),
            "count": len(values),
            "failures": failures.get(name, {}),
        }
        for name, values in seen.items()
    }


async def throughput(
    port: int, api_key: str, servers: dict[str, int], concurrency: int, requests: int
) -> dict[str, Any]:
    """`concurrency` requests always in flight: requests per second, and each process's CPU per request."""
    client = _client(port, api_key, concurrency)
    try:
        await closed_loop(client, [("GET", PATH, None)] * WARMUP, concurrency)
        load = await closed_loop(client, [("GET", PATH, None)] * requests, concurrency, servers=servers)
    finally:
        await client.close()
    answered = max(1, load.answered(200))
    return {
        "requests_per_s": round(load.rate(200), 1),
        "p50_ms": ms(percentile(load.latencies, 0.50)),
        "p99_ms": ms(percentile(load.latencies, 0.99)),
        "failures": load.failures(200),
        "cpu": load.cpu,
        "cpu_ms_per_request": {
            name: round(1000 * seconds / answered, 3)
            for name, seconds in load.cpu["per_server_cpu_s"].items()
        },
        "client_cpu_ms_per_request": round(1000 * load.cpu["client_cpu_s"] / answered, 3),
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
        async with AsyncExitStack() as stack:
            database_url = await stack.enter_async_context(
                scratch_postgres_database(args.postgres_url, "gateway")
            )
            # Stopped before the database is dropped, so that nothing in them fails on the way out.
            stack.push_async_callback(processes.stop_all)
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
            involved = {
                "direct": {"services": pids["direct"]},
                "gateway": {"services": pids["direct"], "gateway": pids["gateway"]},
                "edge": {"all-in-one": pids["edge"]},
            }
            say(f"latency: {args.latency_requests} requests one at a time per target, in turns of {SLICE}")
            latency = await latencies(ports, api_key, args)
            for name in TARGETS:
                say(f"  {TARGETS[name]}: p50 {latency[name]['p50_ms']} ms, p99 {latency[name]['p99_ms']} ms")
            rounds: list[dict[str, Any]] = []
            for number in range(1, args.rounds + 1):
                result: dict[str, Any] = {}
                for name in TARGETS:
                    say(
                        f"throughput, round {number}/{args.rounds}: {TARGETS[name]}, {args.concurrency} in flight"
                    )
                    result[name] = await throughput(
                        ports[name], api_key, involved[name], args.concurrency, args.requests
                    )
                    say(f"  {result[name]['requests_per_s']} requests/s")
                rounds.append(result)
            diagnostic: dict[str, Any] = {}
            if args.diagnostic_concurrency:
                for name in TARGETS:
                    say(f"diagnostic: {TARGETS[name]}, {args.diagnostic_concurrency} in flight")
                    diagnostic[name] = await throughput(
                        ports[name], api_key, involved[name], args.diagnostic_concurrency, args.requests
                    )
                    say(f"  {diagnostic[name]['requests_per_s']} requests/s")
    finally:
        await processes.stop_all()
        for name, errors in processes.log_errors.items():
            say(f"{name} logged {len(errors)} error line(s); first: {errors[0][:500]}")
        await _forget_redis_keys(args.redis_url, prefix)
        if args.keep_workdir:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return summarise(latency, rounds, diagnostic)


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


def summarise(
    latency: dict[str, Any], rounds: list[dict[str, Any]], diagnostic: dict[str, Any]
) -> dict[str, Any]:
    def median(values: Any) -> float:
        return round(float(statistics.median(values)), 3)

    targets: dict[str, Any] = {}
    for name in TARGETS:
        names = rounds[0][name]["cpu_ms_per_request"]
        targets[name] = {
            **{key: latency[name][key] for key in ("p50_ms", "p99_ms", "mean_ms")},
            "requests_per_s": median(r[name]["requests_per_s"] for r in rounds),
            "saturation_p50_ms": median(r[name]["p50_ms"] for r in rounds),
            "saturation_p99_ms": median(r[name]["p99_ms"] for r in rounds),
            "cpu_ms_per_request": {
                server: median(r[name]["cpu_ms_per_request"][server] for r in rounds) for server in names
            },
            "client_cpu_ms_per_request": median(r[name]["client_cpu_ms_per_request"] for r in rounds),
            "machine_pct": round(median(r[name]["cpu"]["machine_pct"] for r in rounds), 1),
            "diagnostic_requests_per_s": diagnostic[name]["requests_per_s"] if diagnostic else None,
            "diagnostic_cpu_ms_per_request": diagnostic[name]["cpu_ms_per_request"] if diagnostic else None,
        }
    # The throughput ratio per round (its phases ran a minute apart at most), then the median.
    ratio = median(r["gateway"]["requests_per_s"] / r["direct"]["requests_per_s"] for r in rounds)
    edge_ratio = median(r["edge"]["requests_per_s"] / r["direct"]["requests_per_s"] for r in rounds)
    added_p50 = round(latency["gateway"]["p50_ms"] - latency["direct"]["p50_ms"], 3)
    added_p99 = round(latency["gateway"]["p99_ms"] - latency["direct"]["p99_ms"], 3)
    failures = {
        f"{name} throughput round {index}": r[name]["failures"]
        for index, r in enumerate(rounds, 1)
        for name in TARGETS
        if r[name]["failures"]
    }
    failures |= {
        f"{name} latency": latency[name]["failures"] for name in TARGETS if latency[name]["failures"]
    }
    return {
        "targets": targets,
        "hop": {
            "added_p50_ms": added_p50,
            "added_p99_ms": added_p99,
            "throughput_ratio": ratio,
            "round_ratios": [
                round(r["gateway"]["requests_per_s"] / r["direct"]["requests_per_s"], 3) for r in rounds
            ],
            "latency_met": added_p50 < TARGET_ADDED_P50_MS,
            "throughput_met": ratio >= TARGET_THROUGHPUT_RATIO,
        },
        "edge_in_process": {
            "added_p50_ms": round(latency["edge"]["p50_ms"] - latency["direct"]["p50_ms"], 3),
            "throughput_ratio": edge_ratio,
        },
        "failures": failures,
        "latency": latency,
        "rounds": rounds,
        "diagnostic": diagnostic,
    }


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


WHERE_THE_TIME_GOES = """\
Where the hop's time goes (cProfile and one-component-at-a-time runs on this machine, some against a
trivial upstream that costs 0.03 ms a request, so that the gateway is all there is to see):

- **The proxy itself, about 0.3 ms of CPU a request at saturation**: uvicorn parsing the request and
  writing the answer (two writes, head and body), the request-context middleware (request id, log context,
  metrics: about 0.02 ms) and the aiohttp client (about 0.09 ms on its own). The edge's own decisions
  (header scan, public-route lookup, cached principal, identity headers) take about 0.01 ms.
- **Redis, once every few dozen requests**: the rate limit is spent from permits the gateway leases
  from Redis a few at a time (`LeasedRateLimiter`: one GCRA step takes 1, 2, 4 ... up to a tenth of the
  quota's capacity, at most 64, and unspent permits lapse after a second), so a busy key pays the Redis
  round trip about once in 64 requests instead of on every one; the limits still hold across gateways,
  since every request spends a permit Redis granted. Before the leases, the GCRA step on every request
  put a Redis round trip (two more wake-ups, about 0.06 ms of CPU in redis-py) on each request's path,
  and the hop added 1.4 to 2.3 ms at p50 over six runs (target missed); three runs with the leases
  added 0.78, 0.87 and 0.91 ms (the last with other work on both cores): met, with little margin. The
  revocation check reuses a "not revoked" answer for one second (`doorstep.gateway.revocations`),
  because the service behind it checks the list on every request and refuses a revoked credential at
  once anyway.
- **At concurrency 1 the hop costs wake-ups more than CPU.** A process woken from idle on this VM runs
  cold (the gateway's own CPU per request is about twice its CPU at saturation, and it grows with how
  long it waited for the upstream), and the hop adds two wake-ups of the gateway: on the request and on
  the reply. Measured in isolation, the bare proxy hop (edge switched off) added 0.5 to 1.3 ms at p50,
  varying from run to run within the same hour with the other work on the host: the least stable
  number of the table, and the one closest to its target.
- **Throughput** is the services process's: about 2 ms of CPU a request for this endpoint against the
  gateway's 0.5 ms, while the two cores also run PostgreSQL, Redis and the client; with the gateway busy
  on the other core, the services process itself needs more CPU per request (shared caches), which is
  most of the lost throughput. The rounds differ by 20 points and more on this shared host; the
  services' PostgreSQL pool holds `DOORSTEP_DATABASE_POOL_SIZE` connections, so 32 in flight queue for
  one instead of opening and closing extra ones per request."""


def markdown(result: dict[str, Any], args: argparse.Namespace, host: dict[str, Any]) -> str:
    command = shlex.join([".venv/bin/python", "bench/gateway.py", *args.argv])
    targets = result["targets"]
    hop = result["hop"]
    edge = result["edge_in_process"]

    def row(label: str, value: Any) -> str:
        return f"| {label} | " + " | ".join(value(targets[name]) for name in TARGETS) + " |"

    def cpu(per: dict[str, float] | None) -> str:
        return ", ".join(f"{name} {value:.2f}" for name, value in (per or {}).items()) or "-"

    def met(flag: bool) -> str:
        return "**met**" if flag else "**missed**"

    lines = [
        "Command (from the repository root):",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Run on {args.started:%Y-%m-%d %H:%M} UTC, on {host['cpu_count']} CPUs ({host['cpu_model']}), "
        f"{host['memory_gib']} GiB RAM, {host['platform']}; {host['python']}. The machine is shared: load "
        f"average {host['load_average_at_start'][0]} at the start. `GET /v1/orders?limit=1` with an API key "
        "(one order in the tenant) on PostgreSQL, Redis for rate limits and revocations; client: "
        "bench/intake.py's (asyncio + httptools, keep-alive HTTP/1.1, one process).",
        "",
        "| | " + " | ".join(TARGETS.values()) + " |",
        "|---|" + "---|" * len(TARGETS),
        row("p50 at concurrency 1", lambda t: f"{_fmt(t['p50_ms'])} ms"),
        row("p99 at concurrency 1", lambda t: f"{_fmt(t['p99_ms'])} ms"),
        row(f"requests/s, {args.concurrency} in flight (saturation)", lambda t: _fmt(t["requests_per_s"])),
        row(
            "p50 / p99 at saturation",
            lambda t: f"{_fmt(t['saturation_p50_ms'])} / {_fmt(t['saturation_p99_ms'])} ms",
        ),
        row("CPU per request at saturation (ms)", lambda t: cpu(t["cpu_ms_per_request"])),
        row("client CPU per request (ms)", lambda t: f"{t['client_cpu_ms_per_request']:.2f}"),
        row("machine busy at saturation", lambda t: f"{t['machine_pct']:.0f}%"),
    ]
    if args.diagnostic_concurrency:
        lines += [
            row(
                f"_Diagnostic_: requests/s, {args.diagnostic_concurrency} in flight",
                lambda t: _fmt(t["diagnostic_requests_per_s"]),
            ),
            row(
                f"_Diagnostic_: CPU per request, {args.diagnostic_concurrency} in flight (ms)",
                lambda t: cpu(t["diagnostic_cpu_ms_per_request"]),
            ),
        ]
    lines += [
        "",
        f"**The gateway hop** adds {_fmt(hop['added_p50_ms'])} ms at p50 and {_fmt(hop['added_p99_ms'])} ms "
        f"at p99 (target under {TARGET_ADDED_P50_MS:g} ms at p50: {met(hop['latency_met'])}) and keeps "
        f"{100 * hop['throughput_ratio']:.1f}% of the direct throughput (target "
        f"{100 * TARGET_THROUGHPUT_RATIO:.0f}% or more: {met(hop['throughput_met'])}; the rounds: "
        + ", ".join(f"{100 * ratio:.0f}%" for ratio in hop["round_ratios"])
        + f"). The edge in-process (all-in-one) adds {_fmt(edge['added_p50_ms'])} ms at p50 and keeps "
        f"{100 * edge['throughput_ratio']:.1f}% of the throughput.",
        "",
        "How each number is taken:",
        "",
        "- **services, direct**: a process with every service and no edge, as `doorstep serve <service>` "
        "runs behind a gateway; it verifies the key itself (introspection, cached) and checks the "
        "revocation list in Redis.",
        "- **through the gateway**: `doorstep serve gateway` in front of that process: it verifies the key "
        "(cached introspection; the revocation list asked at most once a second per key), spends a "
        "rate-limit permit leased from Redis, forwards over a keep-alive aiohttp connection, and the service verifies again "
        "(defence in depth).",
        "- **all-in-one (edge in-process)**: `doorstep serve all` on the same database: the edge verifies "
        "once, spends a permit leased from Redis and hands the principal to the services in the ASGI scope.",
        f"- **Latency**: {args.latency_requests} requests per target one at a time, the targets taking "
        f"turns every {SLICE} requests so that the shared machine's drift hits all of them alike, after "
        f"{WARMUP} warm-up requests each. The added latency is the gateway's percentile minus the direct one.",
        f"- **Throughput**: {args.requests} requests with {args.concurrency} always in flight, per target, in "
        f"{args.rounds} rounds that alternate the targets; the median of the rounds, and the ratio is the "
        f"median of each round's ratio. {args.concurrency} in flight saturates the services process (one "
        "core); more only queues.",
        "- **CPU** per request: each process's CPU time from `/proc` during the saturation phase over the "
        "requests answered; PostgreSQL's and Redis's own CPU is not in it.",
        "- The rate limit is set far above what the run sends: every request pays for the check, none is "
        "refused.",
        "",
        WHERE_THE_TIME_GOES,
    ]
    if result["failures"]:
        lines += ["", f"Failures: {json.dumps(result['failures'])}"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1500, help="requests per saturation phase")
    parser.add_argument("--latency-requests", type=int, default=3000, help="requests one at a time")
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight at saturation")
    parser.add_argument(
        "--diagnostic-concurrency", type=int, default=32, help="one more saturation phase (0: none)"
    )
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds over the targets")
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
