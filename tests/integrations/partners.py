"""Partner platform APIs on 127.0.0.1 as their documentation describes them, for the fetch-details flows:
Square's `GET /v2/orders/{order_id}` and Uber's OAuth token endpoint plus `GET /v2/eats/order/{id}`."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class PartnerApi:
    base_url: str = ""
    square_token: str = "EAAAl-square-access-token"
    uber_client_id: str = "uber-client-id"
    uber_client_secret: str = ""
    uber_token_lifetime: int = 2_592_000
    # order id -> the order as the platform returns it now
    square_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    uber_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    # every request as (method, path, headers, form)
    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    down: bool = False

    def paths(self, method: str) -> list[str]:
        return [path for m, path, _, _ in self.requests if m == method]

    async def square_order(self, request: web.Request) -> web.Response:
        await self._record(request)
        if self.down:
            return web.json_response(
                {"errors": [{"category": "API_ERROR", "code": "SERVICE_UNAVAILABLE"}]}, status=503
            )
        if request.headers.get("Authorization") != f"Bearer {self.square_token}":
            return web.json_response(
                {"errors": [{"category": "AUTHENTICATION_ERROR", "code": "UNAUTHORIZED"}]}, status=401
            )
        if not request.headers.get("Square-Version"):
            return web.json_response(
                {"errors": [{"code": "BAD_REQUEST", "field": "Square-Version"}]}, status=400
            )
        order = self.square_orders.get(request.match_info["order_id"])
        if order is None:
            return web.json_response(
                {"errors": [{"category": "INVALID_REQUEST_ERROR", "code": "NOT_FOUND"}]}, status=404
            )
        return web.json_response({"order": order})

    async def uber_token(self, request: web.Request) -> web.Response:
        form = await self._record(request)
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.uber_client_id
            or form.get("client_secret") != self.uber_client_secret
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"uber-token-{len(self.issued_tokens) + 1}"
        self.issued_tokens.append(token)
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.uber_token_lifetime,
                "scope": form.get("scope", ""),
            }
        )

    async def uber_order(self, request: web.Request) -> web.Response:
        await self._record(request)
        if self.down:
            return web.json_response({"code": "service_unavailable"}, status=503)
        if request.headers.get("Authorization") not in {f"Bearer {t}" for t in self.issued_tokens}:
            return web.json_response({"code": "unauthorized"}, status=401)
        order = self.uber_orders.get(request.match_info["order_id"])
        if order is None:
            return web.json_response({"code": "not_found"}, status=404)
        return web.json_response(order)

    async def _record(self, request: web.Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.post()).items()} if request.method == "POST" else {}
        self.requests.append((request.method, request.path, dict(request.headers), form))
        return form


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def partner_api(api: PartnerApi | None = None) -> AsyncIterator[PartnerApi]:
    api = api or PartnerApi()
    app = web.Application()
    app.router.add_get("/v2/orders/{order_id}", api.square_order)
    app.router.add_post("/oauth/v2/token", api.uber_token)
    app.router.add_get("/v2/eats/order/{order_id}", api.uber_order)
    app.router.add_get("/v1/eats/order/{order_id}", api.uber_order)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    api.base_url = f"http://127.0.0.1:{port}"
    try:
        yield api
    finally:
        await runner.cleanup()
