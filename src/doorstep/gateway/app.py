"""The distributed shape's entry point: the edge in front of a streaming reverse proxy.

`/v1/<area>/...` goes to the service that owns the area, `/.well-known/jwks.json` to identity, each to
its instances in turn. The proxy is pure ASGI and has no domain logic; bodies stream both ways and are
never buffered whole (small answers of known length are read in one go, which is cheaper).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Final

import aiohttp
import httpx
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from yarl import URL

from doorstep.gateway.edge import EdgeConfig, install_edge
from doorstep.gateway.revocations import RecheckedRevocations
from doorstep.infra.identity_client import JWKS_PATH, make_authenticator
from doorstep.infra.shared import Shared, make_shared
from doorstep.kernel import context
from doorstep.kernel.http import create_app, problem
from doorstep.kernel.settings import SERVICES, Settings

# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded. The length and host
# are the outgoing connection's own; the request id and the forwarding chain are set again here.
_REQUEST_DROPPED: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
    }
)
# An answer keeps its length (the body passes unchanged: nothing is decompressed); the request id is
# the gateway's own, added by its request-context middleware.
_RESPONSE_DROPPED: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"x-request-id",
    }
)
# Answers up to this size (and of known length) are read whole; larger ones stream.
_WHOLE_BODY_LIMIT: Final = 256 * 1024
# Which service owns each `/v1/<area>`.
AREAS: Final = {
    "identity": "identity",
    "orders": "orders",
    "integrations": "integrations",
    "tickets": "integrations",
    "deliveries": "integrations",
    "dispatch": "dispatch",
}


class Upstreams:
    """Round-robin over each service's instances (`DOORSTEP_ORDERS_URL=http://a:8102,http://b:8102`)."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self.instances: dict[str, list[str]] = {
            service: [url.strip().rstrip("/") for url in value.split(",") if url.strip()]
            for service, value in urls.items()
            if value
        }
        self._cycles: dict[str, Iterator[str]] = {
            service: itertools.cycle(urls) for service, urls in self.instances.items() if urls
        }

    def next(self, service: str) -> str | None:
        cycle = self._cycles.get(service)
        return next(cycle) if cycle else None


class UpstreamClient:
    """aiohttp rather than httpx here: as a proxy on the same machine it carried five times the requests.

    The session is made on first use, inside the running loop, and closed with the gateway.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200),
                timeout=aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=30.0),
                auto_decompress=False,
                # Forward what the client sent; add nothing of aiohttp's own.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class _ClientGone(Exception):
    """The caller hung up while its body was still streaming."""


class Proxy:
    """ASGI middleware: API paths go to their service; anything else to `app` (the gateway's own routes)."""

    def __init__(self, app: ASGIApp, *, upstreams: Upstreams, client: UpstreamClient) -> None:
        self.app = app
        self.upstreams = upstreams
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path.startswith("/v1/") or path == JWKS_PATH):
            await self.app(scope, receive, send)
            return
        service = "identity" if path == JWKS_PATH else AREAS.get(path[4:].partition("/")[0])
        base = self.upstreams.next(service) if service else None
        if base is None:
            area = path[4:].partition("/")[0]
            await problem(404, title="Not Found", detail=f"no service serves /v1/{area}", instance=path)(
                scope, receive, send
            )
            return
        await self._forward(scope, receive, send, service or "", base)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, service: str, base: str) -> None:
        raw_path: bytes = (scope.get("raw_path") or scope["path"].encode()).partition(b"?")[0]
        query: bytes = scope.get("query_string", b"")
        target = base + raw_path.decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        headers, has_body = _forwarded_headers(scope)
        data: bytes | AsyncIterator[bytes] | None = None
        if has_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody is left to answer
            first: bytes = message.get("body", b"")
            data = _body(first, receive) if message.get("more_body", False) else first
        try:
            upstream = await self.client.session().request(
                scope["method"], URL(target, encoded=True), headers=headers, data=data, allow_redirects=False
            )
        except _ClientGone:
            return
        except TimeoutError:
            await problem(
                504,
                title="Gateway Timeout",
                detail=f"{service} did not answer in time",
                slug="upstream-timeout",
            )(scope, receive, send)
            return
        except aiohttp.ClientError:
            await problem(
                502, title="Bad Gateway", detail=f"{service} is unreachable", slug="upstream-unavailable"
            )(scope, receive, send)
            return
        try:
            answer = [
                (name.lower(), value)
                for name, value in upstream.raw_headers
                if name.lower() not in _RESPONSE_DROPPED
            ]
            length = upstream.content_length
            if length is not None and length <= _WHOLE_BODY_LIMIT:
                # A small answer of known length is cheaper read whole than streamed piece by piece.
                body = await upstream.read()
                await send({"type": "http.response.start", "status": upstream.status, "headers": answer})
                await send({"type": "http.response.body", "body": body})
                return
            await send({"type": "http.response.start", "status": upstream.status, "headers": answer})
            async for chunk in upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            upstream.release()


