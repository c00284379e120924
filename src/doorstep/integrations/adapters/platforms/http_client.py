"""The `PlatformClient` over httpx: one pooled client, created on first use, never at import.

Its requests go through `GuardedTransport`: a connection's API base URL is the tenant's to set, so no
request may reach a private address unless `allowed` says so."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from doorstep.integrations.adapters.guarded_http import GuardedTransport
from doorstep.integrations.outbound.ssrf import Network
from doorstep.integrations.ports import FetchFailed, FetchRequest

# A platform that takes longer than this is treated as down; the delivery stays replayable.
FETCH_TIMEOUT_SECONDS = 10.0


class HttpxPlatformClient:
    def __init__(
        self,
        *,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        allowed: Sequence[Network] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self._timeout = timeout
        self._transport = transport or GuardedTransport(allowed=allowed)
        self._client: httpx.AsyncClient | None = None

    async def fetch(self, request: FetchRequest) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
        try:
            response = await self._client.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                data=dict(request.form) if request.form is not None else None,
                json=request.json,
            )
        except httpx.HTTPError as error:
            raise FetchFailed(f"{request.method} {request.url} failed: {error!r}") from None
        if not response.is_success:
            raise FetchFailed(
                f"{request.method} {request.url} answered {response.status_code}: {response.text[:200]}"
            )
        if not response.content.strip():
            return None  # a 2xx without a body (Uber's accept, deny and cancel answer 204)
        try:
            return response.json()
        except ValueError:
            raise FetchFailed(
                f"{request.method} {request.url} answered with a body that is not JSON"
            ) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
