"""The HTTP app factory every service (and the all-in-one process) is built with."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from http import HTTPStatus
from typing import Any, Final

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doorstep import __version__
from doorstep.kernel import context
from doorstep.kernel.asyncapi import asyncapi_document
from doorstep.kernel.errors import PROBLEM_BASE, DoorstepError
from doorstep.kernel.ids import new_id

log = structlog.get_logger()

PROBLEM_JSON = "application/problem+json"
ReadinessCheck = Callable[[], Awaitable[bool]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

REQUESTS = Counter(
    "doorstep_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "doorstep_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_USER_AGENT = 300
_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
}


def problem(
    status: int, *, title: str, detail: str | None = None, slug: str | None = None, **extensions: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or _STATUS_SLUGS.get(status, "error")),
        "title": title,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    request_id = context.correlation_id.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def create_app(
    *,
    service: str,
    routers: Sequence[APIRouter],
    lifespan: Lifespan | None = None,
    readiness: Mapping[str, ReadinessCheck] | None = None,
    description: str = "",
) -> FastAPI:
    app = FastAPI(
        title=f"Doorstep {service}",
        version=__version__,
        description=description,
        lifespan=lifespan,
        responses={422: {"description": "Validation error (RFC 9457 problem details)"}},
    )
    app.state.readiness = dict(readiness or {})
    _install_problem_handlers(app)
    _install_operational_routes(app)
    for router in routers:
        app.include_router(router)
    app.add_middleware(RequestContextMiddleware, service=service)
    return app


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DoorstepError)
    async def _domain(request: Request, error: DoorstepError) -> Response:
        response = problem(
            error.status,
            title=error.title,
            detail=error.detail,
            slug=error.slug,
            instance=request.url.path,
            **error.extensions,
        )
        response.headers.update(error.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> Response:
        errors = [_field_error(item) for item in error.errors()]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
        return problem(
            422,
            title="The request is not valid",
            detail=detail,
            slug="validation-error",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        detail = error.detail if isinstance(error.detail, str) else None
        response = problem(
            error.status_code, title=_title(error.status_code), detail=detail, instance=request.url.path
        )
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        return unexpected_error(error, request.url.path)


def unexpected_error(error: Exception, path: str) -> Response:
    """The answer to an exception nothing else handled: logged, and a 500 problem, unless the database
    could not be reached, which is a 503 the client may retry (nothing was stored)."""
    if _database_unreachable(error):
        log.warning("database_unreachable", path=loggable_path(path), error=repr(error))
        response = problem(
            503,
            title="Service unavailable",
            detail="the database cannot be reached; try again shortly",
            slug="service-unavailable",
        )
        response.headers["Retry-After"] = "5"
        return response
    log.exception("unhandled_error", path=loggable_path(path))
    return problem(500, title="Internal error", detail="the error was logged", slug="internal-error")


def _database_unreachable(error: BaseException) -> bool:
    """The database refused or dropped the connection (not a bad statement): a 503, not a 500."""
    if isinstance(error, DBAPIError):
        return bool(error.connection_invalidated)
    # asyncpg raises the socket's own error when it cannot connect at all.
    return isinstance(error, ConnectionError | TimeoutError) or (
        isinstance(error, OSError) and error.errno is not None
    )


# Paths that carry a secret: a partner webhook's last segment is its connection's token.
_SECRET_IN_PATH: Final = re.compile(r"^(/v1/integrations/webhooks/[^/]+/)[^/]+")


def loggable_path(path: str) -> str:
    """`path` with any secret in it masked, for logs."""
    return _SECRET_IN_PATH.sub(r"\1***", path)


def _field_error(item: Mapping[str, Any]) -> dict[str, Any]:
    location = [str(part) for part in item.get("loc", ())]
    where = location[0] if location and location[0] in {"body", "query", "path", "header"} else None
    path = location[1:] if where else location
    if item.get("type") == "json_invalid":  # loc then ends in a character offset, not a field
        cause = (item.get("ctx") or {}).get("error")
        message = f"the body is not valid JSON: {cause}" if cause else "the body is not valid JSON"
        return {"field": None, "in": where, "message": message}
    return {"field": ".".join(path) or None, "in": where, "message": str(item.get("msg", "invalid"))}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _install_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The database and the broker answer")
    async def readyz() -> Response:
        checks = {name: await check() for name, check in app.state.readiness.items()}
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/asyncapi.json", tags=["operations"], summary="AsyncAPI 3.0 document of the published events")
    async def asyncapi() -> dict[str, Any]:
        return asyncapi_document()

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestContextMiddleware:
    """Request ids in and out, a log line and metrics per request. Pure ASGI: no body buffering."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else new_id()
        token = context.correlation_id.set(request_id)
        origin = context.origin.set(request_origin(scope))
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
                # PostgreSQL text cannot hold U+0000; no id, filter or token of ours contains it.
                await problem(
                    422,
                    title="The request is not valid",
                    detail="NUL characters are not accepted",
                    slug="validation-error",
                )(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as error:
            if response_started:
                log.exception("unhandled_error", path=loggable_path(scope.get("path", "")))
                raise
            await unexpected_error(error, scope.get("path", ""))(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "GET")
            REQUESTS.labels(self.service, method, route, str(status)).inc()
            LATENCY.labels(self.service, method, route).observe(elapsed)
            log.debug("request", method=method, route=route, status=status, ms=round(elapsed * 1000, 2))
            structlog.contextvars.reset_contextvars(**bound)
            context.origin.reset(origin)
            context.correlation_id.reset(token)


def request_origin(scope: Scope) -> context.Origin:
    """The client's address and user agent, as the audit trail records them.

    The address is the last `X-Forwarded-For` entry when there is one: the gateway appends the address
    it saw, so that entry is the only one no client can choose. Without the header (a direct call) it
    is the peer's address. Anything that is not an IP address counts as absent.
    """
    forwarded = [value for key, value in scope.get("headers", []) if key == b"x-forwarded-for"]
    entries = b",".join(forwarded).decode("latin-1").split(",") if forwarded else []
    ip = _ip(entries[-1]) if entries else None
    if ip is None:
        client = scope.get("client")
        ip = _ip(client[0]) if client else None
    agent = _header(scope, b"user-agent")
    if agent is not None:
        agent = agent.replace("\x00", "")[:MAX_USER_AGENT] or None
    return context.Origin(ip=ip, user_agent=agent)


def _ip(value: str) -> str | None:
    try:
        address = str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None
    return address if len(address) <= 45 else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None
