"""Users, sessions, one-time codes, invitations, signing keys, role matrices and addresses in the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from doorstep.identity.adapters.tables import (
    addresses,
    invitations,
    one_time_codes,
    refresh_tokens,
    role_permissions,
    signing_keys,
    users,
)
from doorstep.identity.domain.keys import SigningKey
from doorstep.identity.domain.users import (
    Address,
    Invitation,
    OneTimeCode,
    RefreshToken,
    User,
    UserStatus,
)
from doorstep.infra.database import Database
from doorstep.kernel.clock import utcnow


def user_from_row(row: Row[Any]) -> User:
    return User(
        id=row.id,
        tenant_id=row.tenant_id,
        email=row.email,
        phone=row.phone,
        password_hash=row.password_hash,
        name=row.name,
        status=UserStatus(row.status),
        roles=frozenset(row.roles),
        merchant_ids=frozenset(row.merchant_ids),
        profile=dict(row.profile),
        preferences=dict(row.preferences),
        created_at=row.created_at,
        updated_at=row.updated_at,
        sessions_valid_after=row.sessions_valid_after,
        version=row.version,
    )


def _user_values(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "phone": user.phone,
        "password_hash": user.password_hash,
        "name": user.name,
        "status": user.status.value,
        "roles": sorted(user.roles),
        "merchant_ids": sorted(user.merchant_ids),
        "profile": user.profile,
        "preferences": user.preferences,
        "updated_at": user.updated_at,
        "sessions_valid_after": user.sessions_valid_after,
        "version": user.version,
    }


class UserRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.seen: list[User] = []

    async def add(self, user: User) -> None:
        await self.connection.execute(
            insert(users).values(
                id=user.id, tenant_id=user.tenant_id, created_at=user.created_at, **_user_values(user)
            )
        )
        self.seen.append(user)

    async def _one(self, *conditions: Any) -> User | None:
        row = (await self.connection.execute(select(users).where(*conditions))).first()
        if row is None:
            return None
        user = user_from_row(row)
        self.seen.append(user)
        return user

    async def get(self, *, tenant_id: str, user_id: str, for_update: bool = False) -> User | None:
        """`for_update`: lock the row until the transaction ends (PostgreSQL; SQLite has one writer), so
        changes to a user and to their addresses happen one after the other."""
        if for_update:
            await self.connection.execute(
                select(users.c.id)
                .where(users.c.tenant_id == tenant_id, users.c.id == user_id)
                .with_for_update()
            )
        return await self._one(users.c.tenant_id == tenant_id, users.c.id == user_id)

    async def taken(self, *, tenant_id: str, email: str | None, phone: str | None) -> bool:
        """Whether another user of the tenant has this email or this phone."""
        clauses = [
            column == value for column, value in ((users.c.email, email), (users.c.phone, phone)) if value
        ]
        if not clauses:
            return False
        found = await self.connection.scalar(
            select(users.c.id).where(users.c.tenant_id == tenant_id, or_(*clauses)).limit(1)
        )
        return found is not None

    async def find(
        self, *, tenant_id: str, email: str | None = None, phone: str | None = None
    ) -> User | None:
        if email is not None:
            return await self._one(users.c.tenant_id == tenant_id, users.c.email == email)
        if phone is not None:
            return await self._one(users.c.tenant_id == tenant_id, users.c.phone == phone)
        return None

    async def save(self, user: User) -> None:
        await self.connection.execute(
            update(users)
            .where(users.c.id == user.id, users.c.tenant_id == user.tenant_id)
            .values(**_user_values(user))
        )


def _refresh_from_row(row: Row[Any]) -> RefreshToken:
    return RefreshToken(
        id=row.id,
        token_hash=row.token_hash,
        family_id=row.family_id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        revoked_at=row.revoked_at,
        access_token_id=row.access_token_id,
        access_expires_at=row.access_expires_at,
    )


class RefreshTokenRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, token: RefreshToken) -> None:
        await self.connection.execute(
            insert(refresh_tokens).values(
                id=token.id,
                token_hash=token.token_hash,
                family_id=token.family_id,
                tenant_id=token.tenant_id,
                user_id=token.user_id,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
                access_token_id=token.access_token_id,
                access_expires_at=token.access_expires_at,
            )
        )

    async def by_hash(self, token_hash: str) -> RefreshToken | None:
        row = (
            await self.connection.execute(
                select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
            )
        ).first()
        return None if row is None else _refresh_from_row(row)

    async def spend(self, token: RefreshToken, *, now: datetime) -> bool:
        """Marks the token used; False when another request spent it first (the loser is a reuse)."""
        result = await self.connection.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.id == token.id, refresh_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def revoke_family(self, family_id: str, *, now: datetime) -> list[RefreshToken]:
        """Revokes every token of the family; returns them (their access tokens get revoked too)."""
        rows = (
            await self.connection.execute(
                select(refresh_tokens).where(refresh_tokens.c.family_id == family_id)
            )
        ).all()
        await self.connection.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return [_refresh_from_row(row) for row in rows]

    async def revoke_user(self, user_id: str, *, now: datetime) -> None:
        await self.connection.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def prune(self, *, before: datetime) -> int:
        result = await self.connection.execute(
            delete(refresh_tokens).where(refresh_tokens.c.expires_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def _code_from_row(row: Row[Any]) -> OneTimeCode:
    return OneTimeCode(
        id=row.id,
        tenant_id=row.tenant_id,
        destination=row.destination,
        code_hash=row.code_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        attempts=row.attempts,
        consumed_at=row.consumed_at,
        locked_at=row.locked_at,
    )


class OneTimeCodeRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, code: OneTimeCode) -> None:
        await self.connection.execute(
            insert(one_time_codes).values(
                id=code.id,
                tenant_id=code.tenant_id,
                destination=code.destination,
                code_hash=code.code_hash,
                created_at=code.created_at,
                expires_at=code.expires_at,
                attempts=code.attempts,
            )
        )

    async def latest(self, *, tenant_id: str, destination: str) -> OneTimeCode | None:
        """Only the newest code counts: asking for a new one voids the ones before."""
        row = (
            await self.connection.execute(
                select(one_time_codes)
                .where(one_time_codes.c.tenant_id == tenant_id, one_time_codes.c.destination == destination)
                .order_by(one_time_codes.c.created_at.desc(), one_time_codes.c.id.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else _code_from_row(row)

    async def save(self, code: OneTimeCode) -> None:
        await self.connection.execute(
            update(one_time_codes)
            .where(one_time_codes.c.id == code.id)
            .values(attempts=code.attempts, consumed_at=code.consumed_at, locked_at=code.locked_at)
        )

    async def prune(self, *, before: datetime) -> int:
        result = await self.connection.execute(
            delete(one_time_codes).where(one_time_codes.c.expires_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class InvitationRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, invitation: Invitation) -> None:
        await self.connection.execute(
            insert(invitations).values(
                token_hash=invitation.token_hash,
                tenant_id=invitation.tenant_id,
                user_id=invitation.user_id,
                created_at=invitation.created_at,
                expires_at=invitation.expires_at,
            )
        )

    async def by_hash(self, token_hash: str) -> Invitation | None:
        row = (
            await self.connection.execute(select(invitations).where(invitations.c.token_hash == token_hash))
        ).first()
        if row is None:
            return None
        return Invitation(
            token_hash=row.token_hash,
            tenant_id=row.tenant_id,
            user_id=row.user_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            accepted_at=row.accepted_at,
        )

    async def accept(self, invitation: Invitation, *, now: datetime) -> bool:
        result = await self.connection.execute(
            update(invitations)
            .where(invitations.c.token_hash == invitation.token_hash, invitations.c.accepted_at.is_(None))
            .values(accepted_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1


def signing_key_from_row(row: Row[Any]) -> SigningKey:
    return SigningKey(
        kid=row.kid,
        algorithm=row.algorithm,
        private_pem=row.private_pem,
        public_jwk=dict(row.public_jwk),
        created_at=row.created_at,
        retired_at=row.retired_at,
        expires_at=row.expires_at,
    )


class SigningKeyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def all(self) -> list[SigningKey]:
        rows = (await self.connection.execute(select(signing_keys).order_by(signing_keys.c.created_at))).all()
        return [signing_key_from_row(row) for row in rows]

    async def add(self, key: SigningKey) -> None:
        await self.connection.execute(
            insert(signing_keys).values(
                kid=key.kid,
                algorithm=key.algorithm,
                private_pem=key.private_pem,
                public_jwk=key.public_jwk,
                created_at=key.created_at,
            )
        )

    async def save(self, key: SigningKey) -> None:
        await self.connection.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == key.kid)
            .values(retired_at=key.retired_at, expires_at=key.expires_at)
        )

    async def prune(self, *, now: datetime) -> int:
        result = await self.connection.execute(
            delete(signing_keys).where(
                signing_keys.c.expires_at.is_not(None), signing_keys.c.expires_at < now
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


class RoleMatrixRepository:
    """A tenant's changes to the default roles; a role without a row has its default permissions."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def overrides(self, tenant_id: str) -> dict[str, frozenset[str]]:
        rows = (
            await self.connection.execute(
                select(role_permissions.c.role, role_permissions.c.permissions).where(
                    role_permissions.c.tenant_id == tenant_id
                )
            )
        ).all()
        return {row.role: frozenset(row.permissions) for row in rows}

    async def put(
        self, *, tenant_id: str, role: str, permissions: frozenset[str], now: datetime, actor: str
    ) -> None:
        await self.connection.execute(
            delete(role_permissions).where(
                role_permissions.c.tenant_id == tenant_id, role_permissions.c.role == role
            )
        )
        await self.connection.execute(
            insert(role_permissions).values(
                tenant_id=tenant_id,
                role=role,
                permissions=sorted(permissions),
                updated_at=now,
                updated_by=actor,
            )
        )


