"""Read-side queries of the identity service."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from doorstep.identity.adapters.accounts import signing_key_from_row
from doorstep.identity.adapters.repositories import api_key_from_row
from doorstep.identity.adapters.tables import api_keys, role_permissions, signing_keys, tenants
from doorstep.identity.domain.keys import SigningKey
from doorstep.identity.domain.model import API_KEY_PREFIX, ApiKey, Tenant, hash_api_key
from doorstep.identity.domain.roles import matrix
from doorstep.infra.database import Database
from doorstep.kernel.auth import MAX_CREDENTIAL_LENGTH, Principal
from doorstep.kernel.clock import utcnow
from doorstep.kernel.permissions import TENANT_PERMISSIONS, Reach


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
                select(api_keys.c.id, api_keys.c.tenant_id, api_keys.c.scopes, api_keys.c.expires_at).where(
                    api_keys.c.key_hash == hash_api_key(plaintext), api_keys.c.revoked_at.is_(None)
                )
            )
        ).first()
    if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
        return None
    return Principal(
        tenant_id=row.tenant_id,
        subject=row.id,
        kind="api_key",
        permissions=frozenset(row.scopes) if row.scopes is not None else TENANT_PERMISSIONS,
        reach=Reach.TENANT,
        expires_at=row.expires_at,
    )


async def published_keys(database: Database) -> list[dict[str, Any]]:
    """The JWKS: every key that signs or signed tokens that may still be valid."""
    now = utcnow()
    async with database.reader() as session:
        rows = (await session.execute(select(signing_keys).order_by(signing_keys.c.created_at.desc()))).all()
    return [dict(row.public_jwk) for row in rows if signing_key_from_row(row).published(now)]


async def signing_key_list(database: Database) -> list[SigningKey]:
    async with database.reader() as session:
        rows = (await session.execute(select(signing_keys))).all()
    return [signing_key_from_row(row) for row in rows]


async def role_matrix(database: Database, tenant_id: str) -> dict[str, frozenset[str]]:
    async with database.reader() as session:
        rows = (
            await session.execute(
                select(role_permissions.c.role, role_permissions.c.permissions).where(
                    role_permissions.c.tenant_id == tenant_id
                )
            )
        ).all()
    return matrix({row.role: frozenset(row.permissions) for row in rows})
