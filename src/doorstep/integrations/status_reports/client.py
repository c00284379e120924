"""A `PlatformClient` for status reports: like `HttpxPlatformClient`, but a 2xx without a body is an
answer too (Uber's accept, deny and cancel calls answer `204 No Content`)."""

from __future__ import annotations

from typing import Any

import httpx

from doorstep.integrations.ports import FetchFailed, FetchRequest

TIMEOUT_SECONDS = 10.0


class ReportingClient:
    def __init__(
        self, *, timeout: float = TIMEOUT_SECONDS, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._timeout = timeout
        self._transport = transport
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
            return None
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
