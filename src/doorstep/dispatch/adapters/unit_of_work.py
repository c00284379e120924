from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.dispatch.adapters.jobs_orders import KnownOrders
from doorstep.dispatch.adapters.jobs_repository import JobRepository
from doorstep.dispatch.adapters.repositories import DriverRepository, FleetRepository
from doorstep.dispatch.adapters.track_repository import TrackRepository
from doorstep.kernel.aggregate import Aggregate
from doorstep.kernel.unit_of_work import SqlUnitOfWork


class DispatchUnitOfWork(SqlUnitOfWork):
    drivers: DriverRepository
    fleet: FleetRepository
    tracks: TrackRepository
    jobs: JobRepository
    known_orders: KnownOrders

    def _open(self, connection: AsyncConnection) -> None:
        # SQLite already serialises writers (BEGIN IMMEDIATE); PostgreSQL locks the rows it changes.
        self.drivers = DriverRepository(connection, lock_rows=self._notify_channel is not None)
        self.fleet = FleetRepository(connection)
        self.tracks = TrackRepository(connection)
        self.jobs = JobRepository(connection, lock_rows=self._notify_channel is not None)
        self.known_orders = KnownOrders(connection)

    def _tracked(self) -> Iterable[Aggregate]:
        return self.drivers.seen
