"""The all-in-one shape: the same edge fronts the in-process services, verifies once, and limits in memory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tests.platform import RunningPlatform, running_platform, settings_for

from doorstep.identity.domain.commands import CreateTenant, CreateUser
from doorstep.infra.rate_limits import MemoryRateLimiter
from doorstep.infra.revocations import MemoryRevocationList
from doorstep.infra.shared import Shared
from doorstep.integrations.adapters.platforms.doorstep_json import sign_doorstep_payload
from doorstep.kernel.auth import Principal
from doorstep.kernel.limits import Decision, Quota
from doorstep.kernel.settings import Settings
from doorstep.runtime.app import build_app
from doorstep.runtime.services import build_services, make_broker

PASSWORD = "a long enough password"
WEBHOOK_SECRET = "whsec_all_in_one_edge_tests_only_0123"
PLACE: dict[str, Any] = {"name": "Curry Corner", "address": "Oranienstraße 12, Berlin"}


class FrozenLimiter:
    """The in-process limiter on a clock that does not move, remembering the keys it was asked about."""

    def __init__(self) -> None:
        self.limiter = MemoryRateLimiter(clock=lambda: 5_000.0)
        self.keys: list[str] = []

    async def hit(self, key: str, quota: Quota) -> Decision:
        self.keys.append(key)
        return await self.limiter.hit(key, quota)


@asynccontextmanager
async def all_in_one(
    settings: Settings, limiter: FrozenLimiter
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """`build_app` as `doorstep serve all` builds it, its services sharing `limiter`."""
    shared = Shared(limiter=limiter, revocations=MemoryRevocationList())
    app = build_app(settings, build_services(settings, shared=shared), make_broker(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.4", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def counting(platform: RunningPlatform) -> list[str]:
    """Record every credential the process's authenticator is asked to verify."""
    authenticator = platform.app.state.authenticator
    verify: Callable[[str], Awaitable[Principal | None]] = authenticator.authenticate
    asked: list[str] = []

    async def authenticate(credential: str) -> Principal | None:
        asked.append(credential)
        return await verify(credential)

    authenticator.authenticate = authenticate
    return asked


async def test_the_edge_uses_the_app_s_authenticator_and_verifies_each_request_once(tmp_path: Path) -> None:
    # Given the all-in-one platform, with API keys never cached, so every verification asks identity
    async with running_platform(settings_for(tmp_path, api_key_cache_seconds=0)) as platform:
        tenant = await platform.new_tenant()
        # Then the edge has no authenticator of its own
        assert platform.app.state.edge.authenticator is platform.app.state.authenticator
        asked = counting(platform)
        # When a client lists orders and reads its tenant with the API key
        orders = await platform.client.get("/v1/orders?limit=1", headers=tenant.headers)
        own = await platform.client.get("/v1/identity/tenant", headers=tenant.headers)
    # Then both answer, each verified once, by the edge: the services took its principal
    assert orders.status_code == 200
    assert own.status_code == 200
    assert own.json()["id"] == tenant.tenant_id
    assert asked == [tenant.api_key, tenant.api_key]
    # And the answers carry the key's rate limit (600 a minute, a burst of 100 by default)
    assert orders.headers["ratelimit-policy"] == "600;w=60;burst=100"
    assert orders.headers["ratelimit-remaining"] == "100"


async def test_the_all_in_one_edge_refuses_what_the_gateway_refuses(platform: RunningPlatform) -> None:
    # Given the all-in-one platform and a tenant
    tenant = await platform.new_tenant()
    asked = counting(platform)
    # When clients call without a credential, with a forged token and with a revoked-looking key
    missing = await platform.client.get("/v1/orders")
    bad_jwt = await platform.client.get(
        "/v1/orders", headers={"Authorization": "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6Im5vIn0.e30.c2ln"}
    )
    unknown = await platform.client.get("/v1/orders", headers={"Authorization": "Bearer dsk_not_a_key"})
    # And a client with a valid key asks to introspect
    introspect = await platform.client.post(
        "/v1/identity/introspect", json={"credential": tenant.api_key}, headers=tenant.headers
    )
    # Then the first three are 401 problems, the last a 404 as if the route did not exist
    for response in (missing, bad_jwt, unknown):
        assert response.status_code == 401
        assert response.json()["type"] == "https://doorstep.dev/problems/unauthenticated"
    assert introspect.status_code == 404
    assert introspect.json()["type"] == "https://doorstep.dev/problems/not-found"
    assert asked == ["eyJhbGciOiJFZERTQSIsImtpZCI6Im5vIn0.e30.c2ln", "dsk_not_a_key"]