async def _body(first: bytes, receive: Receive) -> AsyncIterator[bytes]:
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _forwarded_headers(scope: Scope) -> tuple[list[tuple[str, str]], bool]:
    """The client's headers minus hop-by-hop ones, plus the request id and who forwarded it; has a body?"""
    headers: list[tuple[str, str]] = []
    prior: list[str] = []
    has_body = False
    for name, value in scope["headers"]:
        if name in _REQUEST_DROPPED:
            if name == b"content-length":
                has_body = value != b"0"
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"x-forwarded-for":
                prior.append(value.decode("latin-1"))
            continue
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    request_id = context.correlation_id.get()
    if request_id:
        headers.append(("x-request-id", request_id))
    client = scope.get("client")
    if client:
        headers.append(("x-forwarded-for", ", ".join([*prior, client[0]])))
    headers.append(("x-forwarded-proto", scope.get("scheme", "http")))
    return headers, has_body


def build_gateway(settings: Settings) -> FastAPI:
    """The edge (authentication, limits, CORS) in front of the proxy; `/healthz`, `/readyz`, `/metrics`."""
    if not settings.identity_url:
        raise RuntimeError("set DOORSTEP_IDENTITY_URL: the gateway verifies credentials with identity")
    upstreams = Upstreams({service: settings.service_url(service) or "" for service in SERVICES})
    client = UpstreamClient()
    shared = make_shared(settings)
    # With Redis, the edge spends permits leased a few at a time instead of asking on every request.
    limiter = shared.edge_limiter()
    edge = EdgeConfig.from_settings(settings, limiter)

    async def upstreams_ready() -> bool:
        for service in SERVICES:
            base = upstreams.next(service)
            if base is None:
                return False
            try:
                async with client.session().get(
                    f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=2.0)
                ) as response:
                    if response.status != 200:
                        return False
            except (aiohttp.ClientError, TimeoutError):
                return False
        return True

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Credentials are checked with the first identity instance (its answers are cached; a client that
        # takes turns over several is a follow-up, as for the services' own identity client).
        identity = httpx.AsyncClient(base_url=upstreams.instances["identity"][0], timeout=5.0)
        # The services behind re-check revocations on every request; the edge may reuse a recent answer.
        edge_view = Shared(limiter=limiter, revocations=RecheckedRevocations(shared.revocations))
        authenticator = make_authenticator(settings, identity, edge_view)
        edge.authenticator = authenticator
        try:
            yield
        finally:
            edge.authenticator = None
            await authenticator.close()
            await client.close()
            await shared.close()

    readiness = {"upstreams": upstreams_ready}
    if shared.redis is not None:
        readiness["redis"] = shared.ping
    app = create_app(service="gateway", routers=[], lifespan=lifespan, readiness=readiness)
    install_edge(app, edge, inner=[Middleware(Proxy, upstreams=upstreams, client=client)])
    app.state.edge = edge
    return app
