"""Identity HTTP API: the tenant, API keys, the permission matrix, the JWKS and introspection."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from doorstep.identity import views
from doorstep.identity.domain.commands import CreateApiKey, RevokeApiKey, SetRolePermissions
from doorstep.identity.domain.errors import TenantNotFound
from doorstep.identity.domain.model import ApiKey
from doorstep.identity.handlers import IssuedKey
from doorstep.infra.identity_client import looks_like_jwt
from doorstep.infra.service import Service
from doorstep.kernel.auth import MAX_CREDENTIAL_LENGTH, PUBLIC, Authenticated, Principal, Requires
from doorstep.kernel.errors import InvalidInput, NotFound
from doorstep.kernel.permissions import PERMISSIONS, ROLE_REACH, Role

router = APIRouter(prefix="/v1/identity", tags=["identity"])
well_known = APIRouter(tags=["identity"])


async def _service(request: Request) -> Service:
    service: Service = request.app.state.services["identity"]
    return service


IdentityService = Annotated[Service, Depends(_service)]
ManagesKeys = Annotated[Principal, Depends(Requires("api_keys.manage"))]
ReadsUsers = Annotated[Principal, Depends(Requires("users.read"))]
ManagesRoles = Annotated[Principal, Depends(Requires("roles.manage"))]


class TenantOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str] | None = Field(description="null: every permission of the tenant")
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.display_prefix,
            scopes=sorted(key.scopes) if key.scopes is not None else None,
            expires_at=key.expires_at,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


class IssuedApiKeyOut(ApiKeyOut):
    api_key: str = Field(description="The key itself. Shown once; only its hash is stored.")

    @classmethod
    def issued(cls, issued: IssuedKey) -> IssuedApiKeyOut:
        return cls(**ApiKeyOut.of(issued.key).model_dump(), api_key=issued.plaintext)


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] | None = Field(
        default=None,
        max_length=len(PERMISSIONS),
        description="Permissions the key holds; at most the caller's own. Omit for all of the caller's.",
    )
    expires_at: datetime | None = Field(default=None, description="With a UTC offset; omit for no expiry.")


class ApiKeyList(BaseModel):
    """Every key of the tenant in one page; `next_cursor` is there for the shape all lists share."""

    items: list[ApiKeyOut]
    next_cursor: None = None


class IntrospectionIn(BaseModel):
    credential: str = Field(min_length=1, max_length=MAX_CREDENTIAL_LENGTH)


class IntrospectionOut(BaseModel):
    """RFC 7662-style answer: `active` false says nothing about why."""

    active: bool
    tenant_id: str | None = None
    subject: str | None = None
    kind: str | None = None
    permissions: list[str] = []
    roles: list[str] = []
    reach: str | None = None
    merchant_ids: list[str] = []
    token_id: str | None = None
    expires_at: datetime | None = None


class RoleOut(BaseModel):
    role: str
    reach: str = Field(description="tenant, merchants (their own merchants) or own (their own orders/jobs)")
    permissions: list[str]


class RoleMatrix(BaseModel):
    items: list[RoleOut]
    next_cursor: None = None


class RoleIn(BaseModel):
    permissions: list[str] = Field(max_length=len(PERMISSIONS))


class PermissionOut(BaseModel):
    permission: str
    description: str


@router.get("/tenant", summary="The caller's tenant")
async def get_tenant(principal: Authenticated, service: IdentityService) -> TenantOut:
    tenant = await views.tenant(service.database, principal.tenant_id)
    if tenant is None:
        raise TenantNotFound("the tenant of this credential no longer exists")
    return TenantOut(id=tenant.id, name=tenant.name, created_at=tenant.created_at)


@router.get("/api-keys", summary="List the tenant's API keys (never their secrets)")
async def list_api_keys(principal: ManagesKeys, service: IdentityService) -> ApiKeyList:
    keys = await views.list_api_keys(service.database, principal.tenant_id)
    return ApiKeyList(items=[ApiKeyOut.of(key) for key in keys])


@router.post("/api-keys", status_code=201, summary="Issue a new API key, with scopes and an expiry")
async def create_api_key(body: ApiKeyIn, principal: ManagesKeys, service: IdentityService) -> IssuedApiKeyOut:
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise InvalidInput(
            "give a UTC offset, e.g. 2027-01-01T00:00:00Z", field="expires_at", location="body"
        )
    issued: IssuedKey = await service.bus.handle(
        CreateApiKey(
            tenant_id=principal.tenant_id,
            name=body.name,
            scopes=body.scopes,
            expires_at=body.expires_at,
            actor=principal.actor,
            granter_permissions=sorted(principal.permissions),
        )
    )
    return IssuedApiKeyOut.issued(issued)


@router.delete("/api-keys/{api_key_id}", status_code=204, summary="Revoke an API key")
async def revoke_api_key(api_key_id: str, principal: ManagesKeys, service: IdentityService) -> Response:
    await service.bus.handle(
        RevokeApiKey(tenant_id=principal.tenant_id, api_key_id=api_key_id, actor=principal.actor)
    )
    return Response(status_code=204)


@router.get("/permissions", summary="Every permission there is, to build roles and API key scopes from")
async def list_permissions(_principal: Authenticated) -> list[PermissionOut]:
    return [PermissionOut(permission=name, description=text) for name, text in PERMISSIONS.items()]


def _role_out(role: str, permissions: frozenset[str]) -> RoleOut:
    return RoleOut(role=role, reach=ROLE_REACH[Role(role)].value, permissions=sorted(permissions))


@router.get("/roles", summary="The tenant's permission matrix: every role and its permissions")
async def list_roles(principal: ReadsUsers, service: IdentityService) -> RoleMatrix:
    table = await views.role_matrix(service.database, principal.tenant_id)
    return RoleMatrix(items=[_role_out(role, permissions) for role, permissions in table.items()])


@router.get("/roles/{role}", summary="One role's permissions in this tenant")
async def get_role(role: str, principal: ReadsUsers, service: IdentityService) -> RoleOut:
    table = await views.role_matrix(service.database, principal.tenant_id)
    if role not in table:
        raise NotFound(f"there is no role {role}; roles are {', '.join(table)}")
    return _role_out(role, table[role])


@router.put("/roles/{role}", summary="Set a role's permissions in this tenant (applies to new tokens)")
async def put_role(role: str, body: RoleIn, principal: ManagesRoles, service: IdentityService) -> RoleOut:
    table: dict[str, frozenset[str]] = await service.bus.handle(
        SetRolePermissions(
            tenant_id=principal.tenant_id,
            role=role,
            permissions=body.permissions,
            actor=principal.actor,
            editor_permissions=sorted(principal.permissions),
        )
    )
    return _role_out(role, table[role])


@router.post(
    "/introspect",
    summary="Resolve a credential to its principal (for the other services; the gateway refuses it)",
    dependencies=[PUBLIC],
)
async def introspect(body: IntrospectionIn, request: Request, service: IdentityService) -> IntrospectionOut:
    if looks_like_jwt(body.credential):
        principal = await request.app.state.authenticator.authenticate(body.credential)
    else:
        principal = await views.principal_for_api_key(service.database, body.credential)
    if principal is None:
        return IntrospectionOut(active=False)
    return IntrospectionOut(active=True, **principal.as_dict())


@well_known.get(
    "/.well-known/jwks.json",
    summary="The public keys access tokens are signed with (JWKS, RFC 7517)",
    dependencies=[PUBLIC],
)
async def jwks(service: IdentityService) -> Response:
    body: dict[str, Any] = {"keys": await views.published_keys(service.database)}
    return Response(
        json.dumps(body), media_type="application/json", headers={"Cache-Control": "public, max-age=60"}
    )
