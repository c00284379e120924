"""`doorstep simulate`: offline replay of an instance folder, its JSON, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from doorstep.runtime.cli import app

# The tiny day of test_simulation_engine.py, as files: its metrics are worked out by hand there.
TINY_DAY = {
    "restaurants.txt": "restaurant\tx\ty\nrA\t0\t0\nrB\t1000\t0\n",
    "orders.txt": (
        "order\tx\ty\tplacement_time\trestaurant\tready_time\n"
        "o1\t0\t500\t0\trA\t10\n"
        "o2\t0\t800\t2\trA\t8\n"
        "o3\t1000\t600\t5\trB\t15\n"
    ),
    "couriers.txt": "courier\tx\ty\ton_time\toff_time\nc1\t0\t300\t0\t60\nc2\t1000\t400\t0\t60\n",
    "instance_parameters.txt": "meters_per_minute\tpickup\tdropoff\ttarget\tmaximum\tper_order\tper_hour\n100\t4\t2\t20\t90\t10\t15\n",
}


def tiny_day(folder: Path) -> Path:
    folder.mkdir()
    for name, text in TINY_DAY.items():
        (folder / name).write_text(text)
    return folder


def test_offline_json_prints_exactly_the_papers_metrics(tmp_path: Path) -> None:
    # given the tiny day as an instance folder
    folder = tiny_day(tmp_path / "tiny")

    # when it is simulated offline under `nearest` with --json
    result = CliRunner().invoke(
        app, ["simulate", "--instance", str(folder), "--policy", "nearest", "--offline", "--json"]
    )

    # then one JSON object with exactly the metric keys, the values of the hand-worked timeline
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "orders_delivered": 3,
        "orders_total": 3,
        "click_to_door_mean_min": 21.3333,
        "click_to_door_p90_min": 24.6,
        "click_to_door_overage_mean_min": 2.0,
        "ready_to_pickup_mean_min": 0.6667,
        "courier_utilization": 0.3167,
        "orders_per_courier_hour": 1.5,
        "courier_pay_total": 35.0,
    }


def test_the_live_mode_is_refused_until_the_dispatch_service_exists(tmp_path: Path) -> None:
    # given an instance folder
    folder = tiny_day(tmp_path / "tiny")

    # when simulated without --offline
    result = CliRunner().invoke(app, ["simulate", "--instance", str(folder), "--speed", "60"])

    # then exit code 2 and a message saying why; nothing on stdout
    assert result.exit_code == 2
    assert "Only --offline is available" in result.stderr
    assert "comes with the dispatch service" in result.stderr
    assert result.stdout == ""


def test_a_bad_instance_or_policy_is_named(tmp_path: Path) -> None:
    # given a folder whose orders.txt has a short line
    folder = tiny_day(tmp_path / "bad")
    (folder / "orders.txt").write_text(TINY_DAY["orders.txt"] + "o4\t1\t2\t3\n")

    # when simulated, and when an unknown policy is asked for
    bad_file = CliRunner().invoke(app, ["simulate", "--instance", str(folder), "--offline"])
    bad_policy = CliRunner().invoke(
        app, ["simulate", "--instance", str(folder), "--offline", "--policy", "magic"]
    )

    # then both exit with 2 and name the problem
    assert bad_file.exit_code == 2
    assert "orders.txt, line 5: expected 6 fields, found 4" in bad_file.stderr.replace("\n", "")
    assert bad_policy.exit_code == 2
    assert "Unknown policy 'magic'" in bad_policy.stderr
