"""RedisRateLimiter and RedisRevocationList against a real Redis: same decisions, atomic, expiring."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio

from doorstep.infra.rate_limits import MemoryRateLimiter, RateLimiterUnavailable, RedisRateLimiter
from doorstep.infra.redis_client import redis_from_url
from doorstep.infra.revocations import RedisRevocationList, RevocationListUnavailable
from doorstep.kernel.errors import ServiceUnavailable
from doorstep.kernel.limits import Quota

pytestmark = pytest.mark.integration

PER_MINUTE_BURST_4 = Quota(limit=60, period_seconds=60, burst=4)
NOBODY_LISTENS = "redis://127.0.0.1:1/0"


@pytest.fixture
def prefix() -> str:
    """A prefix of its own for each test, so parallel runs and reruns never share a key."""
    return f"doorstep-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def client(redis_url: str, prefix: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis_from_url(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def second_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis_from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def now() -> datetime:
    return datetime.now(UTC)


# --- rate limits


async def test_an_idle_key_allows_burst_plus_one_at_once_then_refuses(
    client: redis.asyncio.Redis, prefix: str
) -> None:
    # Given an idle key with 60 per minute and a burst of 4
    limiter = RedisRateLimiter(client, prefix=prefix)
    # When six requests arrive at once
    decisions = [await limiter.hit("k", PER_MINUTE_BURST_4) for _ in range(6)]
    # Then five pass, counting down what remains, and the sixth waits about one interval
    assert [d.allowed for d in decisions] == [True, True, True, True, True, False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert {d.limit for d in decisions} == {5}
    refused = decisions[-1]
    assert 0.9 < refused.retry_after_seconds <= 1.0
    assert 4.9 < refused.reset_seconds <= 5.0


async def test_redis_decides_like_the_memory_limiter(client: redis.asyncio.Redis, prefix: str) -> None:
    # Given the same quota on Redis and in memory
    quota = Quota(limit=10, period_seconds=60, burst=3)
    redis_limiter = RedisRateLimiter(client, prefix=prefix)
    memory_limiter = MemoryRateLimiter()
    # When both see the same burst of requests
    from_redis = [await redis_limiter.hit("k", quota) for _ in range(6)]
    from_memory = [await memory_limiter.hit("k", quota) for _ in range(6)]
    # Then they allow, count and limit alike
    assert [(d.allowed, d.remaining, d.limit) for d in from_redis] == [
        (d.allowed, d.remaining, d.limit) for d in from_memory
    ]


async def test_redis_takes_several_permits_at_once_like_the_memory_limiter(
    client: redis.asyncio.Redis, prefix: str
) -> None:
    # Given a key that may send 10 at once, on Redis and in memory
    quota = Quota(limit=10, period_seconds=60, burst=9)
    redis_limiter = RedisRateLimiter(client, prefix=prefix)
    memory_limiter = MemoryRateLimiter()
    # When both are asked for 4, 4 and 4 permits, then 1
    wants = [4, 4, 4, 1]
    from_redis = [await redis_limiter.take("k", quota, want) for want in wants]
    from_memory = [await memory_limiter.take("k", quota, want) for want in wants]
    # Then both grant 4, 4, the 2 left, then none, counting alike
    assert [o.granted for o in from_redis] == [4, 4, 2, 0]
    assert [(o.granted, o.decision.allowed, o.decision.remaining) for o in from_redis] == [
        (o.granted, o.decision.allowed, o.decision.remaining) for o in from_memory
    ]


async def test_after_the_wait_it_names_the_next_request_passes(
    client: redis.asyncio.Redis, prefix: str
) -> None:
    # Given 10 per second without burst, and a key that was just refused
    quota = Quota(limit=10, period_seconds=1)
    limiter = RedisRateLimiter(client, prefix=prefix)
    first = await limiter.hit("k", quota)
    refused = await limiter.hit("k", quota)
    # When it waits the time the refusal named
    await asyncio.sleep(refused.retry_after_seconds)
    again = await limiter.hit("k", quota)
    # Then exactly one more passes
    assert (first.allowed, refused.allowed, again.allowed) == (True, False, True)
    assert 0 < refused.retry_after_seconds <= 0.1
    assert again.remaining == 0


async def test_refused_requests_do_not_consume_allowance(client: redis.asyncio.Redis, prefix: str) -> None:
    # Given 10 per second without burst, and a key that spent its allowance
    quota = Quota(limit=10, period_seconds=1)
    limiter = RedisRateLimiter(client, prefix=prefix)
    await limiter.hit("k", quota)
    # When it hammers while refused, then waits one interval
    refused = [await limiter.hit("k", quota) for _ in range(20)]
    await asyncio.sleep(0.1)
    after = await limiter.hit("k", quota)
    # Then the hammering was refused and did not push the next pass back
    assert not any(d.allowed for d in refused)
    assert after.allowed


async def test_two_clients_hammering_one_key_never_overspend(
    client: redis.asyncio.Redis, second_client: redis.asyncio.Redis, prefix: str
) -> None:
    # Given two processes' worth of clients sharing one Redis, 10 per minute with a burst of 9
    quota = Quota(limit=10, period_seconds=60, burst=9)
    limiters = [RedisRateLimiter(client, prefix=prefix), RedisRateLimiter(second_client, prefix=prefix)]
    # When 200 requests hit the same key concurrently, split between them
    decisions = await asyncio.gather(*(limiters[i % 2].hit("k", quota) for i in range(200)))
    # Then exactly ten pass
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


async def test_the_key_lives_until_it_is_back_to_full_allowance(
    client: redis.asyncio.Redis, prefix: str
) -> None:
    # Given a key that spent its whole allowance (60 per minute, burst 4)
    limiter = RedisRateLimiter(client, prefix=prefix)
    for _ in range(5):
        await limiter.hit("k", PER_MINUTE_BURST_4)
    spent_ttl = await client.pttl(f"{prefix}k")
    # When it is refused
    await limiter.hit("k", PER_MINUTE_BURST_4)
    refused_ttl = await client.pttl(f"{prefix}k")
    # Then its TTL is its reset time, and a refusal does not extend it
    assert 4_900 < spent_ttl <= 5_000
    assert refused_ttl <= spent_ttl


async def test_the_key_stores_a_tat_on_redis_server_time(client: redis.asyncio.Redis, prefix: str) -> None:
    # Given a key hit once with 60 per minute
    limiter = RedisRateLimiter(client, prefix=prefix)
    await limiter.hit("k", PER_MINUTE_BURST_4)
    # When its TAT is compared with Redis's own clock
    stored = await client.get(f"{prefix}k")
    assert stored is not None
    tat = float(stored)
    seconds, microseconds = await client.time()
    server_now = seconds * 1_000_000 + microseconds
    # Then it is one interval ahead of Redis's now, whatever this process's clock says
    assert 0 < tat - server_now <= 1_000_000


async def test_a_redis_that_is_down_makes_the_rate_limiter_unavailable() -> None:
    # Given a limiter whose Redis does not listen
    client = redis_from_url(NOBODY_LISTENS)
    limiter = RedisRateLimiter(client)
    # When a request is counted
    try:
        with pytest.raises(RateLimiterUnavailable, match="rate limits cannot be checked") as raised:
            await limiter.hit("k", PER_MINUTE_BURST_4)
    finally:
        await client.aclose()
    # Then it is a 503 the API reports, not a silent pass
    assert isinstance(raised.value, ServiceUnavailable)
    assert raised.value.status == 503


# --- revocations


async def test_a_revoked_token_is_stored_with_its_expiry(client: redis.asyncio.Redis, prefix: str) -> None:
    # Given a token revoked until ten minutes from now
    revocations = RedisRevocationList(client, prefix=prefix)
    until = now() + timedelta(minutes=10)
    await revocations.revoke_token("jti-1", until=until)
    # When it and another token of the same subject are checked
    revoked = await revocations.is_revoked("jti-1", "user-1", now())
    other = await revocations.is_revoked("jti-2", "user-1", now())
    # Then only it is refused, and its key holds `until` as epoch seconds and expires then
    assert (revoked, other) == (True, False)
    key = revocations.token_key("jti-1")
    assert await client.get(key) == repr(until.timestamp()).encode()
    assert await client.pexpiretime(key) == math.ceil(until.timestamp() * 1000)


async def test_a_token_already_expired_is_not_stored(client: redis.asyncio.Redis, prefix: str) -> None:
    # Given a list
    revocations = RedisRevocationList(client, prefix=prefix)
    # When a token that expired a second ago is revoked
    await revocations.revoke_token("jti-1", until=now() - timedelta(seconds=1))
    # Then nothing is stored
    assert await client.exists(revocations.token_key("jti-1")) == 0


async def test_a_revoked_token_is_forgotten_at_until(client: redis.asyncio.Redis, prefix: str) -> None:
    # Given a token revoked for the next 300 ms
    revocations = RedisRevocationList(client, prefix=prefix)
    await revocations.revoke_token("jti-1", until=now() + timedelta(milliseconds=300))
    before = await revocations.is_revoked("jti-1", "user-1", now())
    # When that time passes
    await asyncio.sleep(0.4)
    # Then it is no longer listed and its key is gone
    assert before is True
    assert await revocations.is_revoked("jti-1", "user-1", now()) is False
    assert await client.exists(revocations.token_key("jti-1")) == 0


async def test_a_subject_cut_off_refuses_tokens_issued_before_it_only(
    client: redis.asyncio.Redis, prefix: str
) -> None:
    # Given a subject revoked for tokens issued before a cut-off
    revocations = RedisRevocationList(client, prefix=prefix)
    cutoff = now()
    await revocations.revoke_subject("user-1", issued_before=cutoff, until=cutoff + timedelta(minutes=10))
    # When tokens issued just before, at and after the cut-off are checked
    earlier = await revocations.is_revoked("jti-1", "user-1", cutoff - timedelta(microseconds=1))
    at = await revocations.is_revoked("jti-2", "user-1", cutoff)
    later = await revocations.is_revoked("jti-3", "user-1", cutoff + timedelta(seconds=1))
    other_subject = await revocations.is_revoked("jti-4", "user-2", cutoff - timedelta(minutes=1))
    # Then only the one issued before is refused, and the cut-off is stored as epoch seconds
    assert (earlier, at, later, other_subject) == (True, False, False, False)
    assert await client.get(revocations.subject_key("user-1")) == repr(cutoff.timestamp()).encode()


async def test_an_earlier_cut_off_never_narrows_a_later_one(client: redis.asyncio.Redis, prefix: str) -> None:
    # Given a subject cut off now until in ten minutes
    revocations = RedisRevocationList(client, prefix=prefix)
    cutoff, until = now(), now() + timedelta(minutes=10)
    await revocations.revoke_subject("user-1", issued_before=cutoff, until=until)
    # When it is revoked again with an earlier cut-off and an earlier expiry
    await revocations.revoke_subject(
        "user-1", issued_before=cutoff - timedelta(minutes=1), until=until - timedelta(minutes=5)
    )
    # Then the later cut-off and the later expiry stand
    key = revocations.subject_key("user-1")
    assert await client.get(key) == repr(cutoff.timestamp()).encode()
    assert await client.pexpiretime(key) == math.ceil(until.timestamp() * 1000)
    assert await revocations.is_revoked("jti-1", "user-1", cutoff - timedelta(seconds=30)) is True


async def test_a_later_cut_off_replaces_an_earlier_one(client: redis.asyncio.Redis, prefix: str) -> None:
    # Given a subject cut off a minute ago until in five minutes
    revocations = RedisRevocationList(client, prefix=prefix)
    cutoff = now()
    await revocations.revoke_subject(
        "user-1", issued_before=cutoff - timedelta(minutes=1), until=cutoff + timedelta(minutes=5)
    )
    # When it is cut off again now, until in ten minutes
    until = cutoff + timedelta(minutes=10)
    await revocations.revoke_subject("user-1", issued_before=cutoff, until=until)
    # Then the new cut-off and expiry are stored
    key = revocations.subject_key("user-1")
    assert await client.get(key) == repr(cutoff.timestamp()).encode()
    assert await client.pexpiretime(key) == math.ceil(until.timestamp() * 1000)
    assert await revocations.is_revoked("jti-1", "user-1", cutoff - timedelta(seconds=30)) is True


async def test_is_revoked_reads_token_and_subject_in_one_mget(
    client: redis.asyncio.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a list, and a record of the commands its client sends
    revocations = RedisRevocationList(client, prefix=prefix)
    sent: list[Any] = []
    execute: Callable[..., Awaitable[Any]] = client.execute_command

    async def recording(*args: Any, **options: Any) -> Any:
        sent.append(args)
        return await execute(*args, **options)

    monkeypatch.setattr(client, "execute_command", recording)
    # When a token is checked
    await revocations.is_revoked("jti-1", "user-1", now())
    # Then one MGET asked for both keys
    assert sent == [("MGET", revocations.token_key("jti-1"), revocations.subject_key("user-1"))]


async def test_a_redis_that_is_down_makes_the_revocation_list_unavailable() -> None:
    # Given a list whose Redis does not listen
    client = redis_from_url(NOBODY_LISTENS)
    revocations = RedisRevocationList(client)
    # When a token is checked
    try:
        with pytest.raises(RevocationListUnavailable, match="revoked tokens cannot be checked") as raised:
            await revocations.is_revoked("jti-1", "user-1", now())
    finally:
        await client.aclose()
    # Then it is a 503 the API reports, not a token let through
    assert isinstance(raised.value, ServiceUnavailable)
    assert raised.value.status == 503
