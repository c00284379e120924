"""The identity HTTP API on the all-in-one platform: the tenant, its API keys and key introspection."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.platform import RunningPlatform, running_platform, settings_for

from doorstep.gateway.edge import internal
from doorstep.kernel.errors import PROBLEM_BASE
from doorstep.kernel.permissions import TENANT_PERMISSIONS

PROBLEM_JSON = "application/problem+json"


async def test_the_tenant_of_the_credential_is_returned(platform: RunningPlatform) -> None:
    # Given a tenant named Acme
    tenant = await platform.new_tenant("Acme")

    # When it asks for its tenant
    response = await platform.client.get("/v1/identity/tenant", headers=tenant.headers)

    # Then it gets its own id and name
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == tenant.tenant_id
    assert body["name"] == "Acme"
    assert set(body) == {"id", "name", "created_at"}


async def test_a_request_without_a_credential_is_a_401_problem(platform: RunningPlatform) -> None:
    # Given no credential at all, and one that is not a Doorstep key
    # When each asks for the tenant
    missing = await platform.client.get("/v1/identity/tenant")
    garbage = await platform.client.get("/v1/identity/tenant", headers={"Authorization": "Bearer nonsense"})

    # Then both are 401 problems that ask for a bearer token
    for response in (missing, garbage):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["type"] == PROBLEM_BASE + "unauthenticated"


async def test_a_created_key_is_shown_once_and_works_as_a_bearer_token(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant("Acme")

    # When it creates a key named "ci"
    created = await platform.client.post("/v1/identity/api-keys", json={"name": "ci"}, headers=tenant.headers)

    # Then the key comes back once in plaintext, with its display prefix and no revocation
    assert created.status_code == 201
    key = created.json()
    assert set(key) == {"id", "name", "prefix", "scopes", "expires_at", "created_at", "revoked_at", "api_key"}
    assert key["name"] == "ci"
    assert key["api_key"].startswith("dsk_")
    assert key["prefix"] == key["api_key"][:10]
    assert key["revoked_at"] is None
    # And it authenticates as the same tenant
    me = await platform.client.get(
        "/v1/identity/tenant", headers={"Authorization": f"Bearer {key['api_key']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == tenant.tenant_id


async def test_an_empty_key_name_is_a_422_naming_the_field(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it creates a key with an empty name
    response = await platform.client.post("/v1/identity/api-keys", json={"name": ""}, headers=tenant.headers)

    # Then the problem names the field
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["name"]


async def test_the_key_list_shows_prefixes_never_secrets(platform: RunningPlatform) -> None:
    # Given a tenant with its default key and one more
    tenant = await platform.new_tenant()
    created = await platform.client.post("/v1/identity/api-keys", json={"name": "ci"}, headers=tenant.headers)
    second = created.json()

    # When it lists its keys
    response = await platform.client.get("/v1/identity/api-keys", headers=tenant.headers)

    # Then both are listed with their prefixes, and neither plaintext appears anywhere in the answer
    assert response.status_code == 200
    items = response.json()["items"]
    assert sorted(item["name"] for item in items) == ["ci", "default"]
    by_name = {item["name"]: item for item in items}
    assert by_name["ci"]["id"] == second["id"]
    assert by_name["ci"]["prefix"] == second["api_key"][:10]
    assert by_name["default"]["prefix"] == tenant.api_key[:10]
    fields = {"id", "name", "prefix", "scopes", "expires_at", "created_at", "revoked_at"}
    assert all(set(item) == fields for item in items)
    assert tenant.api_key not in response.text
    assert second["api_key"] not in response.text


async def test_a_revoked_key_is_refused_everywhere_at_once_without_a_cache(tmp_path: Path) -> None:
    # Given a platform that does not cache principals, and a tenant with a second key
    async with running_platform(settings_for(tmp_path, api_key_cache_seconds=0)) as platform:
        tenant = await platform.new_tenant()
        created = await platform.client.post(
            "/v1/identity/api-keys", json={"name": "ci"}, headers=tenant.headers
        )
        key = created.json()
        second = {"Authorization": f"Bearer {key['api_key']}"}
        assert (await platform.client.get("/v1/orders", headers=second)).status_code == 200

        # When the tenant revokes the second key
        revoked = await platform.client.delete(f"/v1/identity/api-keys/{key['id']}", headers=tenant.headers)

        # Then the revocation is answered with no content
        assert revoked.status_code == 204
        assert revoked.content == b""
        # And the key is refused by identity and by the other services
        for path in ("/v1/identity/tenant", "/v1/orders", "/v1/integrations/connections"):
            refused = await platform.client.get(path, headers=second)
            assert refused.status_code == 401, path
            assert refused.json()["type"] == PROBLEM_BASE + "unauthenticated"
        # And the list shows when it was revoked, while the default key keeps working
        listed = await platform.client.get("/v1/identity/api-keys", headers=tenant.headers)
        assert listed.status_code == 200
        revoked_at = {item["name"]: item["revoked_at"] for item in listed.json()["items"]}
        assert revoked_at["ci"] is not None
        assert revoked_at["default"] is None
        assert (await platform.client.get("/v1/orders", headers=tenant.headers)).status_code == 200


async def test_revoking_twice_keeps_the_first_revocation_time(platform: RunningPlatform) -> None:
    # Given a tenant that revoked a key
    tenant = await platform.new_tenant()
    key = (
        await platform.client.post("/v1/identity/api-keys", json={"name": "ci"}, headers=tenant.headers)
    ).json()
    await platform.client.delete(f"/v1/identity/api-keys/{key['id']}", headers=tenant.headers)
    first = (await platform.client.get("/v1/identity/api-keys", headers=tenant.headers)).json()["items"]

    # When it revokes the same key again
    again = await platform.client.delete(f"/v1/identity/api-keys/{key['id']}", headers=tenant.headers)

    # Then that is fine and the revocation time does not move
    assert again.status_code == 204
    second = (await platform.client.get("/v1/identity/api-keys", headers=tenant.headers)).json()["items"]
    assert second == first


async def test_a_tenant_cannot_revoke_another_tenants_key(platform: RunningPlatform) -> None:
    # Given tenants A and B
    tenant_a = await platform.new_tenant("A")
    tenant_b = await platform.new_tenant("B")
    keys_a = (await platform.client.get("/v1/identity/api-keys", headers=tenant_a.headers)).json()["items"]
    [key_a] = keys_a

    # When B tries to revoke A's key
    response = await platform.client.delete(f"/v1/identity/api-keys/{key_a['id']}", headers=tenant_b.headers)

    # Then B is told there is no such key, and A's key still works and is not revoked
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEM_BASE + "api-key-not-found"
    assert (await platform.client.get("/v1/identity/tenant", headers=tenant_a.headers)).status_code == 200
    after = (await platform.client.get("/v1/identity/api-keys", headers=tenant_a.headers)).json()["items"]
    assert after == keys_a
    # And B does not see A's key either
    keys_b = (await platform.client.get("/v1/identity/api-keys", headers=tenant_b.headers)).json()["items"]
    assert [item["prefix"] for item in keys_b] == [tenant_b.api_key[:10]]


async def test_revoking_an_unknown_key_is_a_404(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it revokes a key id that does not exist
    response = await platform.client.delete("/v1/identity/api-keys/no-such-key", headers=tenant.headers)

    # Then it is a 404 problem
    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM_BASE + "api-key-not-found"


async def test_introspection_resolves_a_live_key_to_its_principal(platform: RunningPlatform) -> None:
    # Given a tenant with its default key
    tenant = await platform.new_tenant()
    [key] = (await platform.client.get("/v1/identity/api-keys", headers=tenant.headers)).json()["items"]

    # When the key is introspected
    async with _internal_client(platform) as client:
        response = await client.post("/v1/identity/introspect", json={"credential": tenant.api_key})

    # Then it is active, for that tenant, with the key as the subject
    assert response.status_code == 200
    assert response.json() == {
        "active": True,
        "tenant_id": tenant.tenant_id,
        "subject": key["id"],
        "kind": "api_key",
        "permissions": sorted(TENANT_PERMISSIONS),
        "roles": [],
        "reach": "tenant",
        "merchant_ids": [],
        "token_id": None,
        "expires_at": None,
    }


async def test_introspection_says_only_inactive_for_anything_else(platform: RunningPlatform) -> None:
    # Given a tenant with a key it has revoked
    tenant = await platform.new_tenant()
    key = (
        await platform.client.post("/v1/identity/api-keys", json={"name": "ci"}, headers=tenant.headers)
    ).json()
    await platform.client.delete(f"/v1/identity/api-keys/{key['id']}", headers=tenant.headers)

    # When garbage, a made-up key with the right prefix, and the revoked key are introspected
    for credential in ("garbage", "dsk_" + "x" * 43, key["api_key"]):
        async with _internal_client(platform) as client:
            response = await client.post("/v1/identity/introspect", json={"credential": credential})

        # Then each is inactive, and nothing says why
        assert response.status_code == 200
        assert response.json() == {
            "active": False,
            "tenant_id": None,
            "subject": None,
            "kind": None,
            "permissions": [],
            "roles": [],
            "reach": None,
            "merchant_ids": [],
            "token_id": None,
            "expires_at": None,
        }


def _internal_client(platform: RunningPlatform) -> httpx.AsyncClient:
    """Introspection is for the services only: the edge refuses it from outside, so ask from inside."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=internal(platform.app)), base_url="http://identity"
    )


async def test_the_edge_refuses_introspection_from_outside(platform: RunningPlatform) -> None:
    # When a client asks the platform to introspect a key
    tenant = await platform.new_tenant()
    response = await platform.client.post("/v1/identity/introspect", json={"credential": tenant.api_key})
    # Then the route does not exist for it
    assert response.status_code == 404
