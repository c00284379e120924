"""The edge on its own, in front of an app that says what reached it: authentication, identity headers,
rate limits, CORS, and the routes it refuses. A fake authenticator and a limiter on a frozen clock."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from structlog.testing import capture_logs

from doorstep.gateway.edge import MAX_BLOCKED_ADDRESSES, Edge, EdgeConfig, RouteSet, internal
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
IP_QUOTA = Quota(limit=30, period_seconds=60, burst=1)  # 2 at once, one every 2 s
WEBHOOK_QUOTA = Quota(limit=60, period_seconds=60, burst=4)  # 5 at once
ORIGIN = "https://shop.example.com"
ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.23"
PARTNER_TOKEN = "Zk3q9V1xLr8sTn2bWm4cYp7dHj6gQa0e"  # a connection's secret path token
OTHER_PARTNER_TOKEN = "Pw5tRz1kNs8vXc3mLb7qYd2hGf9jTa4u"
# `hook:<platform>:` and the first 32 hex digits of SHA-256 of the tokens above
PARTNER_HOOK = "hook:shopify:916ceb73d7a13b07e3dcdc5043bdcd23"
OTHER_PARTNER_HOOK = "hook:shopify:f344c7fa7c8127ef44c1a95656816c22"
WEBHOOK_POLICY = "60;w=60;burst=4"
IP_POLICY = "30;w=60;burst=1"


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


class Clock:
    """A clock that moves only when a test moves it; the limiter and the edge share it."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class RecordingLimiter:
    """The in-process limiter on a clock that moves only when told, remembering the keys it was asked about."""

    def __init__(self, clock: Clock) -> None:
        self.limiter = MemoryRateLimiter(clock=clock)
        self.keys: list[str] = []

    async def hit(self, key: str, quota: Quota) -> Decision:
        self.keys.append(key)
        return await self.limiter.hit(key, quota)


class BrokenLimiter:
    async def hit(self, key: str, quota: Quota) -> Decision:
        raise RateLimiterUnavailable("rate limits cannot be checked: Redis did not answer (ConnectionError)")


