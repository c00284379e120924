"""The `RateLimiter` port with the generic cell rate algorithm (GCRA), in the process or in Redis.

GCRA keeps one number per key, the theoretical arrival time (TAT): when the key's allowance would be
full again if the requests so far had come at the steady pace. A request at `now` passes when it does
not push the TAT further than `capacity` intervals ahead of `now`. One number per key, no timers, and
the whole decision is a comparison, so it fits in one atomic Redis script.

All arithmetic is on whole microseconds: both adapters then reach bit-identical decisions (Lua numbers
are doubles, exact for integers far beyond any TAT), and counts never suffer from float rounding.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import redis.asyncio
from redis.exceptions import RedisError

from doorstep.kernel.errors import ServiceUnavailable
from doorstep.kernel.limits import Decision, Quota

MICROSECONDS: Final = 1_000_000
MAX_KEYS: Final = 100_000


class RateLimiterUnavailable(ServiceUnavailable):
    """The shared limiter cannot be asked; refusing beats guessing, since every process would guess apart."""


@dataclass(frozen=True, slots=True)
class Pace:
    """A quota in whole microseconds: the steady interval and how many intervals an idle key may spend."""

    interval: int
    capacity: int

    @classmethod
    def of(cls, quota: Quota) -> Pace:
        if quota.limit < 1 or quota.period_seconds <= 0 or quota.burst < 0:
            raise ValueError(f"not a usable quota: {quota}")
        return cls(interval=max(1, round(quota.interval * MICROSECONDS)), capacity=quota.capacity)

    @property
    def window(self) -> int:
        """How far ahead of now the TAT may run: the whole allowance, spent."""
        return self.interval * self.capacity


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    tat: int  # what to store for the key; unchanged when the request is refused
    granted: int  # how many requests this step let through: 0 when refused


def gcra(tat: int | None, now: int, pace: Pace, want: int = 1) -> Outcome:
    """Decide `want` requests at `now` for a key whose stored TAT is `tat` (None for a key never seen).

    As many of them pass as fit in the allowance (all, some, or none); the decision describes the last
    one that passed, or the refusal. A refused request leaves the TAT alone, so hammering a limited key
    does not push its recovery back.
    """
    start = now if tat is None else max(tat, now)
    granted = max(0, min(want, (pace.window - (start - now)) // pace.interval))
    if granted == 0:
        return Outcome(
            Decision(
                allowed=False,
                limit=pace.capacity,
                remaining=0,
                reset_seconds=_seconds(start - now),
                retry_after_seconds=_seconds(start + pace.interval - pace.window - now),
            ),
            tat=start,
            granted=0,
        )
    after = start + granted * pace.interval
    return Outcome(
        Decision(
            allowed=True,
            limit=pace.capacity,
            remaining=(pace.window - (after - now)) // pace.interval,
            reset_seconds=_seconds(after - now),
            retry_after_seconds=0.0,
        ),
        tat=after,
        granted=granted,
    )


def _seconds(microseconds: int) -> float:
    return microseconds / MICROSECONDS


def _microseconds(seconds: float) -> int:
    return round(seconds * MICROSECONDS)


class MemoryRateLimiter:
    """GCRA in this process, for the all-in-one shape, where every request passes through one event loop.

    `hit` never awaits, so no other task can interleave between reading and writing a key's TAT.
    Memory stays bounded: keys are kept in least-recently-hit order, those back to full allowance are
    dropped as they reach the front, and beyond `max_keys` the least recently hit go regardless (which at
    worst hands that key its full allowance back early).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._tats: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tats)

    async def hit(self, key: str, quota: Quota) -> Decision:
        return (await self.take(key, quota, 1)).decision

    async def take(self, key: str, quota: Quota, want: int) -> Outcome:
        now = _microseconds(self._clock())
        outcome = gcra(self._tats.get(key), now, Pace.of(quota), want)
        self._tats[key] = outcome.tat
        self._tats.move_to_end(key)
        self._forget_idle_keys(now)
        return outcome

    def _forget_idle_keys(self, now: int) -> None:
        while self._tats:
            oldest, tat = next(iter(self._tats.items()))
            if tat > now and len(self._tats) <= self._max_keys:
                return
            del self._tats[oldest]


# KEYS[1]: the key's TAT; ARGV: interval (µs), capacity, how many requests to let through at most.
# Returns {now, tat before this step} (µs), from which `gcra` rebuilds the decision the script took. TIME is Redis's clock, so processes with
# skewed clocks agree; the TTL ends when the key is back to full allowance, when forgetting it is exact.
_GCRA_SCRIPT: Final = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local window = interval * tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local granted = math.max(0, math.min(tonumber(ARGV[3]), math.floor((window - (tat - now)) / interval)))
if granted > 0 then
    local after = tat + granted * interval
    redis.call('SET', KEYS[1], after, 'PX', math.max(1, math.ceil((after - now) / 1000)))
