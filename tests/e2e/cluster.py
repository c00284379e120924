"""The distributed shape in tests: identity, orders, integrations, dispatch and the gateway, each a
`doorstep serve <service>` process, on a scratch PostgreSQL database and RabbitMQ names of their own."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from sqlalchemy.engine import make_url
from tests.platform import scratch_postgres_database

DOORSTEP = Path(sys.executable).parent / "doorstep"
SERVICES = ("identity", "orders", "integrations", "dispatch", "gateway")
CONSUMERS = ("identity", "orders", "integrations", "dispatch")  # the services with a queue of their own
START_TIMEOUT = 60.0  # one process: imports, migrations, broker
CLI_TIMEOUT = 120.0  # a busy 2-core machine starting five services at once: 10-60 s seen
PR_SET_PDEATHSIG = 1  # prctl(2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test runner dies, so that no server outlives a killed run."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ServiceProcess:
    """`doorstep serve <name>` as a child process, its output in a log file."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, f"{self.name} is running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            now = datetime.now(UTC).isoformat()
            log.write(f"--- {now} start {self.starts} of {self.name} on port {self.port} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [str(DOORSTEP), "serve", self.name, "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    async def wait_healthy(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process is not None
            if (code := self.process.poll()) is not None:
                raise AssertionError(f"{self.name} exited with {code} while starting:\n{self.tail()}")
            try:
                response = await client.get(f"{self.url}/healthz", timeout=2.0)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not healthy within {START_TIMEOUT} s:\n{self.tail()}")
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill."""
        assert self.process is not None
        assert self.process.poll() is None, f"{self.name} is not running"
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)


@dataclass
class Cluster:
    """Identity, orders, integrations, dispatch and the gateway, each its own process, on one PostgreSQL database."""

    env: dict[str, str]
    services: dict[str, ServiceProcess]

    @property
    def gateway(self) -> ServiceProcess:
        return self.services["gateway"]

    def stop(self) -> None:
        for service in self.services.values():
            service.terminate()
        for service in self.services.values():
            service.wait_stopped(timeout=20)

    def report(self) -> str:
        return "\n".join(
            f"===== {service.name} (log {service.log_path}) =====\n{service.tail()}"
            for service in self.services.values()
        )

    async def cli(self, *args: str) -> Any:
        """Run `doorstep <args> --json` with the cluster's settings; the parsed JSON it prints."""
        process = await asyncio.create_subprocess_exec(
            str(DOORSTEP),
            *args,
            "--json",
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=CLI_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"doorstep {' '.join(args)} did not finish in {CLI_TIMEOUT} s") from None
        assert process.returncode == 0, (
            f"doorstep {' '.join(args)} exited with {process.returncode}:\n"
            f"{stdout.decode(errors='replace')}\n{stderr.decode(errors='replace')}"
        )
        return json.loads(stdout.decode().strip().splitlines()[-1])


@dataclass(frozen=True)
class Sandbox:
    """PostgreSQL database and RabbitMQ names of one test run."""

    database_url: str
    broker_url: str
    exchange: str
    queue_prefix: str

    @property
    def dsn(self) -> str:
        return make_url(self.database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def sandbox_on(postgres_server_url: str, rabbitmq_url: str) -> AsyncIterator[Sandbox]:
    """A scratch database and broker names of one test; the database dropped and the queues and
    exchanges deleted afterwards."""
    name = f"test.{uuid.uuid4().hex}"
    async with scratch_postgres_database(postgres_server_url) as database_url:
        try:
            yield Sandbox(database_url, rabbitmq_url, exchange=name, queue_prefix=name)
        finally:
            await _delete_broker_objects(rabbitmq_url, name)


async def _delete_broker_objects(url: str, name: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        for consumer in CONSUMERS:
            for queue in (f"{name}.{consumer}", f"{name}.{consumer}.dead"):
                channel = await connection.channel()
                await channel.queue_delete(queue)
                await channel.close()
        channel = await connection.channel()
        await channel.exchange_delete(name)
        await channel.exchange_delete(f"{name}.dlx")
        await channel.close()


@contextmanager
def cluster_on(sandbox: Sandbox, tmp_path: Path, settings: Mapping[str, str]) -> Iterator[Cluster]:
    """The processes, not started yet, with `settings` (`DOORSTEP_...`) on top of the sandbox's; stopped
    (SIGTERM, then SIGKILL) whatever happens."""
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {key: value for key, value in os.environ.items() if not key.startswith("DOORSTEP_")}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "DOORSTEP_DATABASE_URL": sandbox.database_url,
        "DOORSTEP_BROKER_URL": sandbox.broker_url,
        "DOORSTEP_BROKER_EXCHANGE": sandbox.exchange,
        "DOORSTEP_BROKER_QUEUE_PREFIX": sandbox.queue_prefix,
        "DOORSTEP_IDENTITY_URL": urls["identity"],
        "DOORSTEP_ORDERS_URL": urls["orders"],
        "DOORSTEP_INTEGRATIONS_URL": urls["integrations"],
        "DOORSTEP_DISPATCH_URL": urls["dispatch"],
        "DOORSTEP_PUBLIC_URL": urls["gateway"],
        "DOORSTEP_DATA_DIR": str(tmp_path / "data"),
        "DOORSTEP_LOG_LEVEL": "INFO",
        **settings,
    }
    services = {
        name: ServiceProcess(name, port, env, tmp_path / f"{name}.log") for name, port in ports.items()
    }
    running = Cluster(env, services)
    try:
        yield running
    finally:
        running.stop()
