"""Sends one signed delivery over HTTP to the address that was vetted for it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from doorstep.integrations.outbound.domain import Outcome
from doorstep.integrations.outbound.signing import signed_headers
from doorstep.integrations.outbound.ssrf import Network, Resolver, UrlRefused, vet

SNIPPET_BYTES = 1024
USER_AGENT = "Doorstep-Webhooks/1"


class WebhookSender:
    """One HTTP client for every delivery: redirects are not followed (a 3xx is a failure)."""

    def __init__(
        self, *, timeout: float, resolver: Resolver, allowed: Sequence[Network], max_connections: int = 200
    ) -> None:
        self.resolver = resolver
        self.allowed = list(allowed)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=50),
            trust_env=False,  # a proxy from the environment would connect to the URL's host, unvetted
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(
        self, *, url: str, message_id: str, body: bytes, secrets: Sequence[str], now: datetime
    ) -> Outcome:
        started = time.perf_counter()
        try:
            target = await vet(url, resolver=self.resolver, allowed=self.allowed)
        except UrlRefused as refused:
            return Outcome(status=None, latency_ms=0, error=f"refused: {refused}")
        assert target is not None
        parts = urlsplit(url)
        address = f"[{target.address}]" if ":" in target.address else target.address
        netloc = address if parts.port is None else f"{address}:{parts.port}"
        headers = {
            **signed_headers(secrets, message_id=message_id, at=now, body=body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": parts.netloc.rsplit("@", 1)[-1],
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            response = await self._client.post(
                urlunsplit(parts._replace(netloc=netloc)),
                content=body,
                headers=headers,
                extensions=extensions,
            )
        except httpx.TimeoutException:
            return Outcome(status=None, latency_ms=_since(started), error="timed out")
        except httpx.HTTPError as error:
            return Outcome(
                status=None, latency_ms=_since(started), error=f"{type(error).__name__}: {error}"[:500]
            )
        snippet = response.content[:SNIPPET_BYTES].decode("utf-8", errors="replace")
        return Outcome(
            status=response.status_code,
            latency_ms=_since(started),
            snippet=snippet,
            retry_after=retry_after(response.headers.get("retry-after"), now),
        )


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
