"""Tenants and API keys in the identity database."""

from __future__ import annotations

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.identity.adapters.tables import api_keys, tenants
from doorstep.identity.domain.model import ApiKey, Tenant


class TenantRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.seen: list[Tenant] = []

    async def add(self, tenant: Tenant) -> None:
        await self.connection.execute(
            insert(tenants).values(id=tenant.id, name=tenant.name, created_at=tenant.created_at)
        )
        self.seen.append(tenant)

    async def get(self, tenant_id: str) -> Tenant | None:
        row = (await self.connection.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
        if row is None:
            return None
        tenant = Tenant(id=row.id, tenant_id=row.id, name=row.name, created_at=row.created_at)
        self.seen.append(tenant)
        return tenant


class ApiKeyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.seen: list[ApiKey] = []

    async def add(self, key: ApiKey) -> None:
        await self.connection.execute(
            insert(api_keys).values(
                id=key.id,
                tenant_id=key.tenant_id,
                name=key.name,
                key_hash=key.key_hash,
                display_prefix=key.display_prefix,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
                scopes=sorted(key.scopes) if key.scopes is not None else None,
                expires_at=key.expires_at,
                created_by=key.created_by,
            )
        )
        self.seen.append(key)

    async def get(self, *, tenant_id: str, api_key_id: str) -> ApiKey | None:
        row = (
            await self.connection.execute(
                select(api_keys).where(api_keys.c.id == api_key_id, api_keys.c.tenant_id == tenant_id)
            )
        ).first()
        if row is None:
            return None
        key = api_key_from_row(row)
        self.seen.append(key)
        return key

    async def save(self, key: ApiKey) -> None:
        await self.connection.execute(
            update(api_keys)
            .where(api_keys.c.id == key.id, api_keys.c.tenant_id == key.tenant_id)
            .values(name=key.name, revoked_at=key.revoked_at)
        )


def api_key_from_row(row: Row[tuple[object, ...]]) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        key_hash=row.key_hash,
        display_prefix=row.display_prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        scopes=frozenset(row.scopes) if row.scopes is not None else None,
        expires_at=row.expires_at,
        created_by=row.created_by,
    )
