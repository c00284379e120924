"""Read-side queries of the identity service."""

from __future__ import annotations

from sqlalchemy import select

from doorstep.identity.adapters.repositories import api_key_from_row
from doorstep.identity.adapters.tables import api_keys, tenants
from doorstep.identity.domain.model import API_KEY_PREFIX, ApiKey, Tenant, hash_api_key
from doorstep.infra.database import Database
from doorstep.kernel.auth import MAX_CREDENTIAL_LENGTH, Principal


async def tenant(database: Database, tenant_id: str) -> Tenant | None:
    async with database.reader() as session:
        row = (await session.execute(select(tenants).where(tenants.c.id == tenant_id))).first()
    if row is None:
        return None
    return Tenant(id=row.id, tenant_id=row.id, name=row.name, created_at=row.created_at)


async def list_tenants(database: Database) -> list[Tenant]:
    async with database.reader() as session:
        rows = (await session.execute(select(tenants).order_by(tenants.c.created_at))).all()
    return [Tenant(id=r.id, tenant_id=r.id, name=r.name, created_at=r.created_at) for r in rows]


async def list_api_keys(database: Database, tenant_id: str) -> list[ApiKey]:
    async with database.reader() as session:
        rows = (
            await session.execute(
                select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.id)
            )
        ).all()
    return [api_key_from_row(row) for row in rows]


async def principal_for_api_key(database: Database, plaintext: str) -> Principal | None:
    if not plaintext.startswith(API_KEY_PREFIX) or len(plaintext) > MAX_CREDENTIAL_LENGTH:
        return None
    async with database.reader() as session:
        row = (
            await session.execute(
                select(api_keys.c.id, api_keys.c.tenant_id).where(
                    api_keys.c.key_hash == hash_api_key(plaintext), api_keys.c.revoked_at.is_(None)
                )
            )
        ).first()
    if row is None:
        return None
    return Principal(tenant_id=row.tenant_id, subject=row.id, kind="api_key")