async def test_public_routes_and_a_signed_in_user_pass_the_all_in_one_edge(tmp_path: Path) -> None:
    # Given the all-in-one platform and a user of a tenant
    limiter = FrozenLimiter()
    async with all_in_one(settings_for(tmp_path), limiter) as (app, client):
        tenant, _ = await app.state.services["identity"].bus.handle(CreateTenant(name="Acme"))
        user = await app.state.services["identity"].bus.handle(
            CreateUser(
                tenant_id=tenant.id,
                email="ada@example.com",
                password=PASSWORD,
                name="Ada",
                roles=["customer"],
            )
        )
        limiter.keys.clear()
        # When anonymous clients fetch the JWKS and log in, then the user calls with the access token
        jwks = await client.get("/.well-known/jwks.json")
        login = await client.post(
            "/v1/identity/login",
            json={"tenant_id": tenant.id, "email": "ada@example.com", "password": PASSWORD},
        )
        token = login.json()["access_token"]
        own = await client.get("/v1/identity/tenant", headers={"Authorization": f"Bearer {token}"})
    # Then all three answer; the anonymous ones count against the address, the user's call against the user
    assert jwks.status_code == 200
    assert login.status_code == 200
    assert own.status_code == 200
    assert own.json()["id"] == tenant.id
    assert limiter.keys[:2] == ["ip:198.51.100.4", "ip:198.51.100.4"]
    assert limiter.keys[-1] == f"user:{user.id}"


async def test_the_all_in_one_edge_limits_each_key_in_memory(tmp_path: Path) -> None:
    # Given the all-in-one platform with 20 requests a minute and a burst of 5 per key, on a frozen clock
    limiter = FrozenLimiter()
    settings = settings_for(tmp_path, rate_limit_per_minute=20, rate_limit_burst=5)
    async with all_in_one(settings, limiter) as (app, client):
        _, issued = await app.state.services["identity"].bus.handle(CreateTenant(name="Acme"))
        _, other_key = await app.state.services["identity"].bus.handle(CreateTenant(name="Other"))
        headers = {"Authorization": f"Bearer {issued.plaintext}"}
        # When one key sends ten requests at once, and then another key one
        responses = [await client.get("/v1/orders?limit=1", headers=headers) for _ in range(10)]
        other = await client.get(
            "/v1/orders?limit=1", headers={"Authorization": f"Bearer {other_key.plaintext}"}
        )
    # Then the burst plus one pass and the rest are 429s that say when to come back
    assert [r.status_code for r in responses] == [200] * 6 + [429] * 4
    assert [r.headers["ratelimit-remaining"] for r in responses[:6]] == ["5", "4", "3", "2", "1", "0"]
    for refused in responses[6:]:
        assert refused.headers["retry-after"] == "3"
        assert refused.headers["ratelimit-policy"] == "20;w=60;burst=5"
        assert refused.json()["type"] == "https://doorstep.dev/problems/too-many-requests"
    # And the other key has its own allowance
    assert other.status_code == 200
    assert other.headers["ratelimit-remaining"] == "5"


async def test_the_all_in_one_edge_limits_anonymous_callers_per_address(tmp_path: Path) -> None:
    # Given the all-in-one platform with 6 anonymous requests a minute and a burst of 1 per address
    limiter = FrozenLimiter()
    settings = settings_for(tmp_path, rate_limit_ip_per_minute=6, rate_limit_ip_burst=1)
    async with all_in_one(settings, limiter) as (_app, client):
        # When one address asks for the JWKS three times
        responses = [await client.get("/.well-known/jwks.json") for _ in range(3)]
    # Then two pass and the third waits the ten seconds of one interval
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].headers["retry-after"] == "10"
    assert limiter.keys == ["ip:198.51.100.4"] * 3


