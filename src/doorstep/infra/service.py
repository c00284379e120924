"""What a service hands the runtime (routers, consumers, database, migrations), wired the standard way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy import Table

from doorstep.infra.database import Database
from doorstep.infra.shared import Shared, make_shared
from doorstep.kernel.broker import EventHandler
from doorstep.kernel.bus import Handler, MessageBus
from doorstep.kernel.messages import CloudEvent, Command
from doorstep.kernel.settings import Settings
from doorstep.kernel.unit_of_work import SqlUnitOfWork


@dataclass(frozen=True, slots=True)
class Subscription:
    patterns: tuple[str, ...]
    handler: EventHandler


class OutboxSignal:
    """Called after a commit that wrote outbox rows; the runtime connects the relay to it."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def connect(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def __call__(self) -> None:
        for listener in self._listeners:
            listener()


@dataclass
class Service:
    name: str
    database: Database
    bus: MessageBus
    outbox: Table
    migrations: Path
    routers: Sequence[APIRouter] = ()
    subscriptions: Sequence[Subscription] = ()
    outbox_signal: OutboxSignal = field(default_factory=OutboxSignal)
    # Housekeeping the runtime runs every few minutes (pruning what is kept only for a while).
    maintenance: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    # The rate limiter and revocation list, the same object for every service of the process.
    shared: Shared = field(default_factory=lambda: make_shared(Settings()))


def assemble(
    *,
    name: str,
    settings: Settings,
    unit_of_work: type[SqlUnitOfWork],
    outbox: Table,
    inbox: Table,
    handlers: Mapping[type[Command], Handler],
    migrations: Path,
    routers: Sequence[APIRouter] = (),
    consumers: Callable[[MessageBus], Sequence[Subscription]] | None = None,
    dependencies: Mapping[str, Any] | None = None,
    shared: Shared | None = None,
) -> Service:
    """Wire a service the standard way: its database, a unit of work per message, the bus, its consumers."""
    database = Database(service=name, settings=settings)
    signal = OutboxSignal()

    def new_unit_of_work(causing_message: CloudEvent | None = None) -> SqlUnitOfWork:
        return unit_of_work(
            engine=database.writer_engine,
            service=name,
            outbox=outbox,
            inbox=inbox,
            notify_channel=database.outbox_channel if database.dialect == "postgresql" else None,
            after_commit=signal,
            causing_message=causing_message,
        )

    bus = MessageBus(uow_factory=new_unit_of_work, handlers=handlers, dependencies=dependencies or {})
    return Service(
        name=name,
        database=database,
        bus=bus,
        outbox=outbox,
        migrations=migrations,
        routers=routers,
        subscriptions=consumers(bus) if consumers else (),
        outbox_signal=signal,
        shared=shared or make_shared(settings),
    )
