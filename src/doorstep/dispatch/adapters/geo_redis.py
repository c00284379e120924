"""The geo store in Redis GEO, for the distributed shape: every process sees the same positions.

Per tenant two sorted sets: `<prefix>geo:<tenant>` (GEOADD: the position) and `<prefix>seen:<tenant>`
(the recording time in milliseconds). An update and a search are each one script, one round trip and
atomic: an older ping never overwrites a newer one, and a search leaves out stale drivers in Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import redis.asyncio
from redis.exceptions import RedisError

from doorstep.dispatch.domain.geometry import Point
from doorstep.dispatch.ports import LivePosition, Nearby
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import ServiceUnavailable

# KEYS: geo, seen. ARGV: driver, lon, lat, recorded at (ms). 1 when kept, 0 when a newer one is there.
_UPDATE: Final = """
local seen = redis.call('ZSCORE', KEYS[2], ARGV[1])
if seen and tonumber(seen) > tonumber(ARGV[4]) then return 0 end
redis.call('GEOADD', KEYS[1], ARGV[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
"""

# KEYS: geo, seen. ARGV: lon, lat, radius (m), limit, fresh since (ms). Returns {id, distance, ...}.
# Asks GEOSEARCH for more while stale drivers crowd out fresh ones, up to every driver in the radius.
_NEAREST: Final = """
local limit = tonumber(ARGV[4])
local fresh_since = tonumber(ARGV[5])
local count = limit
while true do
    local found = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2],
        'BYRADIUS', ARGV[3], 'm', 'ASC', 'COUNT', count, 'WITHDIST')
    local out = {}
    for _, item in ipairs(found) do
        local seen = redis.call('ZSCORE', KEYS[2], item[1])
        if seen and tonumber(seen) >= fresh_since then
            out[#out + 1] = item[1]
            out[#out + 1] = item[2]
            if #out >= 2 * limit then return out end
        end
    end
    if #found < count then return out end
    count = count * 4
end
"""


class GeoStoreUnavailable(ServiceUnavailable):
    slug = "geo-store-unavailable"
    title = "Live positions are unavailable"


class RedisGeoStore:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str,
        stale_after: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._stale_after = stale_after
        self._clock = clock
        self._update = client.register_script(_UPDATE)
        self._nearest = client.register_script(_NEAREST)

    def keys(self, tenant_id: str) -> list[str]:
        return [f"{self._prefix}geo:{tenant_id}", f"{self._prefix}seen:{tenant_id}"]

    async def update(self, tenant_id: str, driver_id: str, point: Point, at: datetime) -> bool:
        args: list[str | float] = [driver_id, point.lon, point.lat, _ms(at)]
        return bool(await self._call(self._update(keys=self.keys(tenant_id), args=args)))

    async def nearest(self, tenant_id: str, point: Point, radius_m: float, limit: int) -> list[Nearby]:
        fresh_since = _ms(self._clock() - self._stale_after)
        args = [point.lon, point.lat, radius_m, limit, fresh_since]
        found = await self._call(self._nearest(keys=self.keys(tenant_id), args=args))
        return [
            Nearby(driver_id=found[i].decode(), distance_m=float(found[i + 1]))
            for i in range(0, len(found), 2)
        ]

    async def remove(self, tenant_id: str, driver_id: str) -> None:
        geo, seen = self.keys(tenant_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zrem(geo, driver_id)
            pipe.zrem(seen, driver_id)
            await self._call(pipe.execute())

    async def position(self, tenant_id: str, driver_id: str) -> LivePosition | None:
        return (await self.positions(tenant_id, [driver_id])).get(driver_id)

    async def positions(self, tenant_id: str, driver_ids: Sequence[str]) -> dict[str, LivePosition]:
        if not driver_ids:
            return {}
        geo, seen = self.keys(tenant_id)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.geopos(geo, *driver_ids)
            pipe.zmscore(seen, list(driver_ids))
            coordinates, times = await self._call(pipe.execute())
        return {
            driver_id: LivePosition(
                point=Point(lat=float(where[1]), lon=float(where[0])),
                at=datetime.fromtimestamp(float(at) / 1000, UTC),
            )
            for driver_id, where, at in zip(driver_ids, coordinates, times, strict=True)
            if where is not None and at is not None
        }

    async def _call(self, pending: Any) -> Any:
        try:
            return await pending
        except (RedisError, OSError) as error:
            raise GeoStoreUnavailable(
                f"live positions cannot be reached: Redis did not answer ({type(error).__name__})"
            ) from error


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)
