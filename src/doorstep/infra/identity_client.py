"""The other services' view of identity: credentials checked over HTTP, briefly cached."""

from __future__ import annotations

import time
from collections import OrderedDict

import httpx

from doorstep.kernel.auth import Principal
from doorstep.kernel.errors import ServiceUnavailable

_MAX_CACHED = 10_000


class IdentityUnavailable(ServiceUnavailable):
    pass


class HttpAuthenticator:
    """Asks identity's `/v1/identity/introspect`. In the all-in-one shape the client's transport is in-process.

    A revoked key keeps working for at most `cache_seconds` in the services that cached it.
    """

    def __init__(self, client: httpx.AsyncClient, *, cache_seconds: float = 10.0) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def authenticate(self, credential: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(credential)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = await self._client.post("/v1/identity/introspect", json={"credential": credential})
        except httpx.HTTPError as error:
            raise IdentityUnavailable(f"identity did not answer: {error}") from error
        if 400 <= response.status_code < 500:
            # Identity refused the question itself (say, a credential longer than any key): not a key.
            return None
        if response.status_code != 200:
            raise IdentityUnavailable(f"identity answered {response.status_code}")
        body = response.json()
        if not body.get("active"):
            self._cache.pop(credential, None)
            return None
        principal = Principal(
            tenant_id=body["tenant_id"],
            subject=body["subject"],
            kind=body["kind"],
            scopes=frozenset(body.get("scopes", [])),
        )
        if self._cache_seconds > 0:
            self._cache[credential] = (now + self._cache_seconds, principal)
            self._cache.move_to_end(credential)
            while len(self._cache) > _MAX_CACHED:
                self._cache.popitem(last=False)
        return principal

    async def close(self) -> None:
        await self._client.aclose()
