"""The edge on its own, in front of an app that says what reached it: authentication, identity headers,
rate limits, CORS, and the routes it refuses. A fake authenticator and a limiter on a frozen clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from doorstep.gateway.edge import Edge, EdgeConfig, RouteSet, internal
from doorstep.infra.identity_client import IdentityUnavailable
from doorstep.infra.rate_limits import MemoryRateLimiter, RateLimiterUnavailable
from doorstep.kernel.auth import EDGE_PRINCIPAL, Principal
from doorstep.kernel.http import RequestContextMiddleware
from doorstep.kernel.limits import Decision, Quota

API_KEY = "dsk_valid"
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1LTEifQ.c2ln"
KEY_PRINCIPAL = Principal(
    tenant_id="t-1", subject="k-1", kind="api_key", permissions=frozenset({"orders.read"})
)
USER_PRINCIPAL = Principal(tenant_id="t-1", subject="u-1", kind="user")
CALLER_QUOTA = Quota(limit=60, period_seconds=60, burst=2)  # 3 at once
IP_QUOTA = Quota(limit=30, period_seconds=60, burst=1)  # 2 at once
ORIGIN = "https://shop.example.com"


class FakeAuthenticator:
    def __init__(self) -> None:
        self.known = {API_KEY: KEY_PRINCIPAL, TOKEN: USER_PRINCIPAL}
        self.asked: list[str] = []
        self.failure: Exception | None = None

    async def authenticate(self, credential: str) -> Principal | None:
        self.asked.append(credential)
        if self.failure is not None:
            raise self.failure
        return self.known.get(credential)


class RecordingLimiter:
    """The in-process limiter on a clock that never moves, remembering which keys it was asked about."""

    def __init__(self) -> None:
        self.limiter = MemoryRateLimiter(clock=lambda: 1_000.0)
        self.keys: list[str] = []

    async def hit(self, key: str, quota: Quota) -> Decision:
        self.keys.append(key)
        return await self.limiter.hit(key, quota)


class BrokenLimiter:
    async def hit(self, key: str, quota: Quota) -> Decision:
        raise RateLimiterUnavailable("rate limits cannot be checked: Redis did not answer (ConnectionError)")


class Inner:
    """The app behind the edge: answers what it received, and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        principal = scope.get(EDGE_PRINCIPAL)
        body = json.dumps(
            {
                "principal": principal.as_dict() if isinstance(principal, Principal) else principal,
                "doorstep_headers": sorted(
                    [name.decode(), value.decode()]
                    for name, value in scope["headers"]
                    if name.startswith(b"x-doorstep-")
                ),
                "authorization": next(
                    (value.decode() for name, value in scope["headers"] if name == b"authorization"), None
                ),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Harness:
    def __init__(self, *, cors: frozenset[str] = frozenset(), limiter: Any = None) -> None:
        self.inner = Inner()
        self.authenticator = FakeAuthenticator()
        self.limiter = limiter if limiter is not None else RecordingLimiter()
        self.config = EdgeConfig(
            limiter=self.limiter,
            caller_quota=CALLER_QUOTA,
            ip_quota=IP_QUOTA,
            cors_origins=cors,
            authenticator=self.authenticator,
        )
        self.app = RequestContextMiddleware(Edge(self.inner, config=self.config), service="test")

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=self.app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            yield client


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://doorstep.dev/problems/{slug}"
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


# --- authentication ----------------------------------------------------------------------------------


async def test_a_request_without_a_credential_to_a_guarded_path_is_a_401_at_the_edge() -> None:
    # Given the edge
    harness = Harness()
    async with harness.client() as client:
        # When a client calls an orders route without a credential
        response = await client.get("/v1/orders")
    # Then the edge answers 401 itself, asks for a bearer credential, and nothing behind it is reached
    body = assert_problem(response, 401, "unauthenticated")
    assert body["detail"] == "send `Authorization: Bearer <access token or API key>`"
    assert body["instance"] == "/v1/orders"
    assert response.headers["www-authenticate"] == "Bearer"
    assert harness.inner.calls == 0
    assert harness.limiter.keys == []


async def test_a_credential_that_fails_verification_is_a_401_and_counts_against_the_address() -> None:
    # Given the edge
    harness = Harness()
    async with harness.client() as client:
        # When a client sends a token the authenticator does not know, and a credential of another scheme
        bad_token = await client.get("/v1/orders", headers=bearer("eyJ.forged.token"))
        basic = await client.get("/v1/orders", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        # And then a third wrong one, past the address's allowance of two
        third = await client.get("/v1/orders", headers=bearer("dsk_guess"))
    # Then the first two are 401s; the third is refused for the address
    for response in (bad_token, basic):
        body = assert_problem(response, 401, "unauthenticated")
        assert body["detail"] == "the credential is unknown, revoked or expired"
    assert_problem(third, 429, "too-many-requests")
    assert third.headers["retry-after"] == "2"
    # And only the bearer credentials were asked about; nothing behind the edge was reached
    assert harness.authenticator.asked == ["eyJ.forged.token", "dsk_guess"]
    assert harness.limiter.keys == ["ip:203.0.113.7"] * 3
    assert harness.inner.calls == 0


async def test_an_api_key_passes_with_its_principal_in_the_scope_and_its_identity_forwarded() -> None:
    # Given the edge
    harness = Harness()
    async with harness.client() as client:
        # When a client with a valid API key calls, claiming another identity in x-doorstep-* headers
        response = await client.get(
            "/v1/orders?limit=1",
            headers={
                **bearer(API_KEY),
                "X-Doorstep-Tenant": "t-other",
                "X-Doorstep-Subject": "admin",
                "X-Doorstep-Anything": "forged",
            },
        )
    # Then the app behind it gets the verified principal, and only the edge's identity headers
    assert response.status_code == 200
    seen = response.json()
    assert seen["principal"] == KEY_PRINCIPAL.as_dict()
    assert seen["doorstep_headers"] == [
        ["x-doorstep-kind", "api_key"],
        ["x-doorstep-subject", "k-1"],
        ["x-doorstep-tenant", "t-1"],
    ]
    # And the credential still travels on, for the service to verify again when it is another process
    assert seen["authorization"] == f"Bearer {API_KEY}"
    # And the answer carries the key's rate limit
    assert harness.limiter.keys == ["key:k-1"]
    assert response.headers["ratelimit-limit"] == "3"
    assert response.headers["ratelimit-remaining"] == "2"
    assert response.headers["ratelimit-reset"] == "1"
    assert response.headers["ratelimit-policy"] == "60;w=60;burst=2"
    assert "retry-after" not in response.headers


async def test_a_user_token_is_limited_per_user() -> None:
    # Given the edge
    harness = Harness()
    async with harness.client() as client:
        # When a signed-in user calls
        response = await client.get("/v1/identity/tenant", headers=bearer(TOKEN))
    # Then it passes as that user, counted under the user's id
    assert response.status_code == 200
    assert response.json()["principal"] == USER_PRINCIPAL.as_dict()
    assert harness.limiter.keys == ["user:u-1"]


async def test_public_routes_pass_without_a_credential_limited_per_address() -> None:
    # Given the edge
    harness = Harness()
    async with harness.client() as client:
        # When an anonymous client logs in and fetches the JWKS, and a partner delivers a webhook
        # with identity headers of its own
        login = await client.post("/v1/identity/login", json={"email": "a@example.com"})
        jwks = await client.get("/.well-known/jwks.json")
        webhook = await client.post(
            "/v1/integrations/webhooks/shopify/tok-1", content=b"{}", headers={"X-Doorstep-Tenant": "t-9"}
        )
    # Then the first two pass without principal, under the client address's quota
    for response in (login, jwks):
        assert response.status_code == 200
        assert response.json()["principal"] is None
        assert response.json()["doorstep_headers"] == []
        assert response.headers["ratelimit-policy"] == "30;w=60;burst=1"
    # And the third is past that address's allowance of two
    assert_problem(webhook, 429, "too-many-requests")
    assert harness.limiter.keys == ["ip:203.0.113.7"] * 3
    assert harness.authenticator.asked == []
    assert harness.inner.calls == 2


async def test_a_public_route_with_a_credential_is_not_verified_and_strips_forged_identity() -> None:
    # Given the edge
    harness = Harness()
    async with harness.client() as client:
        # When a partner's webhook arrives with an Authorization of its own and a forged identity header
        response = await client.post(
            "/v1/integrations/webhooks/doorstep/tok-1",
            content=b"{}",
            headers={"Authorization": "Bearer partner-secret", "X-Doorstep-Subject": "admin"},
        )
    # Then it passes unverified (the service checks its signature), without the forged header
    assert response.status_code == 200
    assert response.json() == {
        "principal": None,
        "doorstep_headers": [],
        "authorization": "Bearer partner-secret",
    }
    assert harness.authenticator.asked == []


async def test_the_wrong_method_on_a_public_path_needs_a_credential() -> None:
    # Given the edge
    harness = Harness()
    async with harness.client() as client:
        # When an anonymous client GETs a path that is public only for POST
        response = await client.get("/v1/identity/login")
    # Then it is a 401
    assert_problem(response, 401, "unauthenticated")


async def test_introspection_is_refused_from_outside_whatever_the_credential() -> None:
    # Given the edge
    harness = Harness()
    async with harness.client() as client:
        # When a client calls identity's introspection, with a valid key, without one, and with a slash
        refused = [
            await client.post(
                "/v1/identity/introspect", json={"credential": API_KEY}, headers=bearer(API_KEY)
            ),
            await client.post("/v1/identity/introspect", json={"credential": API_KEY}),
            await client.get("/v1/identity/introspect/"),
        ]
    # Then each is a 404, as if the route did not exist, and nothing behind the edge is reached
    for response in refused:
        body = assert_problem(response, 404, "not-found")
        assert body["title"] == "Not Found"
    assert harness.inner.calls == 0
    assert harness.authenticator.asked == []


async def test_a_call_from_inside_the_process_passes_untouched() -> None:
    # Given the edge, and an app reached through `internal` (the in-process identity client)
    harness = Harness()
    inside = internal(harness.app)
    transport = httpx.ASGITransport(app=inside)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity.local") as client:
        # When the process introspects a key through it
        response = await client.post("/v1/identity/introspect", json={"credential": API_KEY})
    # Then it reaches identity without the edge verifying or counting anything
    assert response.status_code == 200
    assert response.json()["principal"] is None
    assert harness.authenticator.asked == []
    assert harness.limiter.keys == []


async def test_operational_routes_are_not_guarded() -> None:
    # Given the edge
    harness = Harness()
    async with harness.client() as client:
        # When a probe calls /healthz without a credential
        response = await client.get("/healthz")
    # Then it passes, uncounted
    assert response.status_code == 200
    assert "ratelimit-limit" not in response.headers
    assert harness.limiter.keys == []


# --- rate limits -------------------------------------------------------------------------------------


async def test_past_the_burst_a_key_gets_a_429_with_retry_after_and_is_not_forwarded() -> None:
    # Given the edge with a quota of 60 a minute and a burst of 2, on a clock that does not move
    harness = Harness()
    async with harness.client() as client:
        # When one key sends five requests at once
        responses = [await client.get("/v1/orders", headers=bearer(API_KEY)) for _ in range(5)]
    # Then three pass, counting down, and the other two are 429 problems that say when to come back
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0", "0"]
    refused = responses[3]
    body = assert_problem(refused, 429, "too-many-requests")
    assert body["detail"] == "slow down: try again in 1 s"
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-reset"] == "3"
    assert refused.headers["ratelimit-policy"] == "60;w=60;burst=2"
    assert harness.inner.calls == 3


async def test_a_limiter_that_cannot_be_asked_refuses_with_a_503() -> None:
    # Given the edge whose shared limiter (Redis) does not answer
    harness = Harness(limiter=BrokenLimiter())
    async with harness.client() as client:
        # When a valid key calls
        response = await client.get("/v1/orders", headers=bearer(API_KEY))
    # Then nothing passes unlimited: a 503 problem a client may retry
    body = assert_problem(response, 503, "service-unavailable")
    assert body["detail"] == "rate limits cannot be checked: Redis did not answer (ConnectionError)"
    assert harness.inner.calls == 0


async def test_an_identity_that_cannot_be_asked_refuses_with_a_503() -> None:
    # Given the edge whose authenticator cannot reach identity
    harness = Harness()
    harness.authenticator.failure = IdentityUnavailable("identity did not answer: connection refused")
    async with harness.client() as client:
        # When a key calls
        response = await client.get("/v1/orders", headers=bearer(API_KEY))
    # Then nothing passes unverified
    body = assert_problem(response, 503, "service-unavailable")
    assert body["detail"] == "identity did not answer: connection refused"
    assert harness.inner.calls == 0


async def test_an_edge_whose_app_has_not_started_refuses_with_a_503() -> None:
    # Given the edge before its app has made the authenticator
    harness = Harness()
    harness.config.authenticator = None
    async with harness.client() as client:
        response = await client.get("/v1/orders", headers=bearer(API_KEY))
    # Then it cannot verify anything and says so
    assert_problem(response, 503, "service-unavailable")


# --- CORS --------------------------------------------------------------------------------------------


async def test_an_allowed_origin_gets_the_cors_headers_and_its_preflight_answered() -> None:
    # Given the edge that allows one origin
    harness = Harness(cors=frozenset({ORIGIN}))
    async with harness.client() as client:
        # When a browser on that origin sends a preflight, then the request itself
        preflight = await client.options(
            "/v1/orders",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
        actual = await client.get("/v1/orders", headers={"Origin": ORIGIN, **bearer(API_KEY)})
    # Then the preflight is answered by the edge, without a credential and without reaching the app
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-methods"] == "GET, POST, PUT, PATCH, DELETE"
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type, idempotency-key"
    assert preflight.headers["access-control-max-age"] == "600"
    assert preflight.headers["vary"] == "Origin"
    # And the request's answer names the origin and exposes the headers a client needs
    assert actual.status_code == 200
    assert actual.headers["access-control-allow-origin"] == ORIGIN
    exposed = actual.headers["access-control-expose-headers"]
    assert {"x-request-id", "retry-after", "ratelimit-remaining"} <= set(exposed.split(", "))
    assert actual.headers["vary"] == "Origin"
    assert harness.inner.calls == 1


async def test_edge_answers_carry_the_cors_headers_too() -> None:
    # Given the edge that allows one origin
    harness = Harness(cors=frozenset({ORIGIN}))
    async with harness.client() as client:
        # When a browser on it calls without a credential
        response = await client.get("/v1/orders", headers={"Origin": ORIGIN})
    # Then its script can read the 401
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_another_origin_gets_no_cors_headers_and_its_preflight_is_refused() -> None:
    # Given the edge that allows one origin
    harness = Harness(cors=frozenset({ORIGIN}))
    async with harness.client() as client:
        # When a browser on another origin sends a preflight, then the request
        preflight = await client.options(
            "/v1/orders",
            headers={"Origin": "https://evil.example.net", "Access-Control-Request-Method": "GET"},
        )
        actual = await client.get(
            "/v1/orders", headers={"Origin": "https://evil.example.net", **bearer(API_KEY)}
        )
    # Then neither answer carries an access-control header
    assert_problem(preflight, 403, "forbidden")
    assert actual.status_code == 200
    for response in (preflight, actual):
        assert [name for name in response.headers if name.startswith("access-control-")] == []
    assert harness.inner.calls == 1


async def test_without_an_allow_list_no_cors_headers_are_sent() -> None:
    # Given the edge with no origins allowed (the default)
    harness = Harness()
    async with harness.client() as client:
        response = await client.get("/v1/orders", headers={"Origin": ORIGIN, **bearer(API_KEY)})
    # Then a browser's request works as any other, without CORS headers
    assert response.status_code == 200
    assert [name for name in response.headers if name.startswith("access-control-")] == []


async def test_an_allow_list_of_any_origin_names_each_caller_s_origin() -> None:
    # Given the edge that allows any origin
    harness = Harness(cors=frozenset({"*"}))
    async with harness.client() as client:
        response = await client.get(
            "/v1/orders", headers={"Origin": "https://anywhere.example", **bearer(API_KEY)}
        )
    # Then the answer names the caller's origin (not `*`), so the browser may read it
    assert response.headers["access-control-allow-origin"] == "https://anywhere.example"


# --- websockets --------------------------------------------------------------------------------------


async def test_a_websocket_to_the_api_is_closed_at_the_edge() -> None:
    # Given the edge
    harness = Harness()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    # When a client opens a websocket on an API path
    scope = {"type": "websocket", "path": "/v1/orders", "headers": [], "client": ("203.0.113.7", 1)}
    await harness.app(scope, receive, send)
    # Then the edge closes it as a policy violation, and nothing behind it is reached
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert harness.inner.calls == 0


# --- route templates ---------------------------------------------------------------------------------


def test_route_templates_match_one_segment_per_parameter() -> None:
    # Given a set with a templated route
    routes = RouteSet({("POST", "/v1/integrations/webhooks/{platform}/{token}"), ("GET", "/a")})
    # Then it matches the template's shape only, and by method
    assert ("POST", "/v1/integrations/webhooks/shopify/t-1") in routes
    assert ("GET", "/a") in routes
    assert ("GET", "/v1/integrations/webhooks/shopify/t-1") not in routes
    assert ("POST", "/v1/integrations/webhooks/shopify") not in routes
    assert ("POST", "/v1/integrations/webhooks/shopify/t-1/extra") not in routes
    assert ("POST", "/v1/integrations/webhooks//t-1") not in routes
    assert ("POST", "/a") not in routes
