"""LeasedRateLimiter: permits borrowed from the shared limiter a few at a time, on a clock the tests move."""

from __future__ import annotations

from doorstep.infra.rate_limits import LeasedRateLimiter, MemoryRateLimiter, Outcome
from doorstep.kernel.limits import Decision, Quota

# An idle key may send 100 at once: leases grow to 10 (a tenth of that).
HUNDRED_AT_ONCE = Quota(limit=60, period_seconds=60, burst=99)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingSource(MemoryRateLimiter):
    """The in-process limiter, remembering how many permits each step asked for."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.wants: list[int] = []

    async def take(self, key: str, quota: Quota, want: int) -> Outcome:
        self.wants.append(want)
        return await super().take(key, quota, want)


async def hits(limiter: LeasedRateLimiter, count: int, quota: Quota = HUNDRED_AT_ONCE) -> list[Decision]:
    return [await limiter.hit("k", quota) for _ in range(count)]


async def test_a_busy_key_asks_the_shared_limiter_for_growing_leases() -> None:
    # Given a leased view of the shared limiter
    clock = FakeClock()
    source = CountingSource(clock)
    limiter = LeasedRateLimiter(source, clock=clock)
    # When a key sends 40 requests in a row
    decisions = await hits(limiter, 40)
    # Then all pass, and the shared limiter was asked seven times, for 1, 2, 4, 8, then at most 10 permits
    assert all(d.allowed for d in decisions)
    assert source.wants == [1, 2, 4, 8, 10, 10, 10]
    # And what remains counts down one by one, leased permits included
    assert [d.remaining for d in decisions[:6]] == [99, 98, 97, 96, 95, 94]


async def test_leases_never_let_through_more_than_the_shared_allowance() -> None:
    # Given a key that may send 100 at once
    clock = FakeClock()
    limiter = LeasedRateLimiter(CountingSource(clock), clock=clock)
    # When it sends 150 at one instant
    decisions = await hits(limiter, 150)
    # Then exactly 100 pass, and the refusals say to come back in one interval
    assert sum(d.allowed for d in decisions) == 100
    assert [d.allowed for d in decisions[100:]] == [False] * 50
    assert decisions[-1].retry_after_seconds == 1.0


async def test_two_gateways_sharing_one_limiter_pass_the_allowance_once_between_them() -> None:
    # Given two gateways, each with its own leases, over one shared limiter
    clock = FakeClock()
    source = CountingSource(clock)
    gateways = [LeasedRateLimiter(source, clock=clock), LeasedRateLimiter(source, clock=clock)]
    # When one key sends 300 requests at one instant, alternating between them
    decisions = [await gateways[index % 2].hit("k", HUNDRED_AT_ONCE) for index in range(300)]
    # Then the two let through exactly the key's 100 together
    assert sum(d.allowed for d in decisions) == 100


async def test_a_refusal_is_remembered_until_the_time_it_names() -> None:
    # Given a key that spent its allowance and was refused once
    clock = FakeClock()
    source = CountingSource(clock)
    limiter = LeasedRateLimiter(source, clock=clock)
    await hits(limiter, 101)
    asked = len(source.wants)
    # When it keeps sending within the interval the refusal named
    clock.advance(0.5)
    refused = await hits(limiter, 20)
    # Then each is refused here, naming the time left, without asking the shared limiter
    assert [d.allowed for d in refused] == [False] * 20
    assert refused[0].retry_after_seconds == 0.5
    assert len(source.wants) == asked
    # And once the interval has passed, the shared limiter is asked again and one more passes
    clock.advance(0.5)
    again = await limiter.hit("k", HUNDRED_AT_ONCE)
    assert again.allowed
    assert len(source.wants) == asked + 1


async def test_unspent_permits_are_dropped_when_their_lease_expires() -> None:
    # Given a key holding one unspent permit (its second step took two)
    clock = FakeClock()
    source = CountingSource(clock)
    limiter = LeasedRateLimiter(source, clock=clock, lease_seconds=1.0)
    await hits(limiter, 2)
    assert source.wants == [1, 2]
    # When its next request comes after the lease expired
    clock.advance(1.5)
    decision = await limiter.hit("k", HUNDRED_AT_ONCE)
    # Then it asks the shared limiter again, for a smaller lease
    assert decision.allowed
    assert source.wants == [1, 2, 1]


async def test_a_key_idle_for_a_while_starts_with_a_single_permit_again() -> None:
    # Given a key whose leases grew to 8
    clock = FakeClock()
    source = CountingSource(clock)
    limiter = LeasedRateLimiter(source, clock=clock, lease_seconds=1.0)
    await hits(limiter, 8)
    assert source.wants == [1, 2, 4, 8]
    # When it comes back after more than two lease times
    clock.advance(5.0)
    await limiter.hit("k", HUNDRED_AT_ONCE)
    # Then it asks for one permit, as a new key does, and its stale lease was forgotten meanwhile
    assert source.wants == [1, 2, 4, 8, 1]
    assert len(limiter) == 1


async def test_small_quotas_are_never_leased() -> None:
    # Given a key that may send 5 at once (a tenth of it is less than one permit)
    clock = FakeClock()
    source = CountingSource(clock)
    limiter = LeasedRateLimiter(source, clock=clock)
    # When it sends 7 requests in a row
    decisions = await hits(limiter, 7, Quota(limit=60, period_seconds=60, burst=4))
    # Then every one asked the shared limiter for exactly one permit, and the sixth was refused
    assert source.wants == [1, 1, 1, 1, 1, 1]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2


async def test_keys_are_leased_independently() -> None:
    # Given a key that spent its allowance
    clock = FakeClock()
    limiter = LeasedRateLimiter(CountingSource(clock), clock=clock)
    await hits(limiter, 101)
    # When another key sends a request
    other = await limiter.hit("other", HUNDRED_AT_ONCE)
    # Then it passes with its own full allowance
    assert other.allowed
    assert other.remaining == 99


async def test_beyond_max_keys_the_least_recently_hit_lease_is_dropped() -> None:
    # Given a limiter that keeps two keys' leases
    clock = FakeClock()
    limiter = LeasedRateLimiter(CountingSource(clock), clock=clock, max_keys=2)
    # When three keys send a request each
    for key in ("a", "b", "c"):
        await limiter.hit(key, HUNDRED_AT_ONCE)
    # Then only two leases are kept
    assert len(limiter) == 2
