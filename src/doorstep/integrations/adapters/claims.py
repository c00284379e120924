"""Queues of rows that background senders lease while they work on them: status webhooks, status reports.

Each row has a `seq` (the order rows were stored in), an `id`, a `state` (`pending` until it is done),
`next_attempt_at` and `lease_until`. A due row is pending, its time has come, and no sender holds it;
it waits behind an earlier pending row of the same queue (the columns that name one), so each queue
keeps its order. Claiming leases due rows; settling writes what the attempts changed and frees them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, Update, and_, bindparam, exists, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection

PENDING = "pending"


class LeasedQueue:
    def __init__(self, table: Table, *, queue: Sequence[str]) -> None:
        self.table = table
        self.queue = tuple(queue)

    def due(self, now: datetime) -> list[ColumnElement[bool]]:
        """The conditions a row meets when it may be claimed at `now`."""
        rows = self.table.c
        earlier = self.table.alias("earlier")
        return [
            rows.state == PENDING,
            rows.next_attempt_at <= now,
            or_(rows.lease_until.is_(None), rows.lease_until < now),
            ~exists().where(
                and_(
                    *(earlier.c[column] == rows[column] for column in self.queue),
                    earlier.c.state == PENDING,
                    earlier.c.seq < rows.seq,
                )
            ),
        ]

    def locked(self, query: Select[Any]) -> Select[Any]:
        """`query`'s rows of this table locked; on PostgreSQL rows another sender holds are skipped, so
        several claim side by side."""
        return query.with_for_update(skip_locked=True, of=self.table)

    def lease(self, ids: Collection[str], *, until: datetime) -> Update:
        return update(self.table).where(self.table.c.id.in_(list(ids))).values(lease_until=until)

    async def settle(self, connection: AsyncConnection, changes: Sequence[Mapping[str, Any]]) -> None:
        """Store what attempts changed (one mapping of columns per row, with its `id`) and free the
        leases, in one statement."""
        if not changes:
            return
        await connection.execute(
            update(self.table).where(self.table.c.id == bindparam("settled_id")),
            [
                {
                    **{k: v for k, v in change.items() if k != "id"},
                    "settled_id": change["id"],
                    "lease_until": None,
                }
                for change in changes
            ],
        )
