"""What every service of a process shares: the rate limiter, the list of revoked tokens, the geocoder.

With `DOORSTEP_REDIS_URL` both live in Redis, shared by every process of the distributed shape;
without it, in the process (the all-in-one shape, where one process is the whole platform).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio

from doorstep.infra.geocoders import build_geocoder
from doorstep.infra.rate_limits import LeasedRateLimiter, MemoryRateLimiter, RedisRateLimiter
from doorstep.infra.redis_client import redis_from_url
from doorstep.infra.revocations import MemoryRevocationList, RedisRevocationList
from doorstep.kernel.geocoding import Geocoder
from doorstep.kernel.limits import RateLimiter, RevocationList
from doorstep.kernel.settings import Settings


@dataclass
class Shared:
    limiter: RateLimiter
    revocations: RevocationList
    redis: redis.asyncio.Redis | None = None
    _geocoder: Geocoder | None = field(default=None, repr=False)

    async def ping(self) -> bool:
        if self.redis is None:
            return True
        try:
            return bool(await self.redis.ping())
        except redis.RedisError:
            return False

    def edge_limiter(self) -> RateLimiter:
        """The limiter for a process's edge: with Redis, permits leased a few at a time (one per process).

        Only the edge leases: the identity service's limits (log-in attempts, one-time codes) are
        small and each attempt must be counted where every process sees it at once.
        """
        if isinstance(self.limiter, RedisRateLimiter):
            return LeasedRateLimiter(self.limiter)
        return self.limiter

    def geocoder(self, settings: Settings) -> Geocoder:
        """One geocoder for the services of a process: Nominatim's one request a second is per process."""
        if self._geocoder is None:
            self._geocoder = build_geocoder(settings)
        return self._geocoder

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def make_shared(settings: Settings) -> Shared:
    if settings.redis_url:
        client = redis_from_url(settings.redis_url)
        prefix = settings.redis_prefix
        return Shared(
            limiter=RedisRateLimiter(client, prefix=f"{prefix}rl:"),
            revocations=RedisRevocationList(client, prefix=f"{prefix}revoked:"),
            redis=client,
        )
    return Shared(limiter=MemoryRateLimiter(), revocations=MemoryRevocationList())
