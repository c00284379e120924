"""A local server that speaks DoorDash Drive v2 and Uber Direct as documented, for the courier tests.

It checks what the networks check (DoorDash's JWT, Uber's OAuth token), keeps deliveries in memory,
and can be told to fail the next call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web

DD_DEVELOPER_ID = "dev-1234"
DD_KEY_ID = "key-5678"
DD_SIGNING_SECRET = base64.urlsafe_b64encode(b"a-doordash-signing-secret-32byte").decode().rstrip("=")
UBER_CUSTOMER_ID = "cus_7f3c"
UBER_CLIENT_ID = "uber-client"
UBER_CLIENT_SECRET = "uber-client-secret"
UBER_SIGNING_KEY = "uber-webhook-signing-key"
UBER_TOKEN = "uber-access-token-1"


def uber_signature(body: bytes) -> str:
    return hmac.new(UBER_SIGNING_KEY.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class FakeCouriers:
    base_url: str = ""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_next: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    token_requests: int = 0

    def _failure(self) -> web.Response | None:
        if self.fail_next:
            status, body = self.fail_next.pop(0)
            return web.json_response(body, status=status)
        return None

    async def _doordash(self, request: web.Request) -> dict[str, Any] | web.Response:
        auth = request.headers.get("Authorization", "")
        try:
            header = jwt.get_unverified_header(auth.removeprefix("Bearer "))
            claims = jwt.decode(
                auth.removeprefix("Bearer "),
                base64.urlsafe_b64decode(DD_SIGNING_SECRET + "=" * (-len(DD_SIGNING_SECRET) % 4)),
                algorithms=["HS256"],
                audience="doordash",
                issuer=DD_DEVELOPER_ID,
            )
        except jwt.PyJWTError as error:
            return web.json_response({"code": "authentication_error", "message": str(error)}, status=401)
        if (
            header.get("dd-ver") != "DD-JWT-V1"
            or header.get("kid") != DD_KEY_ID
            or claims["kid"] != DD_KEY_ID
        ):
            return web.json_response({"code": "authentication_error", "message": "bad header"}, status=401)
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, body))
        return body if isinstance(body, dict) else {}

    async def dd_quote(self, request: web.Request) -> web.Response:
        body = await self._doordash(request)
        if isinstance(body, web.Response):
            return body
        if (failure := self._failure()) is not None:
            return failure
        external_id = body["external_delivery_id"]
        self.deliveries[external_id] = {**body, "delivery_status": "quote"}
        return web.json_response(
            {
                "external_delivery_id": external_id,
                "currency": body.get("currency", "USD"),
                "delivery_status": "quote",
                "fee": 975,
                "pickup_time_estimated": "2026-11-21T18:10:00Z",
                "dropoff_time_estimated": "2026-11-21T18:32:00Z",
                "expires_at": "2099-01-01T00:00:00Z",
            }
        )

    def _dd_delivery(self, external_id: str) -> dict[str, Any]:
        stored = self.deliveries[external_id]
        return {
            "external_delivery_id": external_id,
            "currency": stored.get("currency", "USD"),
            "delivery_status": stored["delivery_status"],
            "fee": 975,
            "tracking_url": f"https://doordash.example/track/{external_id}",
        }

    async def dd_accept(self, request: web.Request) -> web.Response:
        body = await self._doordash(request)
        if isinstance(body, web.Response):
            return body
        if (failure := self._failure()) is not None:
            return failure
        external_id = request.match_info["external_delivery_id"]
        if external_id not in self.deliveries:
            return web.json_response({"code": "not_found", "message": "quote not found"}, status=404)
        self.deliveries[external_id]["delivery_status"] = "created"
        return web.json_response(self._dd_delivery(external_id))

    async def dd_create(self, request: web.Request) -> web.Response:
        body = await self._doordash(request)
        if isinstance(body, web.Response):
            return body
        if (failure := self._failure()) is not None:
            return failure
        external_id = body["external_delivery_id"]
        self.deliveries[external_id] = {**body, "delivery_status": "created"}
        return web.json_response(self._dd_delivery(external_id))

    async def dd_get(self, request: web.Request) -> web.Response:
        body = await self._doordash(request)
        if isinstance(body, web.Response):
            return body
        return web.json_response(self._dd_delivery(request.match_info["external_delivery_id"]))

    async def dd_cancel(self, request: web.Request) -> web.Response:
        body = await self._doordash(request)
        if isinstance(body, web.Response):
            return body
        if (failure := self._failure()) is not None:
            return failure
        external_id = request.match_info["external_delivery_id"]
        self.deliveries[external_id]["delivery_status"] = "cancelled"
        return web.json_response(self._dd_delivery(external_id))

    async def uber_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests += 1
        good = (
            form.get("client_id") == UBER_CLIENT_ID
            and form.get("client_secret") == UBER_CLIENT_SECRET
            and form.get("grant_type") == "client_credentials"
            and form.get("scope") == "eats.deliveries"
        )
        if not good:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(
            {
                "access_token": UBER_TOKEN,
                "token_type": "Bearer",
                "expires_in": 2592000,
                "scope": "eats.deliveries",
            }
        )

    async def _uber(self, request: web.Request) -> dict[str, Any] | web.Response:
        if request.headers.get("Authorization") != f"Bearer {UBER_TOKEN}":
            return web.json_response({"code": "unauthorized", "message": "bad token"}, status=401)
        if request.match_info["customer_id"] != UBER_CUSTOMER_ID:
            return web.json_response({"code": "customer_not_found", "message": "no customer"}, status=404)
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, body))
        if (failure := self._failure()) is not None:
            return failure
        return body if isinstance(body, dict) else {}

    async def uber_quote(self, request: web.Request) -> web.Response:
        body = await self._uber(request)
        if isinstance(body, web.Response):
            return body
        return web.json_response(
            {
                "kind": "delivery_quote",
                "id": "dqt_6gQ2dt31TjiOPfwux",
                "created": "2026-11-21T18:00:00.000Z",
                "expires": "2099-01-01T00:15:00.000Z",
                "fee": 1250,
                "currency_type": "EUR",
                "dropoff_eta": "2026-11-21T18:40:00.000Z",
                "duration": 40,
                "pickup_duration": 12,
            }
        )

    def _uber_delivery(self, delivery_id: str) -> dict[str, Any]:
        stored = self.deliveries[delivery_id]
        return {
            "kind": "delivery",
            "id": delivery_id,
            "quote_id": stored.get("quote_id"),
            "status": stored["status"],
            "fee": 1250,
            "currency": "eur",
            "tracking_url": f"https://delivery.uber.example/orders/{delivery_id}",
            "external_id": stored.get("external_id"),
        }

    async def uber_create(self, request: web.Request) -> web.Response:
        body = await self._uber(request)
        if isinstance(body, web.Response):
            return body
        delivery_id = f"del_{len(self.deliveries) + 1:04d}"
        self.deliveries[delivery_id] = {**body, "status": "pending"}
        return web.json_response(self._uber_delivery(delivery_id))

    async def uber_get(self, request: web.Request) -> web.Response:
        body = await self._uber(request)
        if isinstance(body, web.Response):
            return body
        return web.json_response(self._uber_delivery(request.match_info["delivery_id"]))

    async def uber_cancel(self, request: web.Request) -> web.Response:
        body = await self._uber(request)
        if isinstance(body, web.Response):
            return body
        self.deliveries[request.match_info["delivery_id"]]["status"] = "canceled"
        return web.json_response(self._uber_delivery(request.match_info["delivery_id"]))


@asynccontextmanager
async def fake_couriers() -> AsyncIterator[FakeCouriers]:
    fake = FakeCouriers()
    app = web.Application()
    app.router.add_post("/drive/v2/quotes", fake.dd_quote)
    app.router.add_post("/drive/v2/quotes/{external_delivery_id}/accept", fake.dd_accept)
    app.router.add_post("/drive/v2/deliveries", fake.dd_create)
    app.router.add_get("/drive/v2/deliveries/{external_delivery_id}", fake.dd_get)
    app.router.add_put("/drive/v2/deliveries/{external_delivery_id}/cancel", fake.dd_cancel)
    app.router.add_post("/oauth/v2/token", fake.uber_token)
    app.router.add_post("/v1/customers/{customer_id}/delivery_quotes", fake.uber_quote)
    app.router.add_post("/v1/customers/{customer_id}/deliveries", fake.uber_create)
    app.router.add_get("/v1/customers/{customer_id}/deliveries/{delivery_id}", fake.uber_get)
    app.router.add_post("/v1/customers/{customer_id}/deliveries/{delivery_id}/cancel", fake.uber_cancel)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


def doordash_account(base_url: str) -> dict[str, Any]:
    return {
        "provider": "doordash_drive",
        "name": "DoorDash sandbox",
        "credentials": {
            "developer_id": DD_DEVELOPER_ID,
            "key_id": DD_KEY_ID,
            "signing_secret": DD_SIGNING_SECRET,
        },
        "settings": {"base_url": base_url},
    }


def uber_account(base_url: str) -> dict[str, Any]:
    return {
        "provider": "uber_direct",
        "name": "Uber Direct sandbox",
        "credentials": {
            "customer_id": UBER_CUSTOMER_ID,
            "client_id": UBER_CLIENT_ID,
            "client_secret": UBER_CLIENT_SECRET,
            "webhook_signing_key": UBER_SIGNING_KEY,
        },
        "settings": {"base_url": base_url, "auth_url": f"{base_url}/oauth/v2/token"},
    }


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
