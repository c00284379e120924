"""A streaming reverse proxy: no domain logic, bodies are never buffered whole."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

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


def build_gateway(settings: Settings) -> FastAPI:
    upstreams = Upstreams({service: settings.service_url(service) or "" for service in SERVICES})
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=5.0),
        # httpcore checks every pooled connection on each request: a small pool is a fast pool.
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=32),
    )
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
        upstream_request = client.build_request(
            request.method,
            f"{base}{request.url.path}",
            params=request.url.query,
            headers=_forwarded_headers(request),
            content=request.stream(),
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except ClientDisconnect:
            # The caller hung up while its body was streaming; nobody is left to answer.
            return Response(status_code=400)
        except httpx.TimeoutException:
            return problem(
                504,
                title="Gateway Timeout",
                detail=f"{service} did not answer in time",
                slug="upstream-timeout",
            )
        except httpx.HTTPError:
            return problem(
                502, title="Bad Gateway", detail=f"{service} is unreachable", slug="upstream-unavailable"
            )
        headers = {
            key: value
            for key, value in upstream.headers.items()
            if key.lower() not in HOP_BY_HOP and key.lower() != "x-request-id"
        }
        if "content-length" in upstream.headers and "transfer-encoding" not in upstream.headers:
            headers["content-length"] = upstream.headers["content-length"]
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=headers,
            background=BackgroundTask(upstream.aclose),
        )

    async def upstreams_ready() -> bool:
        for service in SERVICES:
            base = upstreams.next(service)
            if base is None:
                return False
            try:
                response = await client.get(f"{base}/healthz", timeout=2.0)
            except httpx.HTTPError:
                return False
            if response.status_code != 200:
                return False
        return True

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

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
