"""Sends one signed delivery over HTTP to the address that was vetted for it.

Every attempt resolves the host again (an answer is reused for at most a second) and vets what it
got; the request then goes to the vetted address over a keep-alive connection pool of its own, one per
(scheme, host, port, address). A pool's resolver knows only that address, so a connection can never
reach anything else, and a name that moves to another address gets a new pool instead of the old
connection. Each pool's TLS connections are verified for its one host name.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from doorstep.integrations.outbound.domain import Outcome
from doorstep.integrations.outbound.signing import signed_headers
from doorstep.integrations.outbound.ssrf import Network, Resolver, Target, UrlRefused, vet

SNIPPET_BYTES = 1024
# Read at most this much of an answer: enough to keep the connection for the next delivery after an
# ordinary body; a larger one is cut and its connection closed.
READ_BYTES = 64 * 1024
USER_AGENT = "Doorstep-Webhooks/1"
DNS_CACHE_SECONDS = 1.0  # getaddrinfo gives no TTL; a second is below any TTL worth honouring
MAX_POOLS = 256

PoolKey = tuple[str, str, int, str]  # scheme, host, port, vetted address


class _PinnedResolver(AbstractResolver):
    """Resolves to the one address that was vetted: its pool only ever serves URLs of that host."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.family = socket.AF_INET6 if ":" in address else socket.AF_INET

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=self.address, port=port, family=self.family, proto=0, flags=0)
        ]

    async def close(self) -> None:
        return None


@dataclass
class _Pool:
    session: aiohttp.ClientSession
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)


class WebhookSender:
    """Redirects are not followed (a 3xx is a failure); a 2xx within `timeout` seconds is success."""

    def __init__(
        self,
        *,
        timeout: float,
        resolver: Resolver,
        allowed: Sequence[Network],
        max_connections: int = 200,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolver = resolver
        self.allowed = list(allowed)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_connections = max_connections
        self._monotonic = monotonic
        self._answers: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._pools: OrderedDict[PoolKey, _Pool] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        pools, self._pools = self._pools, OrderedDict()
        for pool in pools.values():
            await pool.session.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def resolve(self, host: str, port: int) -> list[str]:
        """The resolver's answer, reused for at most `DNS_CACHE_SECONDS`; failures are not kept."""
        now = self._monotonic()
        cached = self._answers.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        addresses = await self.resolver(host, port)
        if not addresses:
            return addresses
        if len(self._answers) >= 4 * MAX_POOLS:
            self._answers = {key: value for key, value in self._answers.items() if value[0] > now}
        self._answers[(host, port)] = (now + DNS_CACHE_SECONDS, addresses)
        return addresses

    async def send(
        self, *, url: str, message_id: str, body: bytes, secrets: Sequence[str], now: datetime
    ) -> Outcome:
        started = time.perf_counter()
        try:
            target = await vet(url, resolver=self.resolve, allowed=self.allowed)
        except UrlRefused as refused:
            return Outcome(status=None, latency_ms=0, error=f"refused: {refused}")
        assert target is not None
        headers = {
            **signed_headers(secrets, message_id=message_id, at=now, body=body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        pool = self._pool(target)
        pool.in_flight += 1
        try:
            async with pool.session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                content = await _read(response)
                status, answer_headers = response.status, response.headers
        except TimeoutError:
            return Outcome(status=None, latency_ms=_since(started), error="timed out")
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return Outcome(
                status=None, latency_ms=_since(started), error=f"{type(error).__name__}: {error}"[:500]
            )
        finally:
            pool.in_flight -= 1
            pool.last_used = self._monotonic()
        return Outcome(
            status=status,
            latency_ms=_since(started),
            snippet=content[:SNIPPET_BYTES].decode("utf-8", errors="replace"),
            retry_after=retry_after(answer_headers.get("retry-after"), now),
        )

    def _pool(self, target: Target) -> _Pool:
        key = (target.scheme, target.host, target.port, target.address)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        pool = _Pool(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    resolver=_PinnedResolver(target.address),
                    use_dns_cache=False,
                    limit=self.max_connections,
                ),
                timeout=self.timeout,
                trust_env=False,  # a proxy from the environment would connect to the URL's host, unvetted
                skip_auto_headers=("Accept", "Accept-Encoding"),
                auto_decompress=False,
            )
        )
        self._pools[key] = pool
        self._evict()
        return pool

    def _evict(self) -> None:
        """Close the least recently used idle pools beyond `MAX_POOLS` (a busy one is never closed)."""
        excess = len(self._pools) - MAX_POOLS
        for key in list(self._pools):
            if excess <= 0:
                break
            if self._pools[key].in_flight == 0:
                closing = asyncio.create_task(self._pools.pop(key).session.close())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
                excess -= 1


async def _read(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < READ_BYTES:
        chunk = await response.content.read(READ_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
