"""Two real gateway processes share one Redis: a key's rate limit holds across both of them.

The services run in this test process (served by uvicorn, without an edge of their own, as
`doorstep serve <service>` runs them); the gateways are `doorstep serve gateway` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio
import uvicorn
from tests.platform import settings_for

from doorstep.identity.domain.commands import CreateTenant
from doorstep.runtime.app import build_app
from doorstep.runtime.services import build_services, make_broker

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DOORSTEP = Path(sys.executable).parent / "doorstep"
PER_MINUTE = 20
BURST = 5
REQUESTS = 10 * PER_MINUTE
START_TIMEOUT = 60.0
PR_SET_PDEATHSIG = 1  # prctl(2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test runner dies, so that no gateway outlives a killed run."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Gateway:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_healthy(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if (code := self.process.poll()) is not None:
                raise AssertionError(
                    f"the gateway exited with {code}:\n{self.log.read_text(errors='replace')}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{self.url}/healthz", timeout=2.0)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"the gateway is not healthy within {START_TIMEOUT} s")
            await asyncio.sleep(0.1)


@pytest.fixture
def redis_prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """Every service in this process behind uvicorn, no edge (a gateway is in front); yields URL and API key."""
    settings = settings_for(tmp_path / "services")
    app = build_app(settings, build_services(settings), make_broker(settings), edge=False)
    async with app.router.lifespan_context(app):
        _, issued = await app.state.services["identity"].bus.handle(CreateTenant(name="Acme"))
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("the services stopped before they started")
            await asyncio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}", issued.plaintext
        finally:
            server.should_exit = True
            await task


@pytest.fixture
def gateways(
    services: tuple[str, str], redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[list[Gateway]]:
    """Two `doorstep serve gateway` processes on one Redis, under this test's own key prefix."""
    url, _ = services
    env = {key: value for key, value in os.environ.items() if not key.startswith("DOORSTEP_")}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "DOORSTEP_DATA_DIR": str(tmp_path / "gateway"),
        "DOORSTEP_IDENTITY_URL": url,
        "DOORSTEP_ORDERS_URL": url,
        "DOORSTEP_INTEGRATIONS_URL": url,
        "DOORSTEP_REDIS_URL": redis_url,
        "DOORSTEP_REDIS_PREFIX": redis_prefix,
        "DOORSTEP_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
        "DOORSTEP_RATE_LIMIT_BURST": str(BURST),
        "DOORSTEP_LOG_LEVEL": "WARNING",
    }
    started: list[Gateway] = []
    try:
        for index in range(2):
            port = free_port()
            log = tmp_path / f"gateway-{index}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [str(DOORSTEP), "serve", "gateway", "--port", str(port)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            started.append(Gateway(port, process, log))
        yield started
    finally:
        for gateway in started:
            if gateway.process.poll() is None:
                gateway.process.send_signal(signal.SIGTERM)
        for gateway in started:
            try:
                gateway.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                gateway.process.kill()
                gateway.process.wait(timeout=10)


@pytest.fixture
async def shared_redis(redis_url: str, redis_prefix: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_burst_split_across_two_gateways_passes_at_most_quota_plus_burst(
    services: tuple[str, str],
    gateways: list[Gateway],
    shared_redis: redis.asyncio.Redis,
    redis_prefix: str,
) -> None:
    _, api_key = services
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {api_key}"},
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        timeout=30.0,
    ) as client:
        # Given two gateways on one Redis, each allowing a key 20 requests a minute and a burst of 5
        for gateway in gateways:
            await gateway.wait_healthy(client)

        # When one API key sends ten times its minute's quota at once, alternating between the gateways
        async def one(index: int) -> tuple[int, httpx.Response]:
            gateway = index % 2
            return gateway, await client.get(f"{gateways[gateway].url}/v1/orders?limit=1")

        answers = await asyncio.gather(*(one(index) for index in range(REQUESTS)))

    # Then every request was answered, either passed or refused for the rate limit
    statuses = Counter(response.status_code for _, response in answers)
    assert set(statuses) <= {200, 429}, statuses
    passed = statuses[200]
    # And no more than the quota plus the burst passed in total, and at least the idle key's allowance
    assert BURST + 1 <= passed <= PER_MINUTE + BURST
    assert statuses[429] == REQUESTS - passed
    # And each refusal says when to come back and what the limit is
    for _, response in answers:
        assert response.headers["ratelimit-policy"] == f"{PER_MINUTE};w=60;burst={BURST}"
        assert response.headers["ratelimit-limit"] == str(BURST + 1)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["ratelimit-remaining"] == "0"
            assert response.json()["type"] == "https://doorstep.dev/problems/too-many-requests"
    # And both gateways refused some: the limit was one, in the shared Redis under this test's prefix
    refused_by = {gateway for gateway, response in answers if response.status_code == 429}
    assert refused_by == {0, 1}
    keys = sorted([key.decode() async for key in shared_redis.scan_iter(match=f"{redis_prefix}rl:*")])
    assert len(keys) == 1
    assert keys[0].startswith(f"{redis_prefix}rl:key:")
