"""Who is calling and what they may do: the principal every request acts as, and the permission checks.

Every endpoint declares what it needs: `Depends(Requires("orders.read"))` or, for the few that anyone
may call (sign-up, log-in, signed partner webhooks), `dependencies=[PUBLIC]`. A test walks every
route and fails on one that declares neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from doorstep.kernel.errors import Forbidden, Unauthenticated
from doorstep.kernel.permissions import PERMISSIONS, Reach


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    subject: str
    kind: str  # "user" or "api_key"
    permissions: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    reach: Reach = Reach.TENANT
    merchant_ids: frozenset[str] = frozenset()
    token_id: str | None = None  # the access token's `jti`
    expires_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def actor(self) -> str:
        """How the status history and audit trail name this caller."""
        return f"{self.kind}:{self.subject}"

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def as_dict(self) -> dict[str, Any]:
        """The wire form (introspection answers, the gateway's forwarded identity)."""
        return {
            "tenant_id": self.tenant_id,
            "subject": self.subject,
            "kind": self.kind,
            "permissions": sorted(self.permissions),
            "roles": sorted(self.roles),
            "reach": self.reach.value,
            "merchant_ids": sorted(self.merchant_ids),
            "token_id": self.token_id,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Principal:
        expires = body.get("expires_at")
        return cls(
            tenant_id=str(body["tenant_id"]),
            subject=str(body["subject"]),
            kind=str(body["kind"]),
            permissions=frozenset(body.get("permissions", ())),
            roles=frozenset(body.get("roles", ())),
            reach=Reach(body.get("reach", Reach.TENANT.value)),
            merchant_ids=frozenset(body.get("merchant_ids", ())),
            token_id=body.get("token_id"),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )


class Authenticator(Protocol):
    async def authenticate(self, credential: str) -> Principal | None: ...


MAX_CREDENTIAL_LENGTH = 4096
# Set by the edge (the gateway code in the same process) once it has verified the credential, so the
# in-process services do not verify it twice. Only an ASGI scope can carry it: no header can.
EDGE_PRINCIPAL = "doorstep.principal"


def bearer_credential(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise Unauthenticated("send `Authorization: Bearer <access token or API key>`")
    return credential


def known(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated("the credential is unknown, revoked or expired")
    return principal


async def current_principal(request: Request) -> Principal:
    verified = request.scope.get(EDGE_PRINCIPAL)
    if isinstance(verified, Principal):
        return verified
    credential = bearer_credential(request)
    if len(credential) > MAX_CREDENTIAL_LENGTH:
        raise Unauthenticated("the credential is unknown, revoked or expired")
    authenticator: Authenticator = request.app.state.authenticator
    principal = known(await authenticator.authenticate(credential))
    request.scope[EDGE_PRINCIPAL] = principal
    return principal


class Requires:
    """A dependency that authenticates the caller and checks one permission: 401 without, 403 short of."""

    def __init__(self, permission: str) -> None:
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}: add it to doorstep.kernel.permissions")
        self.permission = permission

    async def __call__(self, request: Request) -> Principal:
        principal = await current_principal(request)
        if not principal.may(self.permission):
            raise Forbidden(f"this needs the permission {self.permission}", permission=self.permission)
        return principal

    def __repr__(self) -> str:
        return f"Requires({self.permission!r})"


class _Public:
    """Marks an endpoint anyone may call; it authenticates its callers its own way, if at all."""

    async def __call__(self) -> None:
        return None

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC_ENDPOINT = _Public()
PUBLIC = Depends(PUBLIC_ENDPOINT)


def permission_of(dependencies: list[Any]) -> str | None:
    """The permission an endpoint's dependency tree declares, or None.

    `"public"` for PUBLIC endpoints, `"signed-in"` for those any authenticated caller may use (`Authenticated`).
    """
    for dependant in dependencies:
        call = getattr(dependant, "call", None)
        if isinstance(call, Requires):
            return call.permission
        if call is PUBLIC_ENDPOINT:
            return "public"
        if call is current_principal:
            return "signed-in"
        found = permission_of(getattr(dependant, "dependencies", []))
        if found is not None:
            return found
    return None


def authorized(permission: str) -> Any:
    """`Annotated[Principal, authorized("orders.read")]`: the principal, checked for the permission."""
    return Depends(Requires(permission))


Authenticated = Annotated[Principal, Depends(current_principal)]
