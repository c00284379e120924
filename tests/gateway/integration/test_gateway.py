"""The distributed gateway as a client sees it: the edge, then routing by area, faithful forwarding,
streaming, and a dead upstream. Upstreams are small echo servers; one of them also plays identity
(introspection over HTTP and an empty JWKS), so credentials are verified as in production."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from tests.platform import settings_for

from doorstep.gateway.app import build_gateway

API_KEY = "dsk_valid"
KEY = {"Authorization": f"Bearer {API_KEY}"}
INTROSPECTED = {
    "active": True,
    "tenant_id": "t-1",
    "subject": "k-1",
    "kind": "api_key",
    "permissions": ["orders.read"],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def echo_app(name: str) -> FastAPI:
    """An upstream that answers with what it received; as identity it knows one API key."""
    app = FastAPI()

    @app.post("/v1/identity/introspect")
    async def introspect(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse(INTROSPECTED if body.get("credential") == API_KEY else {"active": False})

    @app.get("/.well-known/jwks.json")
    async def jwks() -> JSONResponse:
        return JSONResponse({"keys": []}, headers={"x-upstream": name})

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def echo(path: str, request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse(
            {
                "instance": name,
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "body_length": len(body),
                "forwarded_for": request.headers.get("x-forwarded-for"),
                "request_id": request.headers.get("x-request-id"),
                "authorization": request.headers.get("authorization"),
                "identity": {k: v for k, v in request.headers.items() if k.startswith("x-doorstep-")},
            },
            status_code=201 if request.method == "POST" else 200,
            headers={"x-upstream": name},
        )

    return app


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # it failed to start (the port was taken meanwhile): say why instead of waiting
            raise RuntimeError("the upstream stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[str, str]]:
    async with serving(echo_app("a")) as first, serving(echo_app("b")) as second:
        yield first, second


@asynccontextmanager
async def gateway_client(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with its lifespan (it makes the authenticator), and a client talking to it in-process."""
    gateway = build_gateway(settings_for(tmp_path, **settings))
    async with gateway.router.lifespan_context(gateway):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def test_a_request_reaches_the_owning_service_unchanged_with_forwarding_headers(
    tmp_path: Path, upstreams: tuple[str, str]
) -> None:
    # Given a gateway in front of one orders instance, with identity on the other
    async with gateway_client(tmp_path, identity_url=upstreams[1], orders_url=upstreams[0]) as client:
        # When a client calls an orders route with a query, a credential and a request id
        response = await client.get(
            "/v1/orders/o-1?status=placed&limit=2", headers={**KEY, "X-Request-ID": "req-7"}
        )
    # Then the orders instance saw the same request, plus who forwarded it and whom the edge verified;
    # its answer comes back whole, with the rate limit
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "a"
    assert response.headers["x-request-id"] == "req-7"
    assert response.headers["ratelimit-policy"] == "600;w=60;burst=100"
    assert response.headers["ratelimit-remaining"] == "100"
    echoed: dict[str, Any] = response.json()
    assert echoed == {
        "instance": "a",
        "method": "GET",
        "path": "/v1/orders/o-1",
        "query": "status=placed&limit=2",
        "body_length": 0,
        "forwarded_for": "127.0.0.1",
        "request_id": "req-7",
        "authorization": f"Bearer {API_KEY}",
        "identity": {"x-doorstep-tenant": "t-1", "x-doorstep-subject": "k-1", "x-doorstep-kind": "api_key"},
    }


async def test_identity_headers_from_the_client_never_reach_a_service(
    tmp_path: Path, upstreams: tuple[str, str]
) -> None:
    # Given a gateway in front of orders and integrations
    async with gateway_client(
        tmp_path, identity_url=upstreams[1], orders_url=upstreams[0], integrations_url=upstreams[0]
    ) as client:
        # When a client claims another tenant in the headers the gateway forwards identity with
        response = await client.get(
            "/v1/orders", headers={**KEY, "X-Doorstep-Tenant": "t-victim", "X-Doorstep-Kind": "user"}
        )
        # And an anonymous partner does the same on a public webhook
        webhook = await client.post(
            "/v1/integrations/webhooks/doorstep/tok", content=b"{}", headers={"X-Doorstep-Tenant": "t-victim"}
        )
    # Then the service sees the verified identity only, and none for the anonymous call
    assert response.status_code == 200
    assert response.json()["identity"] == {
        "x-doorstep-tenant": "t-1",
        "x-doorstep-subject": "k-1",
        "x-doorstep-kind": "api_key",
    }
    assert webhook.status_code == 201
    assert webhook.json()["identity"] == {}


async def test_the_edge_refuses_what_it_cannot_verify_before_any_service_is_asked(
    tmp_path: Path, upstreams: tuple[str, str]
) -> None:
    # Given a gateway whose identity serves an empty JWKS
    async with gateway_client(tmp_path, identity_url=upstreams[1], orders_url=upstreams[0]) as client:
        # When clients call without a credential, with a token no key verifies, and with an unknown key
        missing = await client.get("/v1/orders")
        bad_jwt = await client.get(
            "/v1/orders", headers={"Authorization": "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.e30.c2ln"}
        )
        unknown = await client.get("/v1/orders", headers={"Authorization": "Bearer dsk_unknown"})
    # Then each is a 401 problem from the gateway
    for response in (missing, bad_jwt, unknown):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "https://doorstep.dev/problems/unauthenticated"
        assert "x-upstream" not in response.headers


