"""HTTP calls to courier networks: timeouts, and every failure mapped to a courier problem."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from doorstep.integrations.adapters.guarded_http import AddressRefused, GuardedTransport
from doorstep.integrations.couriers.ports import CourierRejected, CourierUnavailable
from doorstep.integrations.outbound.ssrf import Network

TIMEOUT_SECONDS = 10.0


class ProviderHttp:
    """One pooled httpx client for every courier account of the process; created on first use.

    An account's base URL is the tenant's to set: requests go through `GuardedTransport`."""

    def __init__(self, *, timeout: float = TIMEOUT_SECONDS, allowed: Sequence[Network] = ()) -> None:
        self._timeout = timeout
        self._allowed = tuple(allowed)
        self._client: httpx.AsyncClient | None = None

    async def call(
        self,
        method: str,
        url: str,
        *,
        network: str,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, transport=GuardedTransport(allowed=self._allowed)
            )
        try:
            response = await self._client.request(
                method, url, headers=dict(headers or {}), json=json, data=dict(form) if form else None
            )
        except AddressRefused as error:
            raise CourierRejected(f"{network} is not called at {url}: {error}") from None
        except httpx.TimeoutException:
            raise CourierUnavailable(f"{network} did not answer {method} {url} in time") from None
        except httpx.HTTPError as error:
            raise CourierUnavailable(f"{network} could not be reached ({type(error).__name__})") from None
        if response.status_code >= 500:
            raise CourierUnavailable(
                f"{network} answered {response.status_code}: {_message(response)}",
                provider_status=response.status_code,
            )
        if response.status_code >= 400:
            raise CourierRejected(
                f"{network} refused the request ({response.status_code}): {_message(response)}",
                provider_status=response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            raise CourierUnavailable(f"{network} answered with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise CourierUnavailable(f"{network} answered with JSON that is not an object")
        return body

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _message(response: httpx.Response) -> str:
    """The network's own words for the error, as both document them (`message`, else `code`)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "code", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])[:300]
    return response.text[:200]
