"""Outgoing HTTP to addresses a tenant configured (a platform's API base, a courier network's), guarded
like status webhooks: no request reaches a loopback, private, link-local or metadata address.

Every request resolves its host again and vets every address it gets (`outbound.ssrf.vet`); it is
then sent to the vetted address, with the URL's host name kept for the `Host` header and for TLS
(SNI and certificate check), so a name that resolves elsewhere a moment later (DNS rebinding) cannot
redirect it. `DOORSTEP_WEBHOOKS_ALLOWED_NETWORKS` lets self-hosted partners on private networks through.

httpx pools connections by the URL's host, which here is the address: two names served from one
address would share a connection, and a TLS session made for one name would carry the other's
requests. Each host name therefore gets its own pool (the least recently used idle ones are closed
past `max_pools`).
"""

from __future__ import annotations

import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import httpx

from doorstep.integrations.outbound.ssrf import Network, Resolver, UrlRefused, system_resolver, vet

MAX_POOLS = 64


class AddressRefused(httpx.ConnectError):
    """The URL's host is, or resolves to, an address requests may not go to; the message says why."""


class _Released(httpx.AsyncByteStream):
    """A response body that hands its pool back once it is read or closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], Awaitable[None]]) -> None:
        self._stream = stream
        self._release: Callable[[], Awaitable[None]] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                await release()


class GuardedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        allowed: Sequence[Network] = (),
        resolver: Resolver = system_resolver,
        inner: Callable[[], httpx.AsyncBaseTransport] | None = None,
        max_pools: int = MAX_POOLS,
    ) -> None:
        """`inner` makes the transport (the pool) of one host name."""
        self._allowed = tuple(allowed)
        self._resolver = resolver
        self._make_pool = inner or self._default_pool
        self._max_pools = max_pools
        self._pools: OrderedDict[str, httpx.AsyncBaseTransport] = OrderedDict()
        self._in_use: dict[str, int] = {}
        self._ssl: ssl.SSLContext | None = None

    def _default_pool(self) -> httpx.AsyncBaseTransport:
        # One context for every pool: loading the CA bundle once, not once per host name.
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return httpx.AsyncHTTPTransport(verify=self._ssl)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            target = await vet(str(request.url), resolver=self._resolver, allowed=self._allowed)
        except UrlRefused as error:
            raise AddressRefused(str(error), request=request) from None
        assert target is not None  # vet refuses a host that does not resolve unless told otherwise
        if target.address != target.host:
            # `Host` was set from the URL when the request was built; TLS checks the name, not the address.
            request.url = request.url.copy_with(host=target.address)
            request.extensions = {**request.extensions, "sni_hostname": target.host}
        name = target.host
        pool = self._take(name)
        try:
            response = await pool.handle_async_request(request)
        except BaseException:
            await self._give_back(name)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Released(response.stream, lambda: self._give_back(name)),
            extensions=response.extensions,
        )

    def pool_names(self) -> list[str]:
        """The host names that have a pool, least recently used first."""
        return list(self._pools)

    def _take(self, name: str) -> httpx.AsyncBaseTransport:
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = self._make_pool()
        self._pools.move_to_end(name)
        self._in_use[name] = self._in_use.get(name, 0) + 1
        return pool

    async def _give_back(self, name: str) -> None:
        left = self._in_use.get(name, 0) - 1
        if left > 0:
            self._in_use[name] = left
        else:
            self._in_use.pop(name, None)
        await self._close_idle_beyond_bound()

    async def _close_idle_beyond_bound(self) -> None:
        # A pool with a request or a body still open is never closed: it is closed once idle.
        while len(self._pools) > self._max_pools:
            idle = next((name for name in self._pools if name not in self._in_use), None)
            if idle is None:
                return
            await self._pools.pop(idle).aclose()

    async def aclose(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        self._in_use.clear()
        for pool in pools:
            await pool.aclose()
