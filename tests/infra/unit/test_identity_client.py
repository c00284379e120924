"""The other services' view of identity: introspection answers, caching, and identity being down."""

import httpx
import pytest

from doorstep.infra.identity_client import HttpAuthenticator, IdentityUnavailable
from doorstep.kernel.auth import Principal

ACTIVE = {"active": True, "tenant_id": "t-1", "subject": "k-1", "kind": "api_key", "scopes": []}


def identity_answering(status: int, body: dict[str, object], calls: list[str]) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(status, json=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://identity")


async def test_an_active_key_becomes_a_principal_and_is_cached() -> None:
    # Given identity knows the key
    calls: list[str] = []
    authenticator = HttpAuthenticator(identity_answering(200, ACTIVE, calls), cache_seconds=60)
    # When the same key is checked twice
    first = await authenticator.authenticate("dsk_abc")
    second = await authenticator.authenticate("dsk_abc")
    # Then it is the tenant's principal, and identity was asked once
    assert first == second == Principal(tenant_id="t-1", subject="k-1", kind="api_key")
    assert calls == ["/v1/identity/introspect"]


async def test_an_inactive_key_is_no_principal_and_is_not_cached() -> None:
    # Given identity does not know the key
    calls: list[str] = []
    authenticator = HttpAuthenticator(identity_answering(200, {"active": False}, calls), cache_seconds=60)
    # When it is checked twice
    # Then there is no principal, and identity was asked both times
    assert await authenticator.authenticate("dsk_nope") is None
    assert await authenticator.authenticate("dsk_nope") is None
    assert len(calls) == 2


async def test_identity_failing_is_a_503_problem_not_an_internal_error() -> None:
    # Given identity answers 500
    authenticator = HttpAuthenticator(identity_answering(500, {}, []), cache_seconds=0)
    # When a key is checked
    with pytest.raises(IdentityUnavailable) as raised:
        await authenticator.authenticate("dsk_abc")
    # Then the caller gets a retryable 503
    assert raised.value.status == 503
    assert raised.value.slug == "service-unavailable"
