from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.identity.adapters.accounts import (
    AddressRepository,
    InvitationRepository,
    OneTimeCodeRepository,
    RefreshTokenRepository,
    RoleMatrixRepository,
    SigningKeyRepository,
    UserRepository,
)
from doorstep.identity.adapters.repositories import ApiKeyRepository, TenantRepository
from doorstep.identity.domain.users import User
from doorstep.kernel.aggregate import Aggregate
from doorstep.kernel.unit_of_work import SqlUnitOfWork


class IdentityUnitOfWork(SqlUnitOfWork):
    tenants: TenantRepository
    api_keys: ApiKeyRepository
    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    codes: OneTimeCodeRepository
    invitations: InvitationRepository
    signing_keys: SigningKeyRepository
    roles: RoleMatrixRepository
    addresses: AddressRepository

    def _open(self, connection: AsyncConnection) -> None:
        self.tenants = TenantRepository(connection)
        self.api_keys = ApiKeyRepository(connection)
        self.users = UserRepository(connection)
        self.refresh_tokens = RefreshTokenRepository(connection)
        self.codes = OneTimeCodeRepository(connection)
        self.invitations = InvitationRepository(connection)
        self.signing_keys = SigningKeyRepository(connection)
        self.roles = RoleMatrixRepository(connection)
        self.addresses = AddressRepository(connection)

    def _tracked(self) -> Iterable[Aggregate]:
        return [*self.tenants.seen, *self.api_keys.seen, *self.users.seen]

    def audit_user(self, user: User, *, actor: str, action: str, before: Mapping[str, Any] | None) -> None:
        """An audit entry for a change to `user`, with the snapshot after it (never the password hash)."""
        self.audit(
            tenant_id=user.tenant_id,
            actor=actor,
            action=action,
            object_type="user",
            object_id=user.id,
            before=before,
            after=user.snapshot(),
        )
