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
from typing import Final

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


def gcra(tat: int | None, now: int, pace: Pace) -> Outcome:
    """Decide one request at `now` for a key whose stored TAT is `tat` (None for a key never seen).

    A refused request leaves the TAT alone, so hammering a limited key does not push its recovery back.
    """
    start = now if tat is None else max(tat, now)
    after = start + pace.interval
    if after - now > pace.window:
        return Outcome(
            Decision(
                allowed=False,
                limit=pace.capacity,
                remaining=0,
                reset_seconds=_seconds(start - now),
                retry_after_seconds=_seconds(after - pace.window - now),
            ),
            tat=start,
        )
    return Outcome(
        Decision(
            allowed=True,
            limit=pace.capacity,
            remaining=(pace.window - (after - now)) // pace.interval,
            reset_seconds=_seconds(after - now),
            retry_after_seconds=0.0,
        ),
        tat=after,
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
        now = _microseconds(self._clock())
        outcome = gcra(self._tats.get(key), now, Pace.of(quota))
        self._tats[key] = outcome.tat
        self._tats.move_to_end(key)
        self._forget_idle_keys(now)
        return outcome.decision

    def _forget_idle_keys(self, now: int) -> None:
        while self._tats:
            oldest, tat = next(iter(self._tats.items()))
            if tat > now and len(self._tats) <= self._max_keys:
                return
            del self._tats[oldest]


# KEYS[1]: the key's TAT; ARGV: interval (µs), capacity. Returns {now, tat before this request} (µs),
# from which `gcra` rebuilds the decision the script took. TIME is Redis's clock, so processes with
# skewed clocks agree; the TTL ends when the key is back to full allowance, when forgetting it is exact.
_GCRA_SCRIPT: Final = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local window = interval * tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local after = tat + interval
if after - now <= window then
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
        pace = Pace.of(quota)
        try:
            now, tat = await self._script(keys=[self._prefix + key], args=[pace.interval, pace.capacity])
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(
                f"rate limits cannot be checked: Redis did not answer ({type(error).__name__})"
            ) from error
        return gcra(int(tat), int(now), pace).decision
