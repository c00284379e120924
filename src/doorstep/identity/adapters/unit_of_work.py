from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.identity.adapters.repositories import ApiKeyRepository, TenantRepository
from doorstep.kernel.aggregate import Aggregate
from doorstep.kernel.unit_of_work import SqlUnitOfWork


class IdentityUnitOfWork(SqlUnitOfWork):
    tenants: TenantRepository
    api_keys: ApiKeyRepository

    def _open(self, connection: AsyncConnection) -> None:
        self.tenants = TenantRepository(connection)
        self.api_keys = ApiKeyRepository(connection)

    def _tracked(self) -> Iterable[Aggregate]:
        return [*self.tenants.seen, *self.api_keys.seen]