def address_from_row(row: Row[Any]) -> Address:
    return Address(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        label=row.label,
        line1=row.line1,
        line2=row.line2,
        city=row.city,
        postal_code=row.postal_code,
        country=row.country,
        lat=row.lat,
        lng=row.lng,
        instructions=row.instructions,
        is_default=row.is_default,
        created_at=row.created_at,
    )


class AddressRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    def _values(self, address: Address) -> dict[str, Any]:
        return {
            "label": address.label,
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "postal_code": address.postal_code,
            "country": address.country,
            "lat": address.lat,
            "lng": address.lng,
            "instructions": address.instructions,
            "is_default": address.is_default,
        }

    async def add(self, address: Address) -> None:
        await self.connection.execute(
            insert(addresses).values(
                id=address.id,
                tenant_id=address.tenant_id,
                user_id=address.user_id,
                created_at=address.created_at,
                **self._values(address),
            )
        )

    async def get(self, *, tenant_id: str, user_id: str, address_id: str) -> Address | None:
        row = (
            await self.connection.execute(
                select(addresses).where(
                    addresses.c.id == address_id,
                    addresses.c.tenant_id == tenant_id,
                    addresses.c.user_id == user_id,
                )
            )
        ).first()
        return None if row is None else address_from_row(row)

    async def default_id(self, *, tenant_id: str, user_id: str) -> str | None:
        found = await self.connection.scalar(
            select(addresses.c.id)
            .where(
                addresses.c.tenant_id == tenant_id,
                addresses.c.user_id == user_id,
                addresses.c.is_default.is_(True),
            )
            .limit(1)
        )
        return None if found is None else str(found)

    async def oldest(self, *, tenant_id: str, user_id: str) -> Address | None:
        row = (
            await self.connection.execute(
                select(addresses)
                .where(addresses.c.tenant_id == tenant_id, addresses.c.user_id == user_id)
                .order_by(addresses.c.id)
                .limit(1)
            )
        ).first()
        return None if row is None else address_from_row(row)

    async def count(self, *, tenant_id: str, user_id: str) -> int:
        found = await self.connection.scalar(
            select(func.count())
            .select_from(addresses)
            .where(addresses.c.tenant_id == tenant_id, addresses.c.user_id == user_id)
        )
        return int(found or 0)

    async def save(self, address: Address) -> None:
        await self.connection.execute(
            update(addresses).where(addresses.c.id == address.id).values(**self._values(address))
        )

    async def clear_default(self, *, tenant_id: str, user_id: str) -> None:
        await self.connection.execute(
            update(addresses)
            .where(
                addresses.c.tenant_id == tenant_id,
                addresses.c.user_id == user_id,
                addresses.c.is_default.is_(True),
            )
            .values(is_default=False)
        )

    async def remove(self, address: Address) -> None:
        await self.connection.execute(delete(addresses).where(addresses.c.id == address.id))


async def prune_sessions(database: Database, *, grace: timedelta = timedelta(days=1)) -> int:
    """Forget refresh tokens and one-time codes a day after they expired."""
    before = utcnow() - grace
    async with database.writer_engine.begin() as connection:
        tokens = await RefreshTokenRepository(connection).prune(before=before)
        codes = await OneTimeCodeRepository(connection).prune(before=before)
    return tokens + codes
