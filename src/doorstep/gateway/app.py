"""A streaming reverse proxy: no domain logic, bodies are never buffered whole."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager

import aiohttp
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from yarl import URL

from doorstep.kernel import context
from doorstep.kernel.http import create_app, problem
from doorstep.kernel.settings import SERVICES, Settings

# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Answers up to this size (and of known length) are read whole; larger ones stream.
_WHOLE_BODY_LIMIT = 256 * 1024
# Which service owns each `/v1/<area>`.
AREAS = {"identity": "identity", "orders": "orders", "integrations": "integrations"}


class Upstreams:
    """Round-robin over each service's instances (`DOORSTEP_ORDERS_URL=http://a:8102,http://b:8102`)."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self._cycles: dict[str, Iterator[str]] = {
            service: itertools.cycle([url.strip().rstrip("/") for url in value.split(",") if url.strip()])
            for service, value in urls.items()
            if value
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


def build_gateway(settings: Settings) -> FastAPI:
    upstreams = Upstreams({service: settings.service_url(service) or "" for service in SERVICES})
    client = UpstreamClient()
    router = APIRouter()

    @router.api_route(
        "/v1/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    async def forward(path: str, request: Request) -> Response:
        area = path.split("/", 1)[0]
        service = AREAS.get(area)
        base = upstreams.next(service) if service else None
        if base is None:
            return problem(404, title="Not Found", detail=f"no service serves /v1/{area}")
        query = request.url.query
        url = URL(f"{base}{request.url.path}" + (f"?{query}" if query else ""), encoded=True)
        has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        try:
            upstream = await client.session().request(
                request.method,
                url,
                headers=_forwarded_headers(request),
                data=request.stream() if has_body else None,
                allow_redirects=False,
            )
        except ClientDisconnect:
            # The caller hung up while its body was streaming; nobody is left to answer.
            return Response(status_code=400)
        except TimeoutError:
            return problem(
                504,
                title="Gateway Timeout",
                detail=f"{service} did not answer in time",
                slug="upstream-timeout",
            )
        except aiohttp.ClientError:
            return problem(
                502, title="Bad Gateway", detail=f"{service} is unreachable", slug="upstream-unavailable"
            )
        headers = {
            key: value
            for key, value in upstream.headers.items()
            if key.lower() not in HOP_BY_HOP and key.lower() != "x-request-id"
        }
        if upstream.content_length is not None and upstream.content_length <= _WHOLE_BODY_LIMIT:
            # A small answer of known length is cheaper read whole than streamed piece by piece.
            try:
                body = await upstream.read()
            finally:
                upstream.release()
            return Response(body, status_code=upstream.status, headers=headers)
        return StreamingResponse(
            upstream.content.iter_any(),
            status_code=upstream.status,
            headers=headers,
            background=BackgroundTask(upstream.release),
        )

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
        try:
            yield
        finally:
            await client.close()

    return create_app(
        service="gateway", routers=[router], lifespan=lifespan, readiness={"upstreams": upstreams_ready}
    )


def _forwarded_headers(request: Request) -> list[tuple[str, str]]:
    headers = [(key, value) for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP]
    headers = [(key, value) for key, value in headers if key.lower() != "x-request-id"]
    request_id = context.correlation_id.get()
    if request_id:
        headers.append(("x-request-id", request_id))
    client_host = request.client.host if request.client else None
    if client_host:
        prior = request.headers.get("x-forwarded-for")
        headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
        headers.append(("x-forwarded-for", f"{prior}, {client_host}" if prior else client_host))
    headers.append(("x-forwarded-proto", request.url.scheme))
    return headers
