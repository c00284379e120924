"""Outgoing HTTP to addresses a tenant configured (a platform's API base, a courier network's), guarded
like status webhooks: no request reaches a loopback, private, link-local or metadata address.

Every request resolves its host again and vets every address it gets (`outbound.ssrf.vet`); it is
then sent to the vetted address, with the URL's host name kept for the `Host` header and for TLS
(SNI and certificate check), so a name that resolves elsewhere a moment later (DNS rebinding) cannot
redirect it. `DOORSTEP_WEBHOOKS_ALLOWED_NETWORKS` lets self-hosted partners on private networks through.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from doorstep.integrations.outbound.ssrf import Network, Resolver, UrlRefused, system_resolver, vet


class AddressRefused(httpx.ConnectError):
    """The URL's host is, or resolves to, an address requests may not go to; the message says why."""


class GuardedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        allowed: Sequence[Network] = (),
        resolver: Resolver = system_resolver,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._allowed = tuple(allowed)
        self._resolver = resolver
        self._inner = inner or httpx.AsyncHTTPTransport()

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
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
