"""Tenants and their API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from doorstep.contracts.identity import ApiKeyCreated, ApiKeyRevoked, TenantCreated
from doorstep.kernel.aggregate import Aggregate
from doorstep.kernel.ids import new_id

API_KEY_PREFIX = "dsk_"


def hash_api_key(plaintext: str) -> str:
    # Keys carry 256 random bits, so a fast hash is safe here and keeps authentication cheap.
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(kw_only=True)
class Tenant(Aggregate):
    id: str
    name: str
    created_at: datetime

    @classmethod
    def create(cls, name: str, *, now: datetime) -> Tenant:
        tenant_id = new_id()
        tenant = cls(id=tenant_id, tenant_id=tenant_id, name=name, created_at=now)
        tenant.record(TenantCreated(tenant_id=tenant_id, name=name))
        return tenant


@dataclass(kw_only=True)
class ApiKey(Aggregate):
    id: str
    name: str
    key_hash: str
    display_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    scopes: frozenset[str] | None = None  # None: every permission of the tenant
    expires_at: datetime | None = None
    created_by: str | None = None

    @classmethod
    def issue(
        cls,
        *,
        tenant_id: str,
        name: str,
        now: datetime,
        scopes: frozenset[str] | None = None,
        expires_at: datetime | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is shown once and never stored."""
        plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
        key = cls(
            id=new_id(),
            tenant_id=tenant_id,
            name=name,
            key_hash=hash_api_key(plaintext),
            display_prefix=plaintext[: len(API_KEY_PREFIX) + 6],
            created_at=now,
            scopes=scopes,
            expires_at=expires_at,
            created_by=created_by,
        )
        key.record(ApiKeyCreated(api_key_id=key.id, name=name))
        return key, plaintext

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def snapshot(self) -> dict[str, object]:
        """What the audit log keeps: never the hash."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.display_prefix,
            "scopes": sorted(self.scopes) if self.scopes is not None else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }

    def revoke(self, *, now: datetime) -> None:
        if self.revoked_at is None:
            self.revoked_at = now
            self.record(ApiKeyRevoked(api_key_id=self.id))
