"""WooCommerce, Shopify, Square and Uber Eats on 127.0.0.1, answering the status calls as their
documentation describes them, and recording every call."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WOO_KEY, WOO_SECRET = "ck_status_reports", "cs_status_reports"
SHOPIFY_TOKEN = "shpat_status_reports"
SQUARE_TOKEN = "EAAAl-status-reports"
UBER_CLIENT_ID, UBER_SECRET = "uber-client", "uber-client-secret-0123456789"


@dataclass
class PlatformApis:
    base_url: str = ""
    # (method, path, JSON body) of every call but token requests
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    # statuses to answer the next calls with, before answering normally
    failures: list[int] = field(default_factory=list)
    square_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    shopify_fulfillment_orders: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    async def _take(self, request: web.Request) -> web.Response | None:
        body = await request.json() if request.can_read_body else None
        self.calls.append((request.method, request.path, body))
        if self.failures:
            status = self.failures.pop(0)
            return web.json_response({"message": "try again later"}, status=status)
        return None

    async def woocommerce(self, request: web.Request) -> web.Response:
        if failed := await self._take(request):
            return failed
        expected = "Basic " + base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"code": "woocommerce_rest_cannot_edit"}, status=401)
        body = self.calls[-1][2]
        return web.json_response({"id": int(request.match_info["id"]), "status": body["status"]})

    def _shopify_authorised(self, request: web.Request) -> bool:
        return request.headers.get("X-Shopify-Access-Token") == SHOPIFY_TOKEN

    async def shopify_fulfillment_order_list(self, request: web.Request) -> web.Response:
        if failed := await self._take(request):
            return failed
        if not self._shopify_authorised(request):
            return web.json_response({"errors": "Invalid API key or access token"}, status=401)
        listed = self.shopify_fulfillment_orders.get(request.match_info["id"], [])
        return web.json_response({"fulfillment_orders": listed})

    async def shopify_fulfillments(self, request: web.Request) -> web.Response:
        if failed := await self._take(request):
            return failed
        if not self._shopify_authorised(request):
            return web.json_response({"errors": "Invalid API key or access token"}, status=401)
        return web.json_response({"fulfillment": {"id": 255858046, "status": "success"}}, status=201)

    async def shopify_cancel(self, request: web.Request) -> web.Response:
        if failed := await self._take(request):
            return failed
        if not self._shopify_authorised(request):
            return web.json_response({"errors": "Invalid API key or access token"}, status=401)
        return web.json_response({"order": {"id": int(request.match_info["id"]), "cancel_reason": "other"}})

    async def square_order(self, request: web.Request) -> web.Response:
        if failed := await self._take(request):
            return failed
        if request.headers.get("Authorization") != f"Bearer {SQUARE_TOKEN}":
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        order = self.square_orders.get(request.match_info["order_id"])
        if order is None:
            return web.json_response({"errors": [{"code": "NOT_FOUND"}]}, status=404)
        if request.method == "PUT":
            sparse = self.calls[-1][2]["order"]
            if sparse["version"] != order["version"]:
                return web.json_response({"errors": [{"code": "VERSION_MISMATCH"}]}, status=400)
            states = {f["uid"]: f["state"] for f in sparse["fulfillments"]}
            for fulfillment in order["fulfillments"]:
                fulfillment["state"] = states.get(fulfillment["uid"], fulfillment["state"])
            order["version"] += 1
        return web.json_response({"order": order})

    async def uber_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != UBER_CLIENT_ID or form.get("client_secret") != UBER_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": "uber-token", "token_type": "Bearer", "expires_in": 3600})

    async def uber_action(self, request: web.Request) -> web.Response:
        if failed := await self._take(request):
            return failed
        if request.headers.get("Authorization") != "Bearer uber-token":
            return web.json_response({"code": "unauthorized"}, status=401)
        return web.Response(status=204)

    async def uber_ready(self, request: web.Request) -> web.Response:
        """The Order Fulfillment API's "ready": an empty JSON body in, `{"status": "ok"}` out."""
        if failed := await self._take(request):
            return failed
        if request.headers.get("Authorization") != "Bearer uber-token":
            return web.json_response({"code": "unauthorized"}, status=401)
        if self.calls[-1][2] != {}:
            return web.json_response({"code": "bad_request", "message": "expected {}"}, status=400)
        return web.json_response({"status": "ok"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def platform_apis() -> AsyncIterator[PlatformApis]:
    apis = PlatformApis()
    app = web.Application()
    app.router.add_put("/wp-json/wc/v3/orders/{id}", apis.woocommerce)
    app.router.add_get(
        "/admin/api/2024-10/orders/{id}/fulfillment_orders.json", apis.shopify_fulfillment_order_list
    )
    app.router.add_post("/admin/api/2024-10/fulfillments.json", apis.shopify_fulfillments)
    app.router.add_post("/admin/api/2024-10/orders/{id}/cancel.json", apis.shopify_cancel)
    app.router.add_get("/v2/orders/{order_id}", apis.square_order)
    app.router.add_put("/v2/orders/{order_id}", apis.square_order)
    app.router.add_post("/oauth/v2/token", apis.uber_token)
    app.router.add_post("/v1/eats/orders/{id}/{action}", apis.uber_action)
    app.router.add_post("/v1/delivery/order/{id}/ready", apis.uber_ready)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    apis.base_url = f"http://127.0.0.1:{port}"
    try:
        yield apis
    finally:
        await runner.cleanup()
