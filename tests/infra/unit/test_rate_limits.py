"""MemoryRateLimiter and the GCRA decisions it shares with RedisRateLimiter, on a clock the tests move."""

from __future__ import annotations

import asyncio

import pytest

from doorstep.infra.rate_limits import MemoryRateLimiter, Pace, gcra
from doorstep.kernel.limits import Decision, Quota

PER_MINUTE_BURST_4 = Quota(limit=60, period_seconds=60, burst=4)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def hits(limiter: MemoryRateLimiter, count: int, quota: Quota, key: str = "k") -> list[Decision]:
    return [await limiter.hit(key, quota) for _ in range(count)]


async def test_an_idle_key_allows_burst_plus_one_at_once_then_refuses() -> None:
    # Given an idle key with 60 per minute and a burst of 4
    limiter = MemoryRateLimiter(clock=FakeClock())
    # When six requests arrive at the same instant
    decisions = await hits(limiter, 6, PER_MINUTE_BURST_4)
    # Then five pass, counting down what remains, and the sixth waits one interval
    assert [d.allowed for d in decisions] == [True, True, True, True, True, False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert {d.limit for d in decisions} == {5}
    assert [d.reset_seconds for d in decisions] == [1.0, 2.0, 3.0, 4.0, 5.0, 5.0]
    assert decisions[-1] == Decision(
        allowed=False, limit=5, remaining=0, reset_seconds=5.0, retry_after_seconds=1.0
    )


async def test_after_one_interval_exactly_one_more_passes() -> None:
    # Given a key that spent its whole allowance
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    await hits(limiter, 5, PER_MINUTE_BURST_4)
    # When one interval (1 s) passes and two more requests arrive
    clock.advance(1.0)
    first, second = await hits(limiter, 2, PER_MINUTE_BURST_4)
    # Then the first passes with nothing left and the second waits a full interval again
    assert first == Decision(allowed=True, limit=5, remaining=0, reset_seconds=5.0, retry_after_seconds=0.0)
    assert second == Decision(allowed=False, limit=5, remaining=0, reset_seconds=5.0, retry_after_seconds=1.0)


async def test_a_partly_recovered_key_allows_what_the_elapsed_time_paid_for() -> None:
    # Given a key that spent its whole allowance
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    await hits(limiter, 5, PER_MINUTE_BURST_4)
    # When 2.5 intervals pass
    clock.advance(2.5)
    decisions = await hits(limiter, 3, PER_MINUTE_BURST_4)
    # Then two requests pass and the third waits for the rest of the interval
    assert [d.allowed for d in decisions] == [True, True, False]
    assert [d.remaining for d in decisions] == [1, 0, 0]
    assert decisions[-1].retry_after_seconds == 0.5
    assert decisions[-1].reset_seconds == 4.5


async def test_refused_requests_do_not_consume_allowance() -> None:
    # Given a key that spent its whole allowance
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    await hits(limiter, 5, PER_MINUTE_BURST_4)
    # When it keeps hammering while refused, then waits one interval
    refused = await hits(limiter, 50, PER_MINUTE_BURST_4)
    clock.advance(1.0)
    decision = await limiter.hit("k", PER_MINUTE_BURST_4)
    # Then every hammering request was refused and the wait was not pushed back
    assert not any(d.allowed for d in refused)
    assert {d.retry_after_seconds for d in refused} == {1.0}
    assert decision.allowed


async def test_a_key_idle_for_its_reset_time_is_back_to_full_allowance() -> None:
    # Given a key that spent its whole allowance
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    spent = await hits(limiter, 5, PER_MINUTE_BURST_4)
    # When it waits its reset time
    clock.advance(spent[-1].reset_seconds)
    decisions = await hits(limiter, 6, PER_MINUTE_BURST_4)
    # Then it has the whole burst again
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]


async def test_keys_are_limited_independently() -> None:
    # Given one key that spent its whole allowance
    limiter = MemoryRateLimiter(clock=FakeClock())
    await hits(limiter, 5, PER_MINUTE_BURST_4, key="a")
    # When another key asks at the same instant
    decision = await limiter.hit("b", PER_MINUTE_BURST_4)
    # Then it has its own full allowance
    assert decision == Decision(
        allowed=True, limit=5, remaining=4, reset_seconds=1.0, retry_after_seconds=0.0
    )


