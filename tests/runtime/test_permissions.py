"""Every endpoint declares what it needs, every role gets exactly that, and the docs table says so."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.platform import RunningPlatform, running_platform, settings_for

from doorstep.identity.domain.commands import CreateUser
from doorstep.kernel.permissions import DEFAULT_ROLES, Role
from doorstep.runtime.app import build_app
from doorstep.runtime.permission_table import endpoints, markdown
from doorstep.runtime.services import build_services, make_broker

DOCS = Path(__file__).parents[2] / "docs"
UNDECLARED = {"public", "signed-in"}


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """The all-in-one platform, with a burst large enough for one user to call every endpoint at once."""
    async with running_platform(settings_for(tmp_path, rate_limit_burst=1_000)) as running:
        yield running


def all_in_one(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = settings_for(tmp_path)
    return build_app(settings, build_services(settings), make_broker(settings))


def test_every_endpoint_declares_a_permission(tmp_path: Path) -> None:
    # Given every endpoint of every service
    found = endpoints(all_in_one(tmp_path))
    # Then there are endpoints, and each declares a permission, `signed-in` or `public`
    assert len(found) > 20
    assert [f"{e.method} {e.path}" for e in found if e.permission is None] == []


def test_the_permission_table_in_the_docs_is_current(tmp_path: Path) -> None:
    # Then docs/permissions.md is what `doorstep docs` writes now
    assert (DOCS / "permissions.md").read_text() == markdown(all_in_one(tmp_path))


def _concrete(path: str) -> str:
    """Any value for path parameters: the permission is checked before the object is looked up."""
    return (
        path.replace("{platform}", "shopify").replace("{role}", "customer").replace("{", "").replace("}", "")
    )


@pytest.mark.parametrize("role", [role.value for role in Role])
async def test_each_role_reaches_exactly_the_endpoints_its_permissions_allow(
    platform: RunningPlatform, role: str
) -> None:
    # Given a user with only this role, logged in
    tenant = await platform.new_tenant(f"Roles {role}")
    email = f"{role}@roles.test"
    await platform.services["identity"].bus.handle(
        CreateUser(
            tenant_id=tenant.tenant_id,
            email=email,
            password="a long enough password",
            name=role,
            roles=[role],
            merchant_ids=["m-1"] if role == Role.MERCHANT_STAFF else [],
        )
    )
    login = await platform.client.post(
        "/v1/identity/login",
        json={"tenant_id": tenant.tenant_id, "email": email, "password": "a long enough password"},
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    granted = DEFAULT_ROLES[Role(role)]
    # When it calls every endpoint that needs a permission
    for endpoint in endpoints(platform.app):
        if endpoint.permission in UNDECLARED or endpoint.permission is None:
            continue
        if endpoint.path.endswith("/logout"):
            continue
        response = await platform.client.request(
            endpoint.method, _concrete(endpoint.path), headers=headers, json={}
        )
        # Then a permission the role lacks is a 403 naming it; one it holds gets past the check
        where = f"{role}: {endpoint.method} {endpoint.path} -> {response.status_code} {response.text[:200]}"
        if endpoint.permission in granted:
            assert response.status_code not in (401, 403), where
        else:
            assert response.status_code == 403, where
            assert response.json()["permission"] == endpoint.permission, where
