from __future__ import annotations

from collections.abc import Iterable

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
