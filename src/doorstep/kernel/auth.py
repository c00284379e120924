"""Who is calling: the principal every request acts as, resolved from its bearer credential."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request

from doorstep.kernel.errors import Unauthenticated


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    subject: str
    kind: str
    scopes: frozenset[str] = frozenset()

    @property
    def actor(self) -> str:
        """How the status history and audit trail name this caller."""
        return f"{self.kind}:{self.subject}"


class Authenticator(Protocol):
    async def authenticate(self, credential: str) -> Principal | None: ...


MAX_CREDENTIAL_LENGTH = 500


def bearer_credential(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise Unauthenticated("send `Authorization: Bearer <api key>`")
    return credential


def known(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated("the credential is unknown, revoked or expired")
    return principal


async def current_principal(request: Request) -> Principal:
    credential = bearer_credential(request)
    if len(credential) > MAX_CREDENTIAL_LENGTH:
        raise Unauthenticated("the credential is unknown, revoked or expired")
    authenticator: Authenticator = request.app.state.authenticator
    return known(await authenticator.authenticate(credential))


Authenticated = Annotated[Principal, Depends(current_principal)]