end
return {now, tat}
"""


class RedisRateLimiter:
    """GCRA in one Redis script, atomic across every process and instance sharing `client`'s Redis."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str = "doorstep:rl:") -> None:
        self._prefix = prefix
        self._script = client.register_script(_GCRA_SCRIPT)

    async def hit(self, key: str, quota: Quota) -> Decision:
        return (await self.take(key, quota, 1)).decision

    async def take(self, key: str, quota: Quota, want: int) -> Outcome:
        """Let up to `want` requests of `key` through in one step (see `LeasedRateLimiter`)."""
        pace = Pace.of(quota)
        try:
            now, tat = await self._script(
                keys=[self._prefix + key], args=[pace.interval, pace.capacity, want]
            )
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(
                f"rate limits cannot be checked: Redis did not answer ({type(error).__name__})"
            ) from error
        return gcra(int(tat), int(now), pace, want)


class PermitSource(Protocol):
    async def take(self, key: str, quota: Quota, want: int) -> Outcome:
        """Let up to `want` requests of `key` through in one atomic step."""
        ...


@dataclass(slots=True)
class _Lease:
    permits: int  # granted by the source and not spent yet
    size: int  # how many the last step asked for
    expires_at: float  # unspent permits are dropped then
    remaining: int  # the source's count of what was left right after the grant
    resets_at: float
    refused_until: float = 0.0  # the source refused: every hit before this is refused here too


class LeasedRateLimiter:
    """A gateway's view of the shared limiter: permits borrowed from it a few at a time.

    Asking Redis on every request puts a round trip (and a wake-up of Redis and of the gateway) on the
    path of each one. Here a key's requests are let through from a lease of permits that one GCRA step
    took from the shared limiter at once; only when the lease is spent or stale is the limiter asked
    again. Leases grow while a key spends them within `lease_seconds` (1, 2, 4, ... up to `share` of
    the quota's capacity and at most `max_lease`), and shrink again as it slows down, so a key that
    sends one request now and then still asks every time and a busy one rarely.

    The limits still hold across every gateway: each request spends a permit the shared limiter
    granted, and a permit is spent at most `lease_seconds` after its grant (later it is dropped, which
    only ever costs the key allowance). The price is that several gateways' unspent leases can hold
    up to `share` of a key's capacity each for up to `lease_seconds`. A refusal is remembered until
    the time it names: no request of that key can pass before then, whichever gateway it reaches, so
    a flood of refused requests stays in the gateway instead of reaching Redis.
    """

    def __init__(
        self,
        source: PermitSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        lease_seconds: float = 1.0,
        share: float = 0.1,
        max_lease: int = 64,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._source = source
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._share = share
        self._max_lease = max_lease
        self._max_keys = max_keys
        self._leases: OrderedDict[str, _Lease] = OrderedDict()

    def __len__(self) -> int:
        return len(self._leases)

    async def hit(self, key: str, quota: Quota) -> Decision:
        now = self._clock()
        lease = self._leases.get(key)
        if lease is not None:
            if now < lease.refused_until:
                return Decision(
                    allowed=False,
                    limit=quota.capacity,
                    remaining=0,
                    reset_seconds=max(0.0, lease.resets_at - now),
                    retry_after_seconds=lease.refused_until - now,
                )
            if lease.permits > 0 and now < lease.expires_at:
                lease.permits -= 1
                self._leases.move_to_end(key)
                return self._allowed(lease, quota, now)
        size = self._next_size(lease, quota, now)
        outcome = await self._source.take(key, quota, size)
        now = self._clock()
        decision = outcome.decision
        current = self._leases.get(key)  # other requests of the key may have taken leases meanwhile
        unspent = current.permits if current is not None and now < current.expires_at else 0
        self._leases[key] = _Lease(
            permits=unspent + max(0, outcome.granted - 1),
            size=size,
            expires_at=now + self._lease_seconds,
            remaining=decision.remaining,
            resets_at=now + decision.reset_seconds,
            refused_until=0.0 if decision.allowed else now + decision.retry_after_seconds,
        )
        self._leases.move_to_end(key)
        self._forget_stale_leases(now)
        if not decision.allowed:
            return decision
        return self._allowed(self._leases[key], quota, now)

    def _allowed(self, lease: _Lease, quota: Quota, now: float) -> Decision:
        return Decision(
            allowed=True,
            limit=quota.capacity,
            remaining=lease.remaining + lease.permits,
            reset_seconds=max(0.0, lease.resets_at - now),
            retry_after_seconds=0.0,
        )

    def _next_size(self, lease: _Lease | None, quota: Quota, now: float) -> int:
        largest = max(1, min(self._max_lease, int(quota.capacity * self._share)))
        if lease is None or now >= lease.expires_at + self._lease_seconds:
            return 1  # new, or idle for a while: start small again
        if now < lease.expires_at:
            return min(largest, lease.size * 2)  # spent within its time: the key is busy
        return max(1, min(largest, lease.size // 2))  # went stale: the key slowed down

    def _forget_stale_leases(self, now: float) -> None:
        while self._leases:
            oldest, lease = next(iter(self._leases.items()))
            stale = now >= max(lease.expires_at + self._lease_seconds, lease.refused_until)
            if not stale and len(self._leases) <= self._max_keys:
                return
            del self._leases[oldest]
