"""Shared fixtures. Integration tests need real services: they skip on a laptop without them, fail in CI."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.platform import RunningPlatform, running_platform, scratch_postgres_database, settings_for

POSTGRES_URL = os.environ.get(
    "DOORSTEP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
RABBITMQ_URL = os.environ.get("DOORSTEP_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("DOORSTEP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


def require(url: str, what: str) -> str:
    """Return `url` if the service answers; otherwise skip, or fail when integration tests are required."""
    if _answers(url):
        return url
    message = f"{what} does not answer at {urlsplit(url).netloc}"
    if os.environ.get("DOORSTEP_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"{message}, and DOORSTEP_REQUIRE_INTEGRATION=1")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    return require(POSTGRES_URL, "PostgreSQL")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    return require(RABBITMQ_URL, "RabbitMQ")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require(REDIS_URL, "Redis")


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """The all-in-one platform on SQLite files in a temporary directory, with the in-memory broker."""
    async with running_platform(settings_for(tmp_path)) as running:
        yield running


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A scratch PostgreSQL database for one test."""
    async with scratch_postgres_database(postgres_server_url) as url:
        yield url
