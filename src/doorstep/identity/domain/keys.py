"""Signing keys for access tokens, and when each signs and when it leaves the JWKS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(kw_only=True)
class SigningKey:
    kid: str
    algorithm: str
    private_pem: str
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None = None
    expires_at: datetime | None = None

    def signs(self) -> bool:
        return self.retired_at is None

    def published(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now

    def retire(self, *, now: datetime, token_lifetime: timedelta) -> None:
        """Stop signing now; stay in the JWKS until every token this key signed has expired."""
        if self.retired_at is None:
            self.retired_at = now
            self.expires_at = now + token_lifetime + timedelta(minutes=1)
