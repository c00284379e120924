"""Users, their sessions (refresh-token families), one-time codes and invitations."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from doorstep.contracts.identity import UserChanged, UserCreated, UserDeactivated
from doorstep.identity.domain.errors import InvalidCredentials, OneTimeCodeLocked, UserNotActive
from doorstep.kernel.aggregate import Aggregate
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.ids import new_id
from doorstep.kernel.permissions import Role

MIN_PASSWORD = 10
MAX_PASSWORD = 200
OTP_LENGTH = 6
OTP_LIFETIME = timedelta(minutes=5)
OTP_MAX_ATTEMPTS = 5
INVITATION_LIFETIME = timedelta(days=7)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")


def normalise_email(email: str, *, field: str = "email") -> str:
    value = email.strip().lower()
    if len(value) > 320 or not _EMAIL.match(value):
        raise InvalidInput("not an email address", field=field, location="body")
    return value


def normalise_phone(phone: str, *, field: str = "phone") -> str:
    """E.164: a plus, the country code and the number, without spaces, dashes or brackets."""
    value = re.sub(r"[\s\-().]", "", phone)
    if value.startswith("00"):
        value = "+" + value[2:]
    if not _PHONE.match(value):
        raise InvalidInput(
            "give the number in international form, e.g. +4930123456", field=field, location="body"
        )
    return value


def check_password(password: str, *, field: str = "password") -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"use {MIN_PASSWORD} to {MAX_PASSWORD} characters", field=field, location="body")
    return password


def digest(secret: str) -> str:
    """Tokens and codes are random, so a fast hash is enough to keep them out of the database."""
    return hashlib.sha256(secret.encode()).hexdigest()


class UserStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


def check_roles(roles: list[str] | frozenset[str], *, field: str = "roles") -> frozenset[str]:
    known = {role.value for role in Role}
    unknown = sorted(set(roles) - known)
    if unknown:
        raise InvalidInput(
            f"unknown role {unknown[0]!r}; roles are {', '.join(sorted(known))}", field=field, location="body"
        )
    if not roles:
        raise InvalidInput("give at least one role", field=field, location="body")
    return frozenset(roles)


@dataclass(kw_only=True)
class User(Aggregate):
    id: str
    email: str | None
    phone: str | None
    password_hash: str | None
    name: str
    status: UserStatus
    roles: frozenset[str]
    merchant_ids: frozenset[str]
    profile: dict[str, Any]
    preferences: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    sessions_valid_after: datetime | None = None
    version: int = 1

    @classmethod
    def register(
        cls,
        *,
        tenant_id: str,
        email: str | None,
        phone: str | None,
        name: str,
        roles: frozenset[str],
        password_hash: str | None,
        status: UserStatus,
        now: datetime,
        merchant_ids: frozenset[str] = frozenset(),
    ) -> User:
        if email is None and phone is None:
            raise InvalidInput("give an email or a phone number", field="email", location="body")
        user = cls(
            id=new_id(),
            tenant_id=tenant_id,
            email=email,
            phone=phone,
            password_hash=password_hash,
            name=name,
            status=status,
            roles=roles,
            merchant_ids=merchant_ids,
            profile={},
            preferences={},
            created_at=now,
            updated_at=now,
        )
        user.record(UserCreated(user_id=user.id, roles=sorted(roles), status=status.value))
        return user

    def snapshot(self) -> dict[str, Any]:
        """What the audit log and the API show: never the password hash."""
        return {
            "id": self.id,
            "email": self.email,
            "phone": self.phone,
            "name": self.name,
            "status": self.status.value,
            "roles": sorted(self.roles),
            "merchant_ids": sorted(self.merchant_ids),
            "profile": self.profile,
            "preferences": self.preferences,
        }

    def ensure_active(self) -> None:
        if self.status is not UserStatus.ACTIVE:
            raise UserNotActive(f"the user is {self.status.value}")

    def change(self, *, now: datetime, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        self.updated_at = now
        self.version += 1
        self.record(
            UserChanged(
                user_id=self.id,
                roles=sorted(self.roles),
                merchant_ids=sorted(self.merchant_ids),
                status=self.status.value,
            )
        )

    def activate(self, *, now: datetime, password_hash: str | None = None) -> None:
        changes: dict[str, Any] = {"status": UserStatus.ACTIVE}
        if password_hash is not None:
            changes["password_hash"] = password_hash
        self.change(now=now, **changes)

    def deactivate(self, *, now: datetime) -> None:
        """Ends every session at once: tokens issued before now are refused everywhere."""
        self.sessions_valid_after = now
        self.change(now=now, status=UserStatus.DEACTIVATED)
        self.record(UserDeactivated(user_id=self.id))

    def sign_out_everywhere(self, *, now: datetime) -> None:
        self.sessions_valid_after = now
        self.updated_at = now
        self.version += 1


@dataclass(kw_only=True)
class RefreshToken:
    """One link of a session's chain: each use issues the next and spends this one."""

    id: str
    token_hash: str
    family_id: str
    tenant_id: str
    user_id: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None
    access_token_id: str | None = None
    access_expires_at: datetime | None = None

    @classmethod
    def issue(
        cls, *, tenant_id: str, user_id: str, now: datetime, lifetime: timedelta, family_id: str | None = None
    ) -> tuple[RefreshToken, str]:
        plaintext = "dsr_" + secrets.token_urlsafe(32)
        token = cls(
            id=new_id(),
            token_hash=digest(plaintext),
            family_id=family_id or new_id(),
            tenant_id=tenant_id,
            user_id=user_id,
            issued_at=now,
            expires_at=now + lifetime,
        )
        return token, plaintext

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > now


