"""The edge: what every request from outside passes before it reaches a service, in both shapes.

One pure ASGI middleware, in front of the aiohttp proxy (distributed) or of the services' own app
(all-in-one), right inside the request-context middleware that gives every answer its request id:

- CORS by an allow-list (`DOORSTEP_CORS_ORIGINS`, `["*"]` for any origin: credentials travel in the
  `Authorization` header, never in cookies); preflights are answered here.
- Authentication of `/v1/...` and `/.well-known/...`: a bearer JWT or API key, verified once; the
  `Principal` goes into the ASGI scope (`EDGE_PRINCIPAL`), where in-process services find it instead
  of verifying again. Services reached any other way verify on their own (`Requires`).
- The verified identity forwarded as `x-doorstep-*` headers for logs and tracing, after every
  `x-doorstep-*` header the client sent is dropped. Nothing trusts them: they only say what was seen.
- Rate limits (GCRA, shared through Redis across gateway instances): `key:<id>` or `user:<id>` for
  authenticated callers, `hook:<platform>:<token hash>` for partner webhooks, `ip:<address>` for the
  rest; refused with a 429 problem, and every answer carries the `RateLimit-*` fields of the quota that
  decided it.

No FastAPI routing, no body buffering: the decisions are a set lookup, the authenticator's cache and
one limiter call (two for a refused webhook, see below).

Partner webhooks (`POST /v1/integrations/webhooks/{platform}/{token}`) are limited per connection, not
per address (`DOORSTEP_RATE_LIMIT_WEBHOOK_*`): a busy marketplace sends far more than one address's
quota, and partners behind one egress address must not starve each other.
- The key is `hook:<platform>:<first 32 hex digits of SHA-256(token)>`. The token lets anyone deliver
  orders, so it is never a Redis key and never logged. A platform segment that is no plain name
  (letters, digits, `-`, `_`, at most 50) is no partner's: such a call is limited per address, so no
  text a client chooses, of any length, becomes a key.
- Every URL a client invents gets an allowance of its own, so guessing tokens is paid for after the
  answer: a 401, 403 or 404 from the service (wrong signature, unknown connection) counts one hit on
  `ip:<address>` with the address quota. Deliveries the service accepts (or refuses for any other
  reason) never touch that bucket.
- The answer has gone when that hit is refused, so the edge remembers, in this process, that the
  address is blocked for webhooks until the hit's `Retry-After`, and until then answers the address's
  webhook calls with a 429 (with the address quota's `RateLimit-*` fields) without forwarding them. The
  memory is bounded like `MemoryRateLimiter`'s: least recently blocked first, expired entries dropped
  from the front, the oldest dropped beyond `MAX_BLOCKED_ADDRESSES`.
- What this costs: calls already in flight when a block starts still reach the service, so a flood of
  bogus tokens reaches it at about twice the address's pace plus its concurrency, not unbounded; each
  gateway instance learns a block on its own, from the address bucket they share; and a valid partner
  behind an address that sends bogus tokens is refused with it while the block lasts (at most one
  interval of the address quota per refused hit).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple, cast

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doorstep.kernel.auth import EDGE_PRINCIPAL, MAX_CREDENTIAL_LENGTH, Authenticator, Principal
from doorstep.kernel.errors import DoorstepError
from doorstep.kernel.http import RequestContextMiddleware, problem
from doorstep.kernel.limits import Decision, Quota, RateLimiter
from doorstep.kernel.settings import Settings

# The endpoints anyone may call, without a credential: the ONE list. A test compares it with every
# route the services declare `PUBLIC`, so the two cannot drift apart.
PUBLIC_ROUTES: Final = frozenset(
    {
        ("POST", "/v1/identity/signup"),
        ("POST", "/v1/identity/login"),
        ("POST", "/v1/identity/otp"),
        ("POST", "/v1/identity/token/refresh"),
        ("POST", "/v1/identity/invitations/accept"),
        ("POST", "/v1/integrations/webhooks/{platform}/{token}"),
        ("POST", "/v1/integrations/courier-webhooks/{provider}/{token}"),
        ("GET", "/v1/dispatch/files/{tenant_id}/{name}"),
        ("GET", "/.well-known/jwks.json"),
    }
)
# Public for the services (they call it with a credential to resolve), never reachable from outside:
# answered 404, as if it did not exist, whatever the method.
INTERNAL_ROUTES: Final = frozenset({("POST", "/v1/identity/introspect")})
# Marks a call one part of this process makes to another (the in-process identity client): it did not
# come from outside, so the edge lets it through untouched. Only an ASGI scope can carry it.
INTERNAL_CALL: Final = "doorstep.internal"
# Paths the edge guards; the rest (`/healthz`, `/readyz`, `/metrics`, `/docs`, `/openapi.json`) is
# about the process, not the API.
GUARDED_PREFIXES: Final = ("/v1/", "/.well-known/")
FORWARDED_IDENTITY_PREFIX: Final = b"x-doorstep-"
CORS_MAX_AGE_SECONDS: Final = 600
CORS_METHODS: Final = "GET, POST, PUT, PATCH, DELETE"
CORS_EXPOSED: Final = (
    "x-request-id, location, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, "
    "ratelimit-policy"
)
# Partner webhooks: limited per connection (see the module's docstring).
WEBHOOK_PREFIX: Final = "/v1/integrations/webhooks/"
# Courier networks' status webhooks are limited the same way, per courier account.
WEBHOOK_PREFIXES: Final = (WEBHOOK_PREFIX, "/v1/integrations/courier-webhooks/")
WEBHOOK_TOKEN_HASH_LENGTH: Final = 32
# Answers of the service that say the URL or its signature was wrong: they count against the address.
WEBHOOK_REFUSALS: Final = frozenset({401, 403, 404})
MAX_BLOCKED_ADDRESSES: Final = 100_000
_PLATFORM_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,50}")
_UNKNOWN_CREDENTIAL = "the credential is unknown, revoked or expired"
_MISSING_CREDENTIAL = "send `Authorization: Bearer <access token or API key>`"


class RouteSet:
    """`(method, path)` membership for route templates (`{name}` is one path segment, as in Starlette)."""

    def __init__(self, routes: Iterable[tuple[str, str]]) -> None:
        self._exact: frozenset[tuple[str, str]] = frozenset(
            (method, path) for method, path in routes if "{" not in path
        )
        self._templates: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
            (method, path[: path.index("{")], re.compile(_template_regex(path)))
            for method, path in routes
            if "{" in path
        )

    def __contains__(self, route: object) -> bool:
        if route in self._exact:
            return True
        if not isinstance(route, tuple):
            return False
        method, path = route
        return any(
            method == wanted and path.startswith(prefix) and pattern.match(path) is not None
            for wanted, prefix, pattern in self._templates
        )


def _template_regex(template: str) -> str:
    parts = re.split(r"\{[^}]+\}", template)
    return "^" + "[^/]+".join(re.escape(part) for part in parts) + "$"


PUBLIC: Final = RouteSet(PUBLIC_ROUTES)
INTERNAL_PATHS: Final = frozenset(path for _method, path in INTERNAL_ROUTES)

log = structlog.get_logger()


@dataclass
class EdgeConfig:
    """What the edge decides with. `authenticator` is set once the app has started (it needs a client)."""

    limiter: RateLimiter
    caller_quota: Quota  # per API key and per user
    ip_quota: Quota  # per client address, for calls without a credential
    webhook_quota: Quota  # per partner connection (webhook URL)
    cors_origins: frozenset[str] = frozenset()
    authenticator: Authenticator | None = None
    clock: Callable[[], float] = time.monotonic  # for the addresses blocked for webhooks
    max_blocked_addresses: int = MAX_BLOCKED_ADDRESSES

    @classmethod
    def from_settings(cls, settings: Settings, limiter: RateLimiter) -> EdgeConfig:
        return cls(
            limiter=limiter,
            caller_quota=Quota(settings.rate_limit_per_minute, 60, settings.rate_limit_burst),
            ip_quota=Quota(settings.rate_limit_ip_per_minute, 60, settings.rate_limit_ip_burst),
            webhook_quota=Quota(
                settings.rate_limit_webhook_per_minute, 60, settings.rate_limit_webhook_burst
            ),
            cors_origins=frozenset(origin.rstrip("/") for origin in settings.cors_origins),
        )


def install_edge(app: Starlette, config: EdgeConfig, *, inner: Iterable[Middleware] = ()) -> None:
    """Put the edge (and `inner` after it) right inside the app's request-context middleware.

    There every answer the edge gives already has its request id, and the in-process app behind it is
    reached without another routing step.
    """
    stack = app.user_middleware
    position = next(
        (index for index, entry in enumerate(stack) if cast(object, entry.cls) is RequestContextMiddleware),
        -1,
    )
    stack[position + 1 : position + 1] = [Middleware(Edge, config=config), *inner]


def internal(app: ASGIApp) -> ASGIApp:
    """`app` for calls from inside this process, which the edge lets through (see `INTERNAL_CALL`)."""

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, INTERNAL_CALL: True}, receive, send)

    return call


class Edge:
    """The edge as ASGI middleware; see the module's docstring."""

    def __init__(self, app: ASGIApp, *, config: EdgeConfig) -> None:
        self.app = app
        self.config = config
        # Addresses blocked for webhooks: least recently blocked first (see the module's docstring).
        self._blocked: OrderedDict[str, _Block] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(INTERNAL_CALL):
            outside = scope["type"] == "websocket" and not scope.get(INTERNAL_CALL)
            if outside and scope["path"].startswith(GUARDED_PREFIXES):
                # Nothing serves websockets yet; none may pass the edge unverified when one does.
                await receive()
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        config = self.config
        method: str = scope["method"]
        path: str = scope["path"]
        origin: bytes | None = None
        authorization: bytes | None = None
        preflight = False
        forged = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = True
            elif name.startswith(FORWARDED_IDENTITY_PREFIX):
                forged = True

        extra: list[tuple[bytes, bytes]] = []
        if origin is not None and config.cors_origins:
            allowed = "*" in config.cors_origins or origin.decode("latin-1") in config.cors_origins
            if preflight and method == "OPTIONS":
                await self._preflight(scope, receive, send, origin if allowed else None)
                return
            extra.append((b"vary", b"Origin"))
            if allowed:
                extra += [
                    (b"access-control-allow-origin", origin),
                    (b"access-control-expose-headers", CORS_EXPOSED.encode()),
                ]

        if not path.startswith(GUARDED_PREFIXES):
            await self.app(scope, receive, _adding(send, extra) if extra else send)
            return
        if path.rstrip("/") in INTERNAL_PATHS:
            refused = problem(404, title="Not Found", detail="Not Found", instance=path)
            await _answer(refused, scope, receive, send, extra)
            return

        principal: Principal | None = None
        webhook = method == "POST" and path.startswith(WEBHOOK_PREFIXES) and (method, path) in PUBLIC
        if webhook:
            blocked = self._blocked_for_webhooks(_address(scope))
            if blocked is not None:
                extra += self._limit_headers(blocked, config.ip_quota)
                await _answer(_too_many(blocked, path), scope, receive, send, extra)
                return
        try:
            if webhook:
                connection = _webhook_key(path)
                quota = config.webhook_quota if connection is not None else config.ip_quota
                decision = await config.limiter.hit(connection or _ip_key(scope), quota)
            elif (method, path) in PUBLIC:
                quota = config.ip_quota
                decision = await config.limiter.hit(_ip_key(scope), quota)
            else:
                quota = config.caller_quota
                credential = _bearer(authorization)
                principal, verdict = await self._verify(credential) if credential else (None, None)
                if principal is None or verdict is None:
                    await self._refuse_credential(scope, receive, send, extra, missing=authorization is None)
                    return
                decision = verdict
        except DoorstepError as error:
            await _answer(_problem_of(error, path), scope, receive, send, extra)
            return
        extra += self._limit_headers(decision, quota)
        if not decision.allowed:
            await _answer(_too_many(decision, path), scope, receive, send, extra)
            return

        if forged or principal is not None:
            headers = [item for item in scope["headers"] if not item[0].startswith(FORWARDED_IDENTITY_PREFIX)]
            if principal is not None:
                headers += [
                    (b"x-doorstep-tenant", principal.tenant_id.encode("latin-1")),
                    (b"x-doorstep-subject", principal.subject.encode("latin-1")),
                    (b"x-doorstep-kind", principal.kind.encode("latin-1")),
                ]
            scope["headers"] = headers
        scope[EDGE_PRINCIPAL] = principal
        if not webhook:
            await self.app(scope, receive, _adding(send, extra))
            return
        status: list[int] = []
        await self.app(scope, receive, _adding(send, extra, status=status))
        if status and status[0] in WEBHOOK_REFUSALS:
            await self._count_webhook_refusal(scope)

    def _blocked_for_webhooks(self, address: str) -> Decision | None:
        """The refusal for an address blocked for webhooks, or None when it is not (or no longer)."""
        block = self._blocked.get(address)
        if block is None:
            return None
        now = self.config.clock()
        if block.retry_at <= now:
            del self._blocked[address]
            return None
        return Decision(
            allowed=False,
            limit=self.config.ip_quota.capacity,
            remaining=0,
            reset_seconds=block.reset_at - now,
            retry_after_seconds=block.retry_at - now,
        )

    async def _count_webhook_refusal(self, scope: Scope) -> None:
        """A webhook the service refused counts against the address; past its allowance it is blocked."""
        address = _address(scope)
        try:
            decision = await self.config.limiter.hit(_ip_key(scope), self.config.ip_quota)
        except DoorstepError as error:
            # The answer has gone: nothing to refuse, and the next call asks the limiter again.
            log.warning("webhook_refusal_not_counted", address=address, error=error.detail)
            return
        if decision.allowed:
            return
        now = self.config.clock()
        self._blocked[address] = _Block(
            retry_at=now + decision.retry_after_seconds, reset_at=now + decision.reset_seconds
        )
        self._blocked.move_to_end(address)
        while self._blocked:
            oldest, block = next(iter(self._blocked.items()))
            if block.retry_at > now and len(self._blocked) <= self.config.max_blocked_addresses:
                return
            del self._blocked[oldest]

    async def _verify(self, credential: str) -> tuple[Principal | None, Decision | None]:
        """The caller and its rate-limit decision, or `(None, None)` for a credential that fails."""
        authenticator = self.config.authenticator
        if authenticator is None:
            raise _NotStarted("the edge has no authenticator yet: the app has not started")
        principal = await authenticator.authenticate(credential)
        if principal is None:
            return None, None
        return principal, await self.config.limiter.hit(_caller_key(principal), self.config.caller_quota)

    async def _refuse_credential(
        self, scope: Scope, receive: Receive, send: Send, extra: list[tuple[bytes, bytes]], *, missing: bool
    ) -> None:
        """401; a wrong credential also counts against the caller's address, so guessing keys is slow."""
        path: str = scope["path"]
        if not missing:
            quota = self.config.ip_quota
            try:
                decision = await self.config.limiter.hit(_ip_key(scope), quota)
            except DoorstepError as error:
                await _answer(_problem_of(error, path), scope, receive, send, extra)
                return
            if not decision.allowed:
                extra = [*extra, *self._limit_headers(decision, quota)]
                await _answer(_too_many(decision, path), scope, receive, send, extra)
                return
        detail = _MISSING_CREDENTIAL if missing else _UNKNOWN_CREDENTIAL
        response = problem(
            401, title="Authentication required", detail=detail, slug="unauthenticated", instance=path
        )
        await _answer(response, scope, receive, send, extra)

    def _limit_headers(self, decision: Decision, quota: Quota) -> list[tuple[bytes, bytes]]:
        return [(name.lower().encode(), value.encode()) for name, value in decision.headers(quota).items()]

    async def _preflight(self, scope: Scope, receive: Receive, send: Send, origin: bytes | None) -> None:
        if origin is None:
            response = problem(
                403, title="Forbidden", detail="this origin may not call the API", instance=scope["path"]
            )
            await response(scope, receive, send)
            return
        requested = b""
        for name, value in scope["headers"]:
            if name == b"access-control-request-headers":
                requested = value
        headers = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", CORS_METHODS.encode()),
            (b"access-control-max-age", str(CORS_MAX_AGE_SECONDS).encode()),
            (b"vary", b"Origin"),
        ]
        if requested:
            # Credentials travel in `Authorization`, never in cookies: echoing the request is safe.
            headers.append((b"access-control-allow-headers", requested))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class _Block(NamedTuple):
    retry_at: float  # on the edge's clock: when the address's next webhook call is forwarded again
    reset_at: float  # when the address is back to its full allowance (for `RateLimit-Reset`)


