"""The app factory's promise: every error is a problem with the request's id, even an unexpected one."""

import httpx
import structlog.testing
from fastapi import APIRouter

from doorstep.kernel.http import create_app


def app_with_a_broken_route() -> httpx.AsyncClient:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    app = create_app(service="test", routers=[router])
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    )


async def test_an_unexpected_error_is_a_500_problem_carrying_the_request_id() -> None:
    # Given a route with a bug
    async with app_with_a_broken_route() as client:
        # When it is called with a request id
        response = await client.get("/boom", headers={"X-Request-ID": "req-42"})
    # Then the answer is a 500 problem that names the request, in the body and the header
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "req-42"
    assert response.json() == {
        "type": "https://doorstep.dev/problems/internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": "the error was logged",
        "request_id": "req-42",
    }


async def test_a_wrong_method_is_a_405_problem_with_allow() -> None:
    # Given the same app
    async with app_with_a_broken_route() as client:
        # When a route is called with a method it does not have
        response = await client.post("/boom")
    # Then the problem keeps the Allow header
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["type"] == "https://doorstep.dev/problems/method-not-allowed"


async def test_an_unexpected_error_on_a_partner_webhook_logs_the_path_without_its_token() -> None:
    # Given a partner webhook route with a bug
    router = APIRouter()

    @router.post("/v1/integrations/webhooks/{platform}/{token}")
    async def webhook(platform: str, token: str) -> None:
        raise RuntimeError("a bug")

    app = create_app(service="test", routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    # When a partner calls it with its connection's secret token
    with structlog.testing.capture_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/v1/integrations/webhooks/shopify/secret-token-123")
    # Then the answer is a 500 and the log names the path with the token masked
    assert response.status_code == 500
    errors = [entry for entry in logs if entry["event"] == "unhandled_error"]
    assert [entry["path"] for entry in errors] == ["/v1/integrations/webhooks/shopify/***"]
    assert "secret-token-123" not in repr(logs)


async def test_a_database_that_cannot_be_reached_is_a_503_problem_not_a_500() -> None:
    # Given a route whose database refuses connections (asyncpg raises the socket's error)
    router = APIRouter()

    @router.get("/v1/orders")
    async def orders() -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    app = create_app(service="test", routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    # When it is called
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/v1/orders")
    # Then the answer is a 503 problem that says to try again, not an internal error
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"] == "https://doorstep.dev/problems/service-unavailable"
    assert response.json()["detail"] == "the database cannot be reached; try again shortly"