@dataclass(kw_only=True)
class OneTimeCode:
    id: str
    tenant_id: str
    destination: str
    code_hash: str
    created_at: datetime
    expires_at: datetime
    attempts: int = 0
    consumed_at: datetime | None = None
    locked_at: datetime | None = None

    @classmethod
    def generate(cls, *, tenant_id: str, destination: str, now: datetime) -> tuple[OneTimeCode, str]:
        code = f"{secrets.randbelow(10**OTP_LENGTH):0{OTP_LENGTH}d}"
        one = cls(
            id=new_id(),
            tenant_id=tenant_id,
            destination=destination,
            code_hash=digest(f"{destination}:{code}"),
            created_at=now,
            expires_at=now + OTP_LIFETIME,
        )
        return one, code

    def attempt(self, code: str, *, now: datetime) -> None:
        """Counts the try; raises unless the code matches. The fifth wrong try locks the code."""
        if self.locked_at is not None:
            raise OneTimeCodeLocked("too many wrong codes: ask for a new one")
        if self.consumed_at is not None or self.expires_at <= now:
            raise InvalidCredentials("the code is wrong or expired")
        self.attempts += 1
        if hmac.compare_digest(self.code_hash, digest(f"{self.destination}:{code}")):
            self.consumed_at = now
            return
        if self.attempts >= OTP_MAX_ATTEMPTS:
            self.locked_at = now
            raise OneTimeCodeLocked("too many wrong codes: ask for a new one")
        raise InvalidCredentials("the code is wrong or expired")


@dataclass(kw_only=True)
class Invitation:
    token_hash: str
    tenant_id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None

    @classmethod
    def issue(cls, *, tenant_id: str, user_id: str, now: datetime) -> tuple[Invitation, str]:
        plaintext = "dsi_" + secrets.token_urlsafe(24)
        invitation = cls(
            token_hash=digest(plaintext),
            tenant_id=tenant_id,
            user_id=user_id,
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
        return invitation, plaintext


@dataclass(kw_only=True)
class Address:
    id: str
    tenant_id: str
    user_id: str
    label: str
    line1: str
    city: str
    country: str
    created_at: datetime
    line2: str | None = None
    postal_code: str | None = None
    lat: float | None = None
    lng: float | None = None
    instructions: str | None = None
    is_default: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