class _NotStarted(DoorstepError):
    slug = "service-unavailable"
    title = "Service unavailable"
    status = 503


def _bearer(authorization: bytes | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, credential = authorization.decode("latin-1").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or len(credential) > MAX_CREDENTIAL_LENGTH:
        return None
    return credential


def _caller_key(principal: Principal) -> str:
    return ("key:" if principal.kind == "api_key" else "user:") + principal.subject


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _ip_key(scope: Scope) -> str:
    return "ip:" + _address(scope)


def _webhook_key(path: str) -> str | None:
    """`hook:<platform>:<token hash>` for a webhook path, or None when the platform is no plain name."""
    prefix = next(prefix for prefix in WEBHOOK_PREFIXES if path.startswith(prefix))
    platform, _, token = path[len(prefix) :].partition("/")
    if _PLATFORM_NAME.fullmatch(platform) is None:
        return None
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    # Courier accounts get keys of their own (`hook:courier:<provider>:...`), apart from platform connections.
    kind = "" if prefix == WEBHOOK_PREFIX else "courier:"
    return f"hook:{kind}{platform}:{digest[:WEBHOOK_TOKEN_HASH_LENGTH]}"


def _adding(send: Send, extra: list[tuple[bytes, bytes]], *, status: list[int] | None = None) -> Send:
    """`send` adding `extra` to the answer's headers, and noting its status in `status` when given."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
            if status is not None:
                status.append(message["status"])
        await send(message)

    return send_with_headers


async def _answer(
    response: ASGIApp, scope: Scope, receive: Receive, send: Send, extra: list[tuple[bytes, bytes]]
) -> None:
    await response(scope, receive, _adding(send, extra) if extra else send)


def _problem_of(error: DoorstepError, path: str) -> ASGIApp:
    response = problem(
        error.status,
        title=error.title,
        detail=error.detail,
        slug=error.slug,
        instance=path,
        **error.extensions,
    )
    response.headers.update(error.headers)
    return response


def _too_many(decision: Decision, path: str) -> ASGIApp:
    return problem(
        429,
        title="Too many requests",
        detail=f"slow down: try again in {max(1, math.ceil(decision.retry_after_seconds))} s",
        slug="too-many-requests",
        instance=path,
    )
