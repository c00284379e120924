"""Alembic per service: each service keeps its own versions and its own `alembic_version` table."""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from doorstep.infra.database import Database


def alembic_config(script_location: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return config


async def upgrade(database: Database, script_location: Path, revision: str = "heads") -> None:
    """Bring a service's database to `revision`, creating its PostgreSQL schema first if needed.

    Safe across processes (an advisory lock), but run services one after another within a process:
    Alembic's `op` and `context` are process globals, so concurrent upgrades in one process collide.
    """
    config = alembic_config(script_location)
    lock_name = {"name": f"doorstep.migrate.{database.schema}"}

    def run(sync_connection: Connection) -> None:
        config.attributes["connection"] = sync_connection
        command.upgrade(config, revision)

    async with database.writer_engine.connect() as connection:
        if database.schema is not None:
            # Several processes may start at once: one migrates, the others wait and then find it done.
            await connection.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), lock_name)
            await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
            await connection.commit()
        try:
            await connection.run_sync(run)
            await connection.commit()
        finally:
            if database.schema is not None:
                await connection.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), lock_name)
                await connection.commit()


def run_env(metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py`: migrate on the connection `upgrade` hands over."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `doorstep migrate`, which provides the connection")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def make_revision(database: Database, script_location: Path, message: str) -> None:
    """Autogenerate a revision by comparing the service's tables with its migrated database."""
    config = alembic_config(script_location)
    await upgrade(database, script_location)
    async with database.writer_engine.connect() as connection:

        def run(sync_connection: Connection) -> None:
            config.attributes["connection"] = sync_connection
            command.revision(config, message=message, autogenerate=True)

        await connection.run_sync(run)
