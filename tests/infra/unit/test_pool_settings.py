"""How each service's connection pool is sized from settings (no database needed: engines connect lazily)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.pool import QueuePool

from doorstep.infra.database import Database
from doorstep.kernel.settings import Settings

POSTGRES_URL = "postgresql+asyncpg://doorstep@127.0.0.1:1/doorstep"


def pool_of(database: Database, *, writer: bool = True) -> QueuePool:
    engine = database.writer_engine if writer else database.reader_engine
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    return pool


def test_the_postgresql_pool_defaults_to_20_connections_without_overflow(tmp_path: Path) -> None:
    # Given settings that name PostgreSQL and nothing about the pool
    settings = Settings(data_dir=tmp_path, database_url=POSTGRES_URL)

    # When a service's database is built
    database = Database(service="orders", settings=settings)

    # Then its one engine keeps 20 connections, opens none beyond them, and waits 10 s for a free one
    pool = pool_of(database)
    assert database.reader_engine is database.writer_engine
    assert (pool.size(), pool._max_overflow, pool._timeout) == (20, 0, 10.0)


def test_the_pool_settings_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given DOORSTEP_DATABASE_POOL_SIZE, DOORSTEP_DATABASE_MAX_OVERFLOW and DOORSTEP_DATABASE_POOL_TIMEOUT
    monkeypatch.setenv("DOORSTEP_DATABASE_POOL_SIZE", "32")
    monkeypatch.setenv("DOORSTEP_DATABASE_MAX_OVERFLOW", "4")
    monkeypatch.setenv("DOORSTEP_DATABASE_POOL_TIMEOUT", "2.5")
    settings = Settings(data_dir=tmp_path, database_url=POSTGRES_URL)

    # When a service's database is built
    database = Database(service="identity", settings=settings)

    # Then the pool has exactly those numbers
    pool = pool_of(database)
    assert (pool.size(), pool._max_overflow, pool._timeout) == (32, 4, 2.5)


def test_sqlite_keeps_one_writer_and_four_readers_and_takes_the_pool_timeout(tmp_path: Path) -> None:
    # Given SQLite settings with a pool size, an overflow and a timeout
    settings = Settings(
        data_dir=tmp_path, database_pool_size=32, database_max_overflow=4, database_pool_timeout=3.0
    )

    # When a service's database is built
    database = Database(service="orders", settings=settings)

    # Then the sizes stay SQLite's (one writer, four readers, no overflow); only the timeout applies
    writer, reader = pool_of(database), pool_of(database, writer=False)
    assert (writer.size(), writer._max_overflow, writer._timeout) == (1, 0, 3.0)
    assert (reader.size(), reader._max_overflow, reader._timeout) == (4, 0, 3.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("database_pool_size", 0),
        ("database_max_overflow", -1),
        ("database_pool_timeout", 0),
    ],
)
def test_pool_settings_out_of_range_are_refused(tmp_path: Path, name: str, value: float) -> None:
    # When / then a pool without connections, a negative overflow or no time to wait is refused
    with pytest.raises(ValidationError, match=name):
        Settings(data_dir=tmp_path, **{name: value})  # type: ignore[arg-type]
