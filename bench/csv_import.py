"""Peak memory of `doorstep orders import` for growing CSV files: bounded memory means a flat line.

Usage: .venv/bin/python bench/csv_import.py [--rows 10000 100000] [--json]

Each size runs in a fresh data directory as its own process, so the peak resident set size the kernel
reports for that child (`wait4`) is the import's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import replace_section  # bench/report.py: this folder is on sys.path when run as a script

DOORSTEP = Path(sys.executable).with_name("doorstep")
HEADER = (
    "external_id,pickup_name,pickup_address,pickup_lat,pickup_lon,dropoff_name,dropoff_address,"
    "dropoff_lat,dropoff_lon,dropoff_phone,customer_name,customer_phone,customer_email,item_name,item_sku,"
    "quantity,unit_price,currency,notes\n"
)


def write_csv(path: Path, rows: int) -> None:
    """`rows` rows, two per order, with a realistic spread of Berlin addresses."""
    rng = random.Random(rows)
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for row in range(rows):
            order = row // 2
            lat, lon = 52.52 + rng.uniform(-0.05, 0.05), 13.40 + rng.uniform(-0.08, 0.08)
            out.write(
                f'BULK-{order},Phở Saigon,"Kastanienallee 40, 10119 Berlin",52.5365,13.4089,'
                f'Kunde {order},"Sonnenallee {order % 200 + 1}, 12047 Berlin",{lat:.6f},{lon:.6f},'
                f"+49 151 {order:07d},Kunde {order},+49 151 {order:07d},kunde{order}@example.com,"
                f"Gericht {row % 7},SKU-{row % 7},{row % 3 + 1},{450 + row % 900},EUR,Bitte klingeln\n"
            )


def run(command: list[str], env: dict[str, str]) -> tuple[str, int, float]:
    """stdout, peak RSS in KiB and wall seconds of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {output}")
    return output, usage.ru_maxrss, elapsed


def measure(rows: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="doorstep-csv-bench-") as scratch:
        env = {**os.environ, "DOORSTEP_DATA_DIR": str(Path(scratch) / "data")}
        tenant, _, _ = run([str(DOORSTEP), "tenant", "create", "Bench", "--json"], env)
        tenant_id = json.loads(tenant)["tenant_id"]
        csv_path = Path(scratch) / "orders.csv"
        write_csv(csv_path, rows)
        output, peak_kib, seconds = run(
            [str(DOORSTEP), "orders", "import", str(csv_path), "--tenant", tenant_id, "--json"], env
        )
        report = json.loads(output)
        return {
            "rows": rows,
            "file_mib": round(csv_path.stat().st_size / 2**20, 1),
            "orders_created": report["created"],
            "errors": report["errors_total"],
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "seconds": round(seconds, 1),
            "orders_per_second": round(report["created"] / seconds),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--write-docs", action="store_true", help="Rewrite this section of docs/benchmarks.md."
    )
    args = parser.parse_args()
    results = [measure(rows) for rows in args.rows]
    if args.json:
        print(json.dumps(results))
        return
    table = [
        "| rows | file | orders created | peak RSS of the import | time | orders/s |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['rows']:,} | {r['file_mib']} MiB | {r['orders_created']:,} | {r['peak_rss_mib']} MiB "
            f"| {r['seconds']} s | {r['orders_per_second']:,} |"
            for r in results
        ),
    ]
    print("\n".join(table))
    if args.write_docs:
        command = " ".join([".venv/bin/python", "bench/csv_import.py", *sys.argv[1:]])
        body = "\n".join(
            [
                "Command (from the repository root):",
                "",
                f"```sh\n{command}\n```",
                "",
                f"Run on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} CPUs, "
                f"{platform.python_implementation()} {platform.python_version()}. Each size imports into a fresh "
                "all-in-one data directory with `doorstep orders import FILE --tenant T --json` as its own "
                "process; the peak resident set size is that process's, as the kernel reports it (`wait4`).",
                "",
                *table,
                "",
                "Bounded memory means the peak stays flat while the file grows tenfold: the CSV is parsed as a "
                "stream, orders are stored 500 per transaction, and at most 1,000 row errors are kept.",
            ]
        )
        replace_section("## CSV import memory (`bench/csv_import.py`)", body)
        print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
