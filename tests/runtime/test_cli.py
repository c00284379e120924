"""The `doorstep` command, driven in-process against SQLite files in a temporary data directory."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner, Result

from doorstep.runtime.cli import app

PUBLIC_URL = "https://doorstep.example.com"
PICKUP = {
    "name": "Bäckerei Morgenrot",
    "address": "Kastanienallee 12, 10435 Berlin, Germany",
    "location": {"lat": 52.5376, "lon": 13.4083},
}
CSV_HEADER = (
    "external_id,pickup_name,pickup_address,pickup_lat,pickup_lon,"
    "dropoff_name,dropoff_address,dropoff_lat,dropoff_lon,customer_name,item_name,quantity,unit_price,currency"
)
CSV_ROWS = [
    "A-1,Curry Corner,Oranienstraße 12,52.5,13.41,Lena,Skalitzer Straße 3,52.49,13.43,Lena Müller,Currywurst,2,450,EUR",
    "A-1,Curry Corner,Oranienstraße 12,52.5,13.41,Lena,Skalitzer Straße 3,52.49,13.43,Lena Müller,Pommes,1,300,EUR",
    "A-2,Curry Corner,Oranienstraße 12,52.5,13.41,Jonas,Wiener Straße 18,52.49,13.42,Jonas Becker,Currywurst,zwei,450,EUR",
    "A-3,Curry Corner,Oranienstraße 12,52.5,13.41,Jonas,Wiener Straße 18,52.49,13.42,Jonas Becker,Currywurst,1,450,EUR",
]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures process-wide logging onto the runner's streams; put the test session's back."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


class Cli:
    """Runs `doorstep ...` with a fresh data directory and the public URL set, as a shell would."""

    def __init__(self, data_dir: Path) -> None:
        self.runner = CliRunner()
        self.env: dict[str, str | None] = {
            "DOORSTEP_DATA_DIR": str(data_dir),
            "DOORSTEP_PUBLIC_URL": PUBLIC_URL,
            "DOORSTEP_DATABASE_URL": None,
            "DOORSTEP_BROKER_URL": "memory://",
            "DOORSTEP_LOG_FORMAT": "json",
        }

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env, catch_exceptions=False)

    def json(self, *args: str) -> dict[str, Any]:
        """Run with `--json` and return the one JSON object printed on stdout."""
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.stdout
        parsed: dict[str, Any] = json.loads(lines[0])
        return parsed


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_tenant_create_prints_one_json_object_with_the_tenant_and_its_key(cli: Cli, tmp_path: Path) -> None:
    # Given an empty data directory
    # When a tenant is created with --json
    created = cli.json("tenant", "create", "Acme")

    # Then stdout is exactly the tenant id and its first API key
    assert set(created) == {"tenant_id", "api_key"}
    assert created["api_key"].startswith("dsk_")
    # And the tenant is stored in the data directory, under its name
    assert (tmp_path / "identity.db").is_file()
    [listed] = cli.json("tenant", "list")["items"]
    assert listed["tenant_id"] == created["tenant_id"]
    assert listed["name"] == "Acme"


def test_api_keys_are_created_listed_and_revoked(cli: Cli) -> None:
    # Given a tenant with its default key
    tenant_id = cli.json("tenant", "create", "Acme")["tenant_id"]

    # When a second key is created
    issued = cli.json("apikey", "create", "--tenant", tenant_id, "--name", "deploy")

    # Then it is shown once, with its id
    assert set(issued) == {"api_key_id", "api_key"}
    assert issued["api_key"].startswith("dsk_")
    # And the list shows both keys by prefix, neither revoked, and never a secret
    listed = cli.json("apikey", "list", "--tenant", tenant_id)["items"]
    assert sorted(key["name"] for key in listed) == ["default", "deploy"]
    assert all(set(key) == {"api_key_id", "name", "prefix", "created_at", "revoked_at"} for key in listed)
    assert all(key["revoked_at"] is None for key in listed)
    deploy = next(key for key in listed if key["name"] == "deploy")
    assert deploy["api_key_id"] == issued["api_key_id"]
    assert deploy["prefix"] == issued["api_key"][:10]

    # When the second key is revoked
    revoked = cli("apikey", "revoke", issued["api_key_id"], "--tenant", tenant_id)

    # Then the command says so and the list shows when, for that key only
    assert revoked.exit_code == 0, revoked.output
    assert f"Revoked {issued['api_key_id']}" in revoked.stderr
    after = {
        key["name"]: key["revoked_at"] for key in cli.json("apikey", "list", "--tenant", tenant_id)["items"]
    }
    assert after["deploy"] is not None
    assert after["default"] is None


def test_a_connection_prints_its_webhook_url_under_the_public_url_and_its_secret(cli: Cli) -> None:
    # Given a tenant
    tenant_id = cli.json("tenant", "create", "Acme")["tenant_id"]

    # When a Shopify connection is created with the shop's location
    connection = cli.json(
        "connection",
        "create",
        "--tenant",
        tenant_id,
        "--platform",
        "shopify",
        "--settings",
        json.dumps({"pickup": PICKUP}),
        "--secret",
        "shpss_0123456789abcdef0123",
    )

    # Then it prints the connection, the webhook URL to give Shopify, and the secret
    assert set(connection) == {"connection_id", "webhook_url", "secret"}
    assert connection["webhook_url"].startswith(f"{PUBLIC_URL}/v1/integrations/webhooks/shopify/")
    assert connection["secret"] == "shpss_0123456789abcdef0123"


def test_a_shopify_connection_without_a_pickup_fails_naming_the_setting(cli: Cli) -> None:
    # Given a tenant
    tenant_id = cli.json("tenant", "create", "Acme")["tenant_id"]

    # When a Shopify connection is created without settings
    result = cli("connection", "create", "--tenant", tenant_id, "--platform", "shopify", "--json")

    # Then the command fails with the reason on stderr and nothing on stdout
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "settings.pickup" in result.stderr


def test_settings_that_are_not_json_are_a_usage_error(cli: Cli) -> None:
    # Given a tenant
    tenant_id = cli.json("tenant", "create", "Acme")["tenant_id"]

    # When the settings are not JSON
    result = cli(
        "connection", "create", "--tenant", tenant_id, "--platform", "shopify", "--settings", "{pickup"
    )

    # Then the command stops with exit code 2
    assert result.exit_code == 2
    assert "--settings is not JSON" in result.stderr


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["apikey", "create", "--tenant", "no-such-tenant", "--json"], "there is no tenant no-such-tenant"),
        (["apikey", "revoke", "key-1", "--tenant", "no-such-tenant"], "there is no API key key-1"),
        (
            ["connection", "create", "--tenant", "no-such-tenant", "--platform", "doorstep", "--json"],
            "There is no tenant no-such-tenant.",
        ),
        (
            ["orders", "import", "{csv}", "--tenant", "no-such-tenant", "--json"],
            "There is no tenant no-such-tenant.",
        ),
    ],
    ids=["apikey-create", "apikey-revoke", "connection-create", "orders-import"],
)
def test_an_unknown_tenant_exits_with_code_1(
    cli: Cli, tmp_path: Path, command: list[str], message: str
) -> None:
    # Given a CSV file and no tenants at all
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text("\n".join([CSV_HEADER, CSV_ROWS[0]]) + "\n", encoding="utf-8")

    # When a command names a tenant that does not exist
    result = cli(*[str(csv_file) if part == "{csv}" else part for part in command])

    # Then it exits with 1, says why on stderr and prints nothing on stdout
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""
    # And nothing was created for that tenant
    assert cli.json("tenant", "list") == {"items": []}


def test_orders_import_prints_the_report_and_a_second_run_finds_duplicates(cli: Cli, tmp_path: Path) -> None:
    # Given a tenant and a CSV with two good orders (one of two rows) and one row with a bad quantity
    tenant_id = cli.json("tenant", "create", "Acme")["tenant_id"]
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text("\n".join([CSV_HEADER, *CSV_ROWS]) + "\n", encoding="utf-8")

    # When the file is imported
    report = cli.json("orders", "import", str(csv_file), "--tenant", tenant_id)

    # Then the report counts the created orders and names the bad row and column
    assert report == {
        "created": 2,
        "duplicates": 0,
        "errors": [{"row": 3, "field": "quantity", "message": "expected a whole number, got 'zwei'"}],
        "errors_total": 1,
    }

    # When the same file is imported again
    again = cli.json("orders", "import", str(csv_file), "--tenant", tenant_id)

    # Then the orders are recognised by their external ids
    assert again["created"] == 0
    assert again["duplicates"] == 2
    assert again["errors_total"] == 1


def test_orders_import_of_a_missing_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    # Given / when a file that does not exist is imported
    result = cli("orders", "import", str(tmp_path / "missing.csv"), "--tenant", "t-1")

    # Then the command refuses it before doing anything
    assert result.exit_code == 2


def test_dead_letters_are_an_empty_list_on_a_fresh_installation(cli: Cli, tmp_path: Path) -> None:
    # Given a fresh data directory
    # When the dead letters are listed
    letters = cli.json("events", "dead-letters")

    # Then there are none, and the memory broker's store was created in the data directory
    assert letters == {"items": []}
    assert (tmp_path / "events.db").is_file()


def test_replaying_an_unknown_dead_letter_exits_with_code_1(cli: Cli) -> None:
    # Given a fresh data directory
    # When a dead letter that does not exist is replayed
    result = cli("events", "replay", "no-such-id")

    # Then the command says so and exits with 1
    assert result.exit_code == 1
    assert "No dead letter no-such-id" in result.stderr