async def test_the_jwks_is_identity_s_and_introspection_is_not_reachable(
    tmp_path: Path, upstreams: tuple[str, str]
) -> None:
    # Given a gateway with identity on instance b
    async with gateway_client(tmp_path, identity_url=upstreams[1]) as client:
        # When an anonymous client fetches the JWKS, and a client with a valid key asks to introspect
        jwks = await client.get("/.well-known/jwks.json")
        introspect = await client.post("/v1/identity/introspect", json={"credential": API_KEY}, headers=KEY)
    # Then the JWKS comes from identity, and introspection does not exist from outside
    assert jwks.status_code == 200
    assert jwks.json() == {"keys": []}
    assert jwks.headers["x-upstream"] == "b"
    assert introspect.status_code == 404
    assert introspect.json()["type"] == "https://doorstep.dev/problems/not-found"


async def test_a_large_body_is_streamed_through(tmp_path: Path, upstreams: tuple[str, str]) -> None:
    # Given a gateway in front of integrations
    async with gateway_client(tmp_path, identity_url=upstreams[1], integrations_url=upstreams[0]) as client:

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"x" * 65536

        # When a partner streams 4 MiB without a length to its (public) webhook
        response = await client.post("/v1/integrations/webhooks/doorstep/t", content=chunks())
    # Then all of it arrives, and the upstream's status comes back
    assert response.status_code == 201
    assert response.json()["body_length"] == 64 * 65536


async def test_a_large_answer_is_streamed_back(tmp_path: Path) -> None:
    # Given an orders upstream whose answer is 2 MiB
    big = FastAPI()

    @big.get("/v1/orders/export")
    async def export() -> JSONResponse:
        return JSONResponse({"blob": "y" * (2 * 1024 * 1024)})

    async with (
        serving(big) as orders,
        serving(echo_app("identity")) as identity,
        gateway_client(tmp_path, identity_url=identity, orders_url=orders) as client,
    ):
        # When a client asks for it
        response = await client.get("/v1/orders/export", headers=KEY)
    # Then it arrives whole
    assert response.status_code == 200
    assert len(response.json()["blob"]) == 2 * 1024 * 1024


async def test_instances_of_a_service_take_turns(tmp_path: Path, upstreams: tuple[str, str]) -> None:
    # Given two orders instances behind the gateway
    async with gateway_client(tmp_path, identity_url=upstreams[1], orders_url=",".join(upstreams)) as client:
        # When four requests arrive
        served = [(await client.get("/v1/orders", headers=KEY)).json()["instance"] for _ in range(4)]
    # Then they alternate
    assert served == ["a", "b", "a", "b"]


async def test_an_area_no_service_owns_is_a_404_problem(tmp_path: Path, upstreams: tuple[str, str]) -> None:
    # Given a gateway that knows identity and orders only
    async with gateway_client(tmp_path, identity_url=upstreams[1], orders_url=upstreams[0]) as client:
        # When a client asks for an unknown area, and for one whose service is not configured
        unknown = await client.get("/v1/nowhere/x", headers=KEY)
        unconfigured = await client.get("/v1/integrations/connections", headers=KEY)
    # Then both are 404 problems
    for response in (unknown, unconfigured):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_an_unreachable_service_is_a_502_problem(tmp_path: Path, upstreams: tuple[str, str]) -> None:
    # Given a gateway whose orders URL points at a port nothing listens on
    unused = f"http://127.0.0.1:{free_port()}"
    async with gateway_client(tmp_path, identity_url=upstreams[1], orders_url=unused) as client:
        # When a client calls orders
        response = await client.get("/v1/orders", headers=KEY)
    # Then the gateway says so in a problem a client can retry on
    assert response.status_code == 502
    assert response.json()["type"] == "https://doorstep.dev/problems/upstream-unavailable"


async def test_an_unreachable_identity_is_a_503_problem(tmp_path: Path, upstreams: tuple[str, str]) -> None:
    # Given a gateway whose identity URL points at a port nothing listens on
    unused = f"http://127.0.0.1:{free_port()}"
    async with gateway_client(tmp_path, identity_url=unused, orders_url=upstreams[0]) as client:
        # When a client with an API key calls orders
        response = await client.get("/v1/orders", headers=KEY)
    # Then nothing is let through unverified
    assert response.status_code == 503
    assert response.json()["type"] == "https://doorstep.dev/problems/service-unavailable"


def test_a_gateway_without_identity_does_not_start(tmp_path: Path) -> None:
    # Given settings without an identity URL, then building the gateway says what is missing
    with pytest.raises(RuntimeError, match="DOORSTEP_IDENTITY_URL"):
        build_gateway(settings_for(tmp_path, orders_url="http://127.0.0.1:1"))
