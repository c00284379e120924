"""The `RevocationList` port, in the process or in Redis.

Access tokens are checked locally from their signature, so revoking one early means every verifier
must also ask this list. Entries only need to outlive the tokens they refuse: each one expires at
`until` (the latest expiry of a token it covers), which keeps the list as small as the tokens in flight.

Moments are stored as epoch seconds in float strings (`repr` round-trips exactly), so Redis and
Python compare the same numbers.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Generic, TypeVar

import redis.asyncio
from redis.exceptions import RedisError

from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import ServiceUnavailable

V = TypeVar("V")


class RevocationListUnavailable(ServiceUnavailable):
    """The revocation list cannot be asked; accepting the token anyway could let a revoked one through."""


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch; naive datetimes are refused, since `timestamp()` would read them as local."""
    if moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, not {moment!r}")
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    until: float


class _ExpiringEntries(Generic[V]):
    """A dict whose entries vanish at their own expiry; a heap of expiries finds them without a scan."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry[V]] = {}
        self._expiries: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now: float) -> _Entry[V] | None:
        self.forget_expired(now)
        return self._entries.get(key)

    def put(self, key: str, value: V, until: float) -> None:
        self._entries[key] = _Entry(value, until)
        heapq.heappush(self._expiries, (until, key))

    def forget_expired(self, now: float) -> None:
        """Drop what expired; a heap item left behind by a later `put` of the same key is skipped."""
        while self._expiries and self._expiries[0][0] <= now:
            until, key = heapq.heappop(self._expiries)
            entry = self._entries.get(key)
            if entry is not None and entry.until == until:
                del self._entries[key]


class MemoryRevocationList:
    """Revocations in this process, for the all-in-one shape, where one process verifies every token."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._tokens: _ExpiringEntries[None] = _ExpiringEntries()
        self._subjects: _ExpiringEntries[float] = _ExpiringEntries()

    def __len__(self) -> int:
        now = self._now()
        self._tokens.forget_expired(now)
        self._subjects.forget_expired(now)
        return len(self._tokens) + len(self._subjects)

    async def revoke_token(self, token_id: str, *, until: datetime) -> None:
        now, expiry = self._now(), epoch_seconds(until)
        current = self._tokens.get(token_id, now)
        if expiry > now and (current is None or expiry > current.until):
            self._tokens.put(token_id, None, expiry)

    async def revoke_subject(self, subject: str, *, issued_before: datetime, until: datetime) -> None:
        """Keeps the latest cut-off and the latest expiry, so a second revocation never narrows the first."""
        now, cutoff, expiry = self._now(), epoch_seconds(issued_before), epoch_seconds(until)
        current = self._subjects.get(subject, now)
        if current is not None:
            cutoff, expiry = max(cutoff, current.value), max(expiry, current.until)
        if expiry > now:
            self._subjects.put(subject, cutoff, expiry)

    async def is_revoked(self, token_id: str, subject: str, issued_at: datetime) -> bool:
        now = self._now()
        if self._tokens.get(token_id, now) is not None:
            return True
        cutoff = self._subjects.get(subject, now)
        return cutoff is not None and epoch_seconds(issued_at) < cutoff.value

    def _now(self) -> float:
        return epoch_seconds(self._clock())


# KEYS[1]: a subject's cut-off; ARGV: cut-off (epoch seconds), expiry (epoch milliseconds). Keeps the
# later of the stored and given cut-off and of the stored and given expiry, in one step so two
# concurrent revocations cannot undo each other. The stored string is kept as is, never reformatted
# by Lua (whose tostring would round it to 14 digits).
_REVOKE_SUBJECT_SCRIPT: Final = """
local cutoff = ARGV[1]
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) > tonumber(cutoff) then
    cutoff = current
end
local expire_at = math.max(tonumber(ARGV[2]), redis.call('PEXPIRETIME', KEYS[1]))
redis.call('SET', KEYS[1], cutoff, 'PXAT', expire_at)
"""


class RedisRevocationList:
    """Revocations in Redis (7.0 or later), seen by every gateway and service instance at once.

    `prefix + "token:" + jti` holds a revoked token until its expiry; `prefix + "subject:" + subject`
    holds the subject's cut-off, so `is_revoked` reads both in one MGET.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        prefix: str = "doorstep:revoked:",
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._revoke_subject = client.register_script(_REVOKE_SUBJECT_SCRIPT)

    def token_key(self, token_id: str) -> str:
        return f"{self._prefix}token:{token_id}"

    def subject_key(self, subject: str) -> str:
        return f"{self._prefix}subject:{subject}"

    async def revoke_token(self, token_id: str, *, until: datetime) -> None:
        expiry = epoch_seconds(until)
        if expiry <= epoch_seconds(self._clock()):
            return
        try:
            await self._client.set(self.token_key(token_id), repr(expiry), pxat=_milliseconds(expiry))
        except (RedisError, OSError) as error:
            raise _unavailable(error) from error

    async def revoke_subject(self, subject: str, *, issued_before: datetime, until: datetime) -> None:
        """Keeps the latest cut-off and the latest expiry, so a second revocation never narrows the first."""
        cutoff, expiry = epoch_seconds(issued_before), epoch_seconds(until)
        if expiry <= epoch_seconds(self._clock()):
            return
        try:
            await self._revoke_subject(
                keys=[self.subject_key(subject)], args=[repr(cutoff), _milliseconds(expiry)]
            )
        except (RedisError, OSError) as error:
            raise _unavailable(error) from error

    async def is_revoked(self, token_id: str, subject: str, issued_at: datetime) -> bool:
        try:
            token, cutoff = await self._client.mget([self.token_key(token_id), self.subject_key(subject)])
        except (RedisError, OSError) as error:
            raise _unavailable(error) from error
        return token is not None or (cutoff is not None and epoch_seconds(issued_at) < float(cutoff))


def _milliseconds(epoch: float) -> int:
    """Rounded up, so an entry never expires before the moment it was given."""
    return math.ceil(epoch * 1000)


def _unavailable(error: Exception) -> RevocationListUnavailable:
    return RevocationListUnavailable(
        f"revoked tokens cannot be checked: Redis did not answer ({type(error).__name__})"
    )
