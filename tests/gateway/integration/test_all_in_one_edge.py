"""The all-in-one shape: the same edge fronts the in-process services, verifies once, and limits in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from tests.platform import RunningPlatform, running_platform, settings_for

from doorstep.identity.domain.commands import CreateTenant, CreateUser
from doorstep.infra.rate_limits import MemoryRateLimiter
from doorstep.infra.revocations import MemoryRevocationList
from doorstep.infra.shared import Shared
from doorstep.kernel.auth import Principal
from doorstep.kernel.limits import Decision, Quota
from doorstep.kernel.settings import Settings
from doorstep.runtime.app import build_app
from doorstep.runtime.services import build_services, make_broker

PASSWORD = "a long enough password"


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