async def test_without_burst_one_request_passes_per_interval() -> None:
    # Given 10 per second and no burst
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    quota = Quota(limit=10, period_seconds=1)
    # When requests arrive at once, and again a tenth of a second later
    now = await hits(limiter, 2, quota)
    clock.advance(0.1)
    later = await hits(limiter, 2, quota)
    # Then one passes each time, and the refused one waits exactly 0.1 s
    assert [d.allowed for d in now + later] == [True, False, True, False]
    assert now[1] == Decision(allowed=False, limit=1, remaining=0, reset_seconds=0.1, retry_after_seconds=0.1)


async def test_fractional_intervals_count_exactly() -> None:
    # Given 10 per second with a burst of 9 (interval 0.1 s, which floats cannot add exactly)
    limiter = MemoryRateLimiter(clock=FakeClock())
    quota = Quota(limit=10, period_seconds=1, burst=9)
    # When eleven requests arrive at once
    decisions = await hits(limiter, 11, quota)
    # Then exactly ten pass, counting down from nine
    assert [d.remaining for d in decisions] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    assert [d.allowed for d in decisions].count(True) == 10
    assert decisions[-1].retry_after_seconds == 0.1


async def test_concurrent_hits_on_one_event_loop_never_overspend() -> None:
    # Given 10 per minute with a burst of 9
    limiter = MemoryRateLimiter(clock=FakeClock())
    quota = Quota(limit=10, period_seconds=60, burst=9)
    # When 200 tasks hit the same key at once
    decisions = await asyncio.gather(*(limiter.hit("k", quota) for _ in range(200)))
    # Then exactly ten pass
    assert sum(d.allowed for d in decisions) == 10


async def test_keys_back_to_full_allowance_are_forgotten() -> None:
    # Given three keys that each sent one request
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for key in ("a", "b", "c"):
        await limiter.hit(key, PER_MINUTE_BURST_4)
    # When they stay idle past their reset time and another key asks
    clock.advance(1.0)
    await limiter.hit("d", PER_MINUTE_BURST_4)
    # Then only the key that just asked is remembered
    assert len(limiter) == 1


async def test_beyond_max_keys_the_least_recently_hit_key_is_dropped() -> None:
    # Given a limiter that remembers two keys, where "a" spent its allowance and then "b" was hit
    limiter = MemoryRateLimiter(clock=FakeClock(), max_keys=2)
    await hits(limiter, 5, PER_MINUTE_BURST_4, key="a")
    await limiter.hit("b", PER_MINUTE_BURST_4)
    # When a third key is hit
    await limiter.hit("c", PER_MINUTE_BURST_4)
    # Then two keys are remembered, and "a", the least recently hit, starts afresh
    assert len(limiter) == 2
    assert (await limiter.hit("a", PER_MINUTE_BURST_4)).remaining == 4


def test_gcra_treats_a_key_never_seen_like_one_back_to_full_allowance() -> None:
    # Given a pace of 1 s with a capacity of 5
    pace = Pace.of(PER_MINUTE_BURST_4)
    # When a new key and a key whose TAT is long past are decided at the same instant
    fresh, stale = gcra(None, 10_000_000, pace), gcra(1, 10_000_000, pace)
    # Then both decide the same and store one interval ahead of now
    assert fresh == stale
    assert fresh.tat == 11_000_000
    assert pace == Pace(interval=1_000_000, capacity=5)


@pytest.mark.parametrize(
    "quota",
    [
        Quota(limit=0, period_seconds=60),
        Quota(limit=10, period_seconds=0),
        Quota(limit=10, period_seconds=60, burst=-1),
    ],
)
async def test_an_unusable_quota_is_refused(quota: Quota) -> None:
    # Given a limiter
    limiter = MemoryRateLimiter(clock=FakeClock())
    # When a quota that cannot pace anything is used, then it is refused outright
    with pytest.raises(ValueError, match="not a usable quota"):
        await limiter.hit("k", quota)
