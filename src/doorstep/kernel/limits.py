"""Ports for what every process of the platform must agree on: rate limits and revoked tokens.

In the all-in-one shape both live in the process; in the distributed shape in Redis, so that every
gateway and service instance sees the same counts and the same revocations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Quota:
    """`limit` requests per `period_seconds`, evenly paced, plus `burst` more at once (GCRA)."""

    limit: int
    period_seconds: float
    burst: int = 0

    @property
    def interval(self) -> float:
        """Seconds between two requests at the steady pace."""
        return self.period_seconds / self.limit

    @property
    def capacity(self) -> int:
        """How many requests an idle key may send at once."""
        return self.burst + 1

    def policy(self) -> str:
        """The `RateLimit-Policy` value (draft-ietf-httpapi-ratelimit-headers)."""
        return f"{self.limit};w={round(self.period_seconds)};burst={self.burst}"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int  # what `RateLimit-Limit` shows: the requests an idle key may send at once
    remaining: int  # requests left before the next one is refused
    reset_seconds: float  # until the key is back to its full allowance
    retry_after_seconds: float  # until the next request would pass (0 when allowed)

    def headers(self, quota: Quota) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(max(0, _ceil(self.reset_seconds))),
            "RateLimit-Policy": quota.policy(),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, _ceil(self.retry_after_seconds)))
        return headers


def _ceil(seconds: float) -> int:
    whole = int(seconds)
    return whole if whole == seconds else whole + 1


class RateLimiter(Protocol):
    async def hit(self, key: str, quota: Quota) -> Decision:
        """Count one request against `key`; atomic across every process sharing the limiter."""
        ...


class RevocationList(Protocol):
    """Access tokens revoked before they expire: one token (log-out) or all of a subject's (deactivation)."""

    async def revoke_token(self, token_id: str, *, until: datetime) -> None: ...

    async def revoke_subject(self, subject: str, *, issued_before: datetime, until: datetime) -> None:
        """Every token of `subject` issued before `issued_before` is refused until `until`."""
        ...

    async def is_revoked(self, token_id: str, subject: str, issued_at: datetime) -> bool: ...