def delivery(external_id: str) -> tuple[bytes, dict[str, str]]:
    """A `doorstep` webhook body with its signature."""
    body = json.dumps(
        {
            "external_id": external_id,
            "pickup": {**PLACE, "location": {"lat": 52.5011, "lon": 13.4183}},
            "dropoff": {**PLACE, "location": {"lat": 52.4996, "lon": 13.4310}},
            "customer": {"name": "Lena Müller"},
            "items": [{"name": "Currywurst", "quantity": 1, "unit_price": 450}],
            "currency": "EUR",
        }
    ).encode()
    return body, {
        "Content-Type": "application/json",
        "Doorstep-Delivery-Id": external_id,
        "Doorstep-Signature": sign_doorstep_payload(body, WEBHOOK_SECRET),
    }


async def test_the_all_in_one_edge_limits_webhooks_per_connection_and_bogus_tokens_per_address(
    tmp_path: Path,
) -> None:
    # Given the all-in-one platform with 2 anonymous requests at once per address and 5 per connection,
    # on a frozen clock, and a tenant with a doorstep connection
    limiter = FrozenLimiter()
    settings = settings_for(
        tmp_path,
        rate_limit_ip_per_minute=6,
        rate_limit_ip_burst=1,
        rate_limit_webhook_per_minute=60,
        rate_limit_webhook_burst=4,
    )
    async with all_in_one(settings, limiter) as (app, client):
        _, issued = await app.state.services["identity"].bus.handle(CreateTenant(name="Acme"))
        opened = await client.post(
            "/v1/integrations/connections",
            json={"platform": "doorstep", "settings": {}, "secret": WEBHOOK_SECRET},
            headers={"Authorization": f"Bearer {issued.plaintext}"},
        )
        assert opened.status_code == 201, opened.text
        path = urlsplit(opened.json()["webhook_url"]).path
        token = path.rsplit("/", 1)[1]
        limiter.keys.clear()
        # When the partner delivers four orders at once from one address
        delivered = [
            await client.post(path, content=body, headers=headers)
            for body, headers in (delivery(f"A-{n}") for n in range(4))
        ]
        # And the same address then tries three made-up tokens, and a fourth, and delivers once more
        guesses = [
            await client.post(f"/v1/integrations/webhooks/doorstep/guess-{n}", content=b"{}")
            for n in range(4)
        ]
        body, headers = delivery("A-4")
        after_guessing = await client.post(path, content=body, headers=headers)
    # Then the four deliveries are accepted, counted against the connection by its token's hash
    assert [r.status_code for r in delivered] == [202] * 4
    hook = "hook:doorstep:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    assert limiter.keys[:4] == [hook] * 4
    assert [r.headers["ratelimit-remaining"] for r in delivered] == ["4", "3", "2", "1"]
    assert delivered[0].headers["ratelimit-policy"] == "60;w=60;burst=4"
    # And the made-up tokens are 404s counted against the address, until its allowance is spent
    assert [r.status_code for r in guesses] == [404, 404, 404, 429]
    assert limiter.keys[4:10] == [
        key
        for n in range(3)
        for key in (
            "hook:doorstep:" + hashlib.sha256(f"guess-{n}".encode()).hexdigest()[:32],
            "ip:198.51.100.4",
        )
    ]
    refused = guesses[3]
    assert refused.json()["type"] == "https://doorstep.dev/problems/too-many-requests"
    assert refused.headers["retry-after"] == "10"
    assert refused.headers["ratelimit-policy"] == "6;w=60;burst=1"
    # And from then on the address's webhook calls are refused at the edge, the valid one too,
    # without asking the limiter or the service
    assert after_guessing.status_code == 429
    assert len(limiter.keys) == 10
    # And the token itself was never a key
    assert [key for key in limiter.keys if token in key] == []
