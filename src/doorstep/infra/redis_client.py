"""The one place that makes Redis clients, so every process talks to Redis with the same limits.

Redis sits on the request path (rate limits, revoked tokens): when it is slow or gone, a request should
fail within about a second rather than hang, so timeouts are short and retries few and quick.
"""

from __future__ import annotations

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

CONNECT_TIMEOUT_SECONDS = 1.0
COMMAND_TIMEOUT_SECONDS = 1.0
HEALTH_CHECK_SECONDS = 30
RETRIES = 2


def redis_from_url(url: str) -> redis.asyncio.Redis:
    """A pooled asyncio client for `url` (redis://, rediss:// or unix://) that answers bytes.

    The health check pings a connection idle for longer than `HEALTH_CHECK_SECONDS` before using it, so a
    connection dropped by a load balancer or a Redis restart is replaced instead of failing a request.
    """
    return redis.asyncio.Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=Retry(ExponentialWithJitterBackoff(cap=0.1, base=0.01), retries=RETRIES),
    )
