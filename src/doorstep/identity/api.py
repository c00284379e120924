"""Identity HTTP API: the tenant, its API keys, and key introspection for the other services."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from doorstep.identity import views
from doorstep.identity.domain.commands import CreateApiKey, RevokeApiKey
from doorstep.identity.domain.errors import TenantNotFound
from doorstep.identity.domain.model import ApiKey
from doorstep.identity.handlers import IssuedKey
from doorstep.infra.service import Service
from doorstep.kernel.auth import MAX_CREDENTIAL_LENGTH, Principal, bearer_credential, known

router = APIRouter(prefix="/v1/identity", tags=["identity"])


async def _service(request: Request) -> Service:
    service: Service = request.app.state.services["identity"]
    return service


IdentityService = Annotated[Service, Depends(_service)]


async def _principal(request: Request, service: IdentityService) -> Principal:
    # Identity owns the keys: it checks its own table every time, so a revoked key stops here at once.
    return known(await views.principal_for_api_key(service.database, bearer_credential(request)))


Authenticated = Annotated[Principal, Depends(_principal)]


class TenantOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.display_prefix,
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
    scopes: list[str] = []


@router.get("/tenant", summary="The caller's tenant")
async def get_tenant(principal: Authenticated, service: IdentityService) -> TenantOut:
    tenant = await views.tenant(service.database, principal.tenant_id)
    if tenant is None:
        raise TenantNotFound("the tenant of this credential no longer exists")
    return TenantOut(id=tenant.id, name=tenant.name, created_at=tenant.created_at)


@router.get("/api-keys", summary="List the tenant's API keys (never their secrets)")
async def list_api_keys(principal: Authenticated, service: IdentityService) -> ApiKeyList:
    keys = await views.list_api_keys(service.database, principal.tenant_id)
    return ApiKeyList(items=[ApiKeyOut.of(key) for key in keys])


@router.post("/api-keys", status_code=201, summary="Issue a new API key")
async def create_api_key(
    body: ApiKeyIn, principal: Authenticated, service: IdentityService
) -> IssuedApiKeyOut:
    issued: IssuedKey = await service.bus.handle(CreateApiKey(tenant_id=principal.tenant_id, name=body.name))
    return IssuedApiKeyOut.issued(issued)


@router.delete("/api-keys/{api_key_id}", status_code=204, summary="Revoke an API key")
async def revoke_api_key(api_key_id: str, principal: Authenticated, service: IdentityService) -> Response:
    await service.bus.handle(RevokeApiKey(tenant_id=principal.tenant_id, api_key_id=api_key_id))
    return Response(status_code=204)


@router.post("/introspect", summary="Resolve a credential to its principal (used by the other services)")
async def introspect(body: IntrospectionIn, service: IdentityService) -> IntrospectionOut:
    principal = await views.principal_for_api_key(service.database, body.credential)
    if principal is None:
        return IntrospectionOut(active=False)
    return IntrospectionOut(
        active=True,
        tenant_id=principal.tenant_id,
        subject=principal.subject,
        kind=principal.kind,
        scopes=sorted(principal.scopes),
    )
