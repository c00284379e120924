"""Identity use cases, one function per command."""

from __future__ import annotations

from dataclasses import dataclass

from doorstep.identity.adapters.unit_of_work import IdentityUnitOfWork
from doorstep.identity.domain.commands import CreateApiKey, CreateTenant, RevokeApiKey
from doorstep.identity.domain.errors import ApiKeyNotFound, TenantNotFound
from doorstep.identity.domain.model import ApiKey, Tenant
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.messages import Command


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    plaintext: str


async def create_tenant(cmd: CreateTenant, *, uow: IdentityUnitOfWork) -> tuple[Tenant, IssuedKey]:
    """A tenant and its first API key, named "default"."""
    now = utcnow()
    async with uow:
        tenant = Tenant.create(cmd.name, now=now)
        await uow.tenants.add(tenant)
        key, plaintext = ApiKey.issue(tenant_id=tenant.id, name="default", now=now)
        await uow.api_keys.add(key)
        await uow.commit()
    return tenant, IssuedKey(key, plaintext)


async def create_api_key(cmd: CreateApiKey, *, uow: IdentityUnitOfWork) -> IssuedKey:
    async with uow:
        if await uow.tenants.get(cmd.tenant_id) is None:
            raise TenantNotFound(f"there is no tenant {cmd.tenant_id}")
        key, plaintext = ApiKey.issue(tenant_id=cmd.tenant_id, name=cmd.name, now=utcnow())
        await uow.api_keys.add(key)
        await uow.commit()
    return IssuedKey(key, plaintext)


async def revoke_api_key(cmd: RevokeApiKey, *, uow: IdentityUnitOfWork) -> ApiKey:
    async with uow:
        key = await uow.api_keys.get(tenant_id=cmd.tenant_id, api_key_id=cmd.api_key_id)
        if key is None:
            raise ApiKeyNotFound(f"there is no API key {cmd.api_key_id}")
        key.revoke(now=utcnow())
        await uow.api_keys.save(key)
        await uow.commit()
    return key


HANDLERS: dict[type[Command], Handler] = {
    CreateTenant: create_tenant,
    CreateApiKey: create_api_key,
    RevokeApiKey: revoke_api_key,
}
