"""The gateway as a client sees it: routing by area, faithful forwarding, streaming, and a dead upstream."""

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def echo_app(name: str) -> FastAPI:
    """An upstream that answers with what it received."""
    app = FastAPI()

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


def gateway_client(tmp_path: Path, **urls: str) -> httpx.AsyncClient:
    gateway = build_gateway(settings_for(tmp_path, **urls))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway")


async def test_a_request_reaches_the_owning_service_unchanged_with_forwarding_headers(
    tmp_path: Path, upstreams: tuple[str, str]
) -> None:
    # Given a gateway in front of one orders instance
    async with gateway_client(tmp_path, orders_url=upstreams[0]) as client:
        # When a client calls an orders route with a query, a credential and a request id
        response = await client.get(
            "/v1/orders/o-1?status=placed&limit=2",
            headers={"Authorization": "Bearer dsk_x", "X-Request-ID": "req-7"},
        )
    # Then the orders instance saw the same request, plus who forwarded it; its answer comes back whole
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "a"
    assert response.headers["x-request-id"] == "req-7"
    echoed: dict[str, Any] = response.json()
    assert echoed == {
        "instance": "a",
        "method": "GET",
        "path": "/v1/orders/o-1",
        "query": "status=placed&limit=2",
        "body_length": 0,
        "forwarded_for": "127.0.0.1",
        "request_id": "req-7",
        "authorization": "Bearer dsk_x",
    }


async def test_a_large_body_is_streamed_through(tmp_path: Path, upstreams: tuple[str, str]) -> None:
    # Given a gateway in front of integrations
    async with gateway_client(tmp_path, integrations_url=upstreams[0]) as client:

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"x" * 65536

        # When a client streams 4 MiB without a length
        response = await client.post("/v1/integrations/webhooks/doorstep/t", content=chunks())
    # Then all of it arrives, and the upstream's status comes back
    assert response.status_code == 201
    assert response.json()["body_length"] == 64 * 65536


async def test_instances_of_a_service_take_turns(tmp_path: Path, upstreams: tuple[str, str]) -> None:
    # Given two orders instances behind the gateway
    async with gateway_client(tmp_path, orders_url=",".join(upstreams)) as client:
        # When four requests arrive
        served = [(await client.get("/v1/orders")).json()["instance"] for _ in range(4)]
    # Then they alternate
    assert served == ["a", "b", "a", "b"]


async def test_an_area_no_service_owns_is_a_404_problem(tmp_path: Path, upstreams: tuple[str, str]) -> None:
    # Given a gateway that knows orders only
    async with gateway_client(tmp_path, orders_url=upstreams[0]) as client:
        # When a client asks for an unknown area, and for one whose service is not configured
        unknown = await client.get("/v1/nowhere/x")
        unconfigured = await client.get("/v1/identity/tenant")
    # Then both are 404 problems
    for response in (unknown, unconfigured):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_an_unreachable_service_is_a_502_problem(tmp_path: Path) -> None:
    # Given a gateway whose orders URL points at a port nothing listens on
    async with gateway_client(tmp_path, orders_url=f"http://127.0.0.1:{free_port()}") as client:
        # When a client calls orders
        response = await client.get("/v1/orders")
    # Then the gateway says so in a problem a client can retry on
    assert response.status_code == 502
    assert response.json()["type"] == "https://doorstep.dev/problems/upstream-unavailable"
