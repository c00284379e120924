"""Identity use cases, one function per command: tenants, API keys and the permission matrix.

Sessions live in `sessions.py`, users in `users.py`, the audit log in `audit.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from doorstep.contracts.identity import RolePermissionsChanged
from doorstep.identity.adapters.unit_of_work import IdentityUnitOfWork
from doorstep.identity.domain.commands import CreateApiKey, CreateTenant, RevokeApiKey, SetRolePermissions
from doorstep.identity.domain.errors import ApiKeyNotFound, TenantNotFound
from doorstep.identity.domain.model import ApiKey, Tenant
from doorstep.identity.domain.roles import check_matrix_change, matrix
from doorstep.infra.identity_client import api_key_revocation_id
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.limits import RevocationList
from doorstep.kernel.messages import Command
from doorstep.kernel.permissions import INSTALLATION_PERMISSIONS, PERMISSIONS


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    plaintext: str


async def create_tenant(cmd: CreateTenant, *, uow: IdentityUnitOfWork) -> tuple[Tenant, IssuedKey]:
    """A tenant and its first API key, named "default", with every permission of the tenant."""
    now = utcnow()
    async with uow:
        tenant = Tenant.create(cmd.name, now=now)
        await uow.tenants.add(tenant)
        key, plaintext = ApiKey.issue(tenant_id=tenant.id, name="default", now=now, created_by="system")
        await uow.api_keys.add(key)
        uow.audit(
            tenant_id=tenant.id,
            actor="system",
            action="tenant.created",
            object_type="tenant",
            object_id=tenant.id,
            before=None,
            after={"id": tenant.id, "name": tenant.name},
        )
        await uow.commit()
    return tenant, IssuedKey(key, plaintext)


def _scopes(cmd: CreateApiKey) -> frozenset[str] | None:
    if cmd.scopes is None:
        if cmd.granter_permissions is not None:
            # Without scopes a key gets what its maker holds, never more.
            return frozenset(cmd.granter_permissions) - INSTALLATION_PERMISSIONS
        return None
    for index, scope in enumerate(cmd.scopes):
        where = f"scopes.{index}"
        if scope not in PERMISSIONS or scope in INSTALLATION_PERMISSIONS:
            raise InvalidInput(
                f"{scope!r} is not a permission an API key can hold", field=where, location="body"
            )
        if cmd.granter_permissions is not None and scope not in cmd.granter_permissions:
            raise InvalidInput(
                f"you cannot grant {scope}, which you do not hold", field=where, location="body"
            )
    return frozenset(cmd.scopes)


async def create_api_key(cmd: CreateApiKey, *, uow: IdentityUnitOfWork) -> IssuedKey:
    now = utcnow()
    if cmd.expires_at is not None and cmd.expires_at <= now:
        raise InvalidInput("the expiry is in the past", field="expires_at", location="body")
    scopes = _scopes(cmd)
    async with uow:
        if await uow.tenants.get(cmd.tenant_id) is None:
            raise TenantNotFound(f"there is no tenant {cmd.tenant_id}")
        key, plaintext = ApiKey.issue(
            tenant_id=cmd.tenant_id,
            name=cmd.name,
            now=now,
            scopes=scopes,
            expires_at=cmd.expires_at,
            created_by=cmd.actor,
        )
        await uow.api_keys.add(key)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="api_key.created",
            object_type="api_key",
            object_id=key.id,
            before=None,
            after=key.snapshot(),
        )
        await uow.commit()
    return IssuedKey(key, plaintext)


async def revoke_api_key(
    cmd: RevokeApiKey, *, uow: IdentityUnitOfWork, revocations: RevocationList, api_key_cache_seconds: float
) -> ApiKey:
    now = utcnow()
    async with uow:
        key = await uow.api_keys.get(tenant_id=cmd.tenant_id, api_key_id=cmd.api_key_id)
        if key is None:
            raise ApiKeyNotFound(f"there is no API key {cmd.api_key_id}")
        before = key.snapshot()
        key.revoke(now=now)
        await uow.api_keys.save(key)
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="api_key.revoked",
            object_type="api_key",
            object_id=key.id,
            before=before,
            after=key.snapshot(),
        )
        await uow.commit()
    # Services cache what introspection said for a few seconds; the list outlives those caches.
    revocation_id = api_key_revocation_id(key.id)
    await revocations.revoke_token(revocation_id, until=now + timedelta(seconds=api_key_cache_seconds + 60))
    return key


async def set_role_permissions(
    cmd: SetRolePermissions, *, uow: IdentityUnitOfWork
) -> dict[str, frozenset[str]]:
    """Changes apply to tokens issued from now on: at the latest after one access-token lifetime."""
    permissions = check_matrix_change(cmd.role, cmd.permissions, editor=frozenset(cmd.editor_permissions))
    now = utcnow()
    async with uow:
        overrides = await uow.roles.overrides(cmd.tenant_id)
        before = matrix(overrides)[cmd.role]
        await uow.roles.put(
            tenant_id=cmd.tenant_id, role=cmd.role, permissions=permissions, now=now, actor=cmd.actor
        )
        uow.emit(
            RolePermissionsChanged(role=cmd.role, permissions=sorted(permissions)), tenant_id=cmd.tenant_id
        )
        uow.audit(
            tenant_id=cmd.tenant_id,
            actor=cmd.actor,
            action="role.permissions_changed",
            object_type="role",
            object_id=cmd.role,
            before={"permissions": sorted(before)},
            after={"permissions": sorted(permissions)},
        )
        await uow.commit()
        overrides = {**overrides, cmd.role: permissions}
    return matrix(overrides)


HANDLERS: dict[type[Command], Handler] = {
    CreateTenant: create_tenant,
    CreateApiKey: create_api_key,
    RevokeApiKey: revoke_api_key,
    SetRolePermissions: set_role_permissions,
}