class Inner:
    """The app behind the edge: answers what it received (with `status(path)`), and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.status: Callable[[str], int] = lambda path: 200

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
                "status": self.status(scope["path"]),
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Harness:
    def __init__(
        self,
        *,
        cors: frozenset[str] = frozenset(),
        limiter: Any = None,
        max_blocked_addresses: int = MAX_BLOCKED_ADDRESSES,
    ) -> None:
        self.inner = Inner()
        self.authenticator = FakeAuthenticator()
        self.clock = Clock()
        self.limiter = limiter if limiter is not None else RecordingLimiter(self.clock)
        self.config = EdgeConfig(
            limiter=self.limiter,
            caller_quota=CALLER_QUOTA,
            ip_quota=IP_QUOTA,
            webhook_quota=WEBHOOK_QUOTA,
            cors_origins=cors,
            authenticator=self.authenticator,
            clock=self.clock,
            max_blocked_addresses=max_blocked_addresses,
        )
        self.app = RequestContextMiddleware(Edge(self.inner, config=self.config), service="test")

    @asynccontextmanager
    async def client(self, address: str = ADDRESS) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=self.app, client=(address, 5555))
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
        # When an anonymous client logs in and fetches the JWKS, with identity headers of its own,
        # and then signs up
        login = await client.post(
            "/v1/identity/login", json={"email": "a@example.com"}, headers={"X-Doorstep-Tenant": "t-9"}
        )
        jwks = await client.get("/.well-known/jwks.json")
        signup = await client.post("/v1/identity/signup", json={"email": "a@example.com"})
    # Then the first two pass without principal, under the client address's quota
    for response in (login, jwks):
        assert response.status_code == 200
        assert response.json()["principal"] is None
        assert response.json()["doorstep_headers"] == []
        assert response.headers["ratelimit-policy"] == "30;w=60;burst=1"
    # And the third is past that address's allowance of two
    assert_problem(signup, 429, "too-many-requests")
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


# --- partner webhooks --------------------------------------------------------------------------------


def webhook(token: str, platform: str = "shopify") -> str:
    return f"/v1/integrations/webhooks/{platform}/{token}"


def hook_key(token: str, platform: str = "shopify") -> str:
    return f"hook:{platform}:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def known_tokens_only(harness: Harness, *tokens: str) -> None:
    """The service behind the edge answers 404 (no connection listens there) for any other token."""
    known = {webhook(token) for token in tokens}
    harness.inner.status = lambda path: 200 if path in known else 404


async def test_a_partner_sending_more_than_an_address_may_on_one_connection_is_not_refused() -> None:
    # Given the edge, whose address allowance is 2 at once and whose connection allowance is 5
    harness = Harness()
    async with harness.client() as client:
        # When a partner delivers five orders at once from one address to one connection
        responses = [await client.post(webhook(PARTNER_TOKEN), content=b"{}") for _ in range(5)]
    # Then all five reach the service, counted against the connection, never against the address
    assert [r.status_code for r in responses] == [200] * 5
    assert harness.inner.calls == 5
    assert harness.limiter.keys == [PARTNER_HOOK] * 5
    # And the answers describe the connection's quota
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["4", "3", "2", "1", "0"]
    for response in responses:
        assert response.headers["ratelimit-limit"] == "5"
        assert response.headers["ratelimit-policy"] == WEBHOOK_POLICY
        assert "retry-after" not in response.headers


async def test_two_connections_behind_one_address_each_have_their_own_allowance() -> None:
    # Given the edge, and two partners behind one egress address
    harness = Harness()
    async with harness.client() as client:
        # When the first spends its connection's whole allowance and one more, and then the second delivers
        first = [await client.post(webhook(PARTNER_TOKEN), content=b"{}") for _ in range(6)]
        second = await client.post(webhook(OTHER_PARTNER_TOKEN), content=b"{}")
    # Then the first's sixth call is refused, and the second still has its full allowance
    assert [r.status_code for r in first] == [200] * 5 + [429]
    assert second.status_code == 200
    assert second.headers["ratelimit-remaining"] == "4"
    assert harness.limiter.keys == [PARTNER_HOOK] * 6 + [OTHER_PARTNER_HOOK]
    assert harness.inner.calls == 6


async def test_past_a_connection_s_burst_its_webhooks_get_a_429_and_are_not_forwarded() -> None:
    # Given the edge with a connection quota of 60 a minute and a burst of 4, on a clock that does not move
    harness = Harness()
    async with harness.client() as client:
        # When a partner sends seven deliveries at once to one connection
        responses = [await client.post(webhook(PARTNER_TOKEN), content=b"{}") for _ in range(7)]
    # Then five pass and the other two are 429 problems that say when to come back
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 2
    assert harness.inner.calls == 5
    for refused in responses[5:]:
        body = assert_problem(refused, 429, "too-many-requests")
        assert body["detail"] == "slow down: try again in 1 s"
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["ratelimit-limit"] == "5"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.headers["ratelimit-reset"] == "5"
        assert refused.headers["ratelimit-policy"] == WEBHOOK_POLICY
    # And the edge's own refusals do not count against the address
    assert harness.limiter.keys == [PARTNER_HOOK] * 7


async def test_bogus_tokens_from_one_address_get_it_blocked_for_webhooks_without_reaching_the_service() -> (
    None
):
    # Given the edge in front of a service that knows one connection only
    harness = Harness()
    known_tokens_only(harness, PARTNER_TOKEN)
    async with harness.client() as client:
        # When one address tries three made-up tokens (its address allowance is 2 at once)
        guesses = [await client.post(webhook(f"guess-{n}"), content=b"{}") for n in (1, 2, 3)]
        # And then a fourth, and a valid partner's delivery from the same address
        blocked = await client.post(webhook("guess-4"), content=b"{}")
        partner = await client.post(webhook(PARTNER_TOKEN), content=b"{}")
    async with harness.client(OTHER_ADDRESS) as other_client:
        # And another address tries a made-up token and delivers to the valid connection
        other_guess = await other_client.post(webhook("guess-5"), content=b"{}")
        other_partner = await other_client.post(webhook(PARTNER_TOKEN), content=b"{}")
    # Then the three guesses reach the service and its 404s, with the connection's fields, go back
    assert [r.status_code for r in guesses] == [404, 404, 404]
    for response in guesses:
        assert response.headers["ratelimit-policy"] == WEBHOOK_POLICY
        assert response.headers["ratelimit-remaining"] == "4"
    # And each 404 counted against the address after the answer; the third found the allowance spent
    assert harness.limiter.keys[:6] == [
        hook_key("guess-1"),
        "ip:203.0.113.7",
        hook_key("guess-2"),
        "ip:203.0.113.7",
        hook_key("guess-3"),
        "ip:203.0.113.7",
    ]
    # And the address's next webhook calls, the valid one too, are refused by the edge for the address
    for refused in (blocked, partner):
        body = assert_problem(refused, 429, "too-many-requests")
        assert body["detail"] == "slow down: try again in 2 s"
        assert refused.headers["retry-after"] == "2"
        assert refused.headers["ratelimit-limit"] == "2"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.headers["ratelimit-reset"] == "4"
        assert refused.headers["ratelimit-policy"] == IP_POLICY
    # And another address is not affected
    assert other_guess.status_code == 404
    assert other_partner.status_code == 200
    assert harness.limiter.keys[6:] == [hook_key("guess-5"), "ip:198.51.100.23", PARTNER_HOOK]
    assert harness.inner.calls == 5

    # When the clock reaches the blocked address's Retry-After
    harness.clock.now += 2
    async with harness.client() as client:
        again = await client.post(webhook("guess-6"), content=b"{}")
    # Then its next call is forwarded again, and counted against the address after its 404
    assert again.status_code == 404
    assert harness.inner.calls == 6
    assert harness.limiter.keys[9:] == [hook_key("guess-6"), "ip:203.0.113.7"]


@pytest.mark.parametrize(
    ("status", "counted"),
    [
        (401, True),
        (403, True),
        (404, True),
        (200, False),
        (202, False),
        (413, False),
        (422, False),
        (500, False),
    ],
)
async def test_only_a_401_403_or_404_from_the_service_counts_against_the_address(
    status: int, counted: bool
) -> None:
    # Given the edge in front of a service that answers `status` to a delivery
    harness = Harness()
    harness.inner.status = lambda path: status
    async with harness.client() as client:
        # When a partner delivers
        response = await client.post(webhook(PARTNER_TOKEN), content=b"{}")
    # Then the answer goes back as it was, and only a refused URL or signature counts against the address
    assert response.status_code == status
    assert response.headers["ratelimit-policy"] == WEBHOOK_POLICY
    expected = [PARTNER_HOOK, "ip:203.0.113.7"] if counted else [PARTNER_HOOK]
    assert harness.limiter.keys == expected


async def test_the_raw_token_never_reaches_the_limiter() -> None:
    # Given the edge in front of a service that refuses every delivery's signature
    harness = Harness()
    harness.inner.status = lambda path: 401
    long_token = "t" * 4_000
    async with harness.client() as client:
        # When a partner delivers with its token, and someone with a 4,000-character one
        await client.post(webhook(PARTNER_TOKEN), content=b"{}")
        await client.post(webhook(long_token), content=b"{}")
    # Then the limiter saw each token only as the first 32 hex digits of its SHA-256
    assert harness.limiter.keys == [
        PARTNER_HOOK,
        "ip:203.0.113.7",
        "hook:shopify:" + hashlib.sha256(long_token.encode()).hexdigest()[:32],
        "ip:203.0.113.7",
    ]
    assert [key for key in harness.limiter.keys if PARTNER_TOKEN in key or "tttt" in key] == []


async def test_a_webhook_whose_platform_is_no_plain_name_is_limited_per_address() -> None:
    # Given the edge in front of a service that knows no such platform
    harness = Harness()
    harness.inner.status = lambda path: 404
    async with harness.client() as client:
        # When a client posts to a webhook URL whose platform is 51 characters, then to one with a dot
        long_platform = await client.post(webhook("tok-1", platform="p" * 51), content=b"{}")
        dotted = await client.post(webhook("tok-1", platform="shop.ify"), content=b"{}")
    # Then the first is limited by the address up front and counted again after its 404; the second
    # finds the address's allowance spent and is not forwarded
    assert long_platform.status_code == 404
    assert long_platform.headers["ratelimit-policy"] == IP_POLICY
    assert_problem(dotted, 429, "too-many-requests")
    assert harness.limiter.keys == ["ip:203.0.113.7"] * 3
    assert harness.inner.calls == 1


async def test_the_addresses_blocked_for_webhooks_are_bounded_in_memory() -> None:
    # Given the edge that remembers at most two blocked addresses, in front of a service that knows none
    harness = Harness(max_blocked_addresses=2)
    harness.inner.status = lambda path: 404
    addresses = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    for address in addresses:
        async with harness.client(address) as client:
            # When three addresses each get blocked, in turn, by three made-up tokens
            for n in range(3):
                assert (await client.post(webhook(f"guess-{n}"), content=b"{}")).status_code == 404
    assert harness.inner.calls == 9
    # Then the two most recently blocked are still refused without reaching the service
    for address in addresses[1:]:
        async with harness.client(address) as client:
            assert (await client.post(webhook("guess-x"), content=b"{}")).status_code == 429
    assert harness.inner.calls == 9
    # And the first was forgotten: its next call is forwarded (and its spent allowance blocks it anew)
    async with harness.client(addresses[0]) as client:
        forgotten = await client.post(webhook("guess-x"), content=b"{}")
    assert forgotten.status_code == 404
    assert harness.inner.calls == 10
    assert harness.limiter.keys[-2:] == [hook_key("guess-x"), "ip:192.0.2.1"]


class AddressLimiterDown(RecordingLimiter):
    """The limiter answers for connections but fails for addresses, as Redis might between two calls."""

    async def hit(self, key: str, quota: Quota) -> Decision:
        if key.startswith("ip:"):
            raise RateLimiterUnavailable("rate limits cannot be checked: Redis did not answer (TimeoutError)")
        return await super().hit(key, quota)


async def test_a_refusal_the_limiter_cannot_count_leaves_the_answer_alone_and_is_logged() -> None:
    # Given the edge whose limiter fails for addresses, in front of a service that knows no connection
    harness = Harness(limiter=AddressLimiterDown(Clock()))
    harness.inner.status = lambda path: 404
    async with harness.client() as client:
        with capture_logs() as logs:
            # When an address tries three made-up tokens
            responses = [await client.post(webhook(f"guess-{n}"), content=b"{}") for n in (1, 2, 3)]
    # Then each 404 went back as the service gave it, none blocked the address, and each was logged
    assert [r.status_code for r in responses] == [404, 404, 404]
    assert harness.inner.calls == 3
    warnings = [entry for entry in logs if entry["event"] == "webhook_refusal_not_counted"]
    assert (
        warnings
        == [
            {
                "event": "webhook_refusal_not_counted",
                "log_level": "warning",
                "address": "203.0.113.7",
                "error": "rate limits cannot be checked: Redis did not answer (TimeoutError)",
            }
        ]
        * 3
    )


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
