"""One database per service: a SQLite file (all-in-one) or a PostgreSQL schema (distributed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import DateTime, event, exc, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine import Dialect as SqlDialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from doorstep.kernel.errors import ServiceUnavailable
from doorstep.kernel.settings import Settings

Dialect = Literal["sqlite", "postgresql"]


class DatabaseBusy(ServiceUnavailable):
    """Every connection of the pool stayed checked out for the whole pool timeout; retrying later may
    succeed. A 503 problem, never a 500: the request did nothing wrong, the service is saturated."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = "1"


class _Pool(AsyncAdaptedQueuePool):
    """The async queue pool, but a checkout that times out is `DatabaseBusy` (503), not SQLAlchemy's
    `TimeoutError`, which nothing maps and would answer 500."""

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except exc.TimeoutError:
            raise DatabaseBusy(
                f"no database connection became free within {self._timeout:g} s; retry shortly"
            ) from None


class Database:
    """A writer and a reader engine for one service. Engines connect lazily, on first use."""

    def __init__(self, *, service: str, settings: Settings) -> None:
        self.service = service
        self.url = database_url(service, settings)
        if self.url.get_backend_name() == "postgresql":
            self.dialect: Dialect = "postgresql"
            self.schema: str | None = service
            # A fixed pool by default (no overflow): overflow connections are opened and closed per
            # checkout, authentication included, which cost more than the statements at high concurrency.
            engine = create_async_engine(
                self.url,
                poolclass=_Pool,
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_max_overflow,
                pool_timeout=settings.database_pool_timeout,
                # No pre-ping round trip per checkout: a dead connection fails its statement, and the
                # unit of work's caller retries (consumers by redelivery, clients by their retry).
                pool_recycle=1800,
                connect_args={"server_settings": {"search_path": service}},
            )
            self.writer_engine = self.reader_engine = engine
        else:
            self.dialect = "sqlite"
            self.schema = None
            # One writer connection: SQLite takes one writer at a time, so queue in-process instead of
            # spinning on SQLITE_BUSY; BEGIN IMMEDIATE avoids the read-to-write upgrade deadlock.
            timeout = settings.database_pool_timeout
            self.writer_engine = sqlite_engine(self.url, pool_size=1, immediate=True, pool_timeout=timeout)
            self.reader_engine = sqlite_engine(self.url, pool_size=4, immediate=False, pool_timeout=timeout)
        self.writer = async_sessionmaker(self.writer_engine, expire_on_commit=False)
        self.reader = async_sessionmaker(self.reader_engine, expire_on_commit=False)

    @property
    def outbox_channel(self) -> str:
        return f"doorstep_outbox_{self.service}"

    async def ping(self) -> bool:
        try:
            async with self.reader_engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.writer_engine.dispose()
        if self.reader_engine is not self.writer_engine:
            await self.reader_engine.dispose()


def database_url(service: str, settings: Settings) -> URL:
    if settings.database_url:
        return make_url(settings.database_url)
    path = settings.data_dir / f"{service}.db"
    return make_url(f"sqlite+aiosqlite:///{path}")


def sqlite_engine(
    url: URL | str, *, pool_size: int, immediate: bool, pool_timeout: float = 30.0
) -> AsyncEngine:
    url = make_url(url)
    if url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # Units of work always end in commit or rollback, so a reset on return would be one more round trip.
    engine = create_async_engine(
        url,
        poolclass=_Pool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        pool_reset_on_return=None,
    )
    engine.dialect.colspecs = {**engine.dialect.colspecs, DateTime: _SqliteUtcDateTime}

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's `begin` event decide how transactions start (pysqlite's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        # SQLite's own lower() folds ASCII only, so ILIKE would miss "Öztürk" searched as "öztürk".
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class _SqliteUtcDateTime(sqlite.DATETIME):
    """SQLite keeps no UTC offset: store aware values as UTC and read them back aware, like timestamptz.

    Without this, reads come back naive and a filter such as `created_at >= 12:00+02:00` compares wall
    clock text, ignoring the offset.
    """

    def bind_processor(self, dialect: SqlDialect) -> Any:
        store = super().bind_processor(dialect)
        if not self.timezone or store is None:
            return store

        def process(value: Any) -> Any:
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(UTC)
            return store(value)

        return process

    def result_processor(self, dialect: SqlDialect, coltype: object) -> Any:
        load = super().result_processor(dialect, coltype)
        if not self.timezone:
            return load

        def process(value: Any) -> Any:
            value = load(value) if load is not None else value
            if isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value

        return process
