"""Users and employees on the all-in-one platform: invitations, the grant rule, deactivation, /me, addresses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from tests.platform import RunningPlatform, Tenant, running_platform, scratch_postgres_database, settings_for

from doorstep.identity.adapters.tables import invitations, outbox
from doorstep.identity.domain.commands import CreateUser
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import PROBLEM_BASE
from doorstep.kernel.permissions import DEFAULT_ROLES, TENANT_PERMISSIONS, Role

PASSWORD = "correct horse battery"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
async def platform(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningPlatform]:
    """The all-in-one platform on SQLite files; on PostgreSQL too for the tests marked `BOTH_DATABASES`."""
    if getattr(request, "param", "sqlite") == "sqlite":
        async with running_platform(settings_for(tmp_path)) as running:
            yield running
        return
    server_url: str = request.getfixturevalue("postgres_server_url")
    async with (
        scratch_postgres_database(server_url) as url,
        running_platform(settings_for(tmp_path, database_url=url)) as running,
    ):
        yield running


# What differs between the databases: JSON lists searched as text, ILIKE, row locks, JSONB documents.
BOTH_DATABASES = pytest.mark.parametrize(
    "platform", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)], indirect=True
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_user(
    platform: RunningPlatform,
    tenant: Tenant,
    email: str,
    roles: list[str],
    *,
    merchant_ids: list[str] | None = None,
    name: str = "Someone",
) -> str:
    """A user as `doorstep user create` makes one: active, with a password."""
    user = await platform.services["identity"].bus.handle(
        CreateUser(
            tenant_id=tenant.tenant_id,
            email=email,
            password=PASSWORD,
            name=name,
            roles=roles,
            merchant_ids=merchant_ids or [],
        )
    )
    return str(user.id)


async def log_in(
    platform: RunningPlatform, tenant: Tenant, email: str, password: str = PASSWORD
) -> dict[str, Any]:
    response = await platform.client.post(
        "/v1/identity/login", json={"tenant_id": tenant.tenant_id, "email": email, "password": password}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def signed_in(
    platform: RunningPlatform, tenant: Tenant, email: str, roles: list[str], **kwargs: Any
) -> tuple[str, dict[str, str]]:
    user_id = await create_user(platform, tenant, email, roles, **kwargs)
    tokens = await log_in(platform, tenant, email)
    return user_id, bearer(tokens["access_token"])


async def invite(platform: RunningPlatform, headers: dict[str, str], **body: Any) -> Any:
    return await platform.client.post("/v1/identity/users", json=body, headers=headers)


async def outbox_events(platform: RunningPlatform, event_type: str) -> list[dict[str, Any]]:
    async with platform.services["identity"].database.reader() as session:
        rows = (
            await session.execute(
                select(outbox.c.envelope).where(outbox.c.type == event_type).order_by(outbox.c.seq)
            )
        ).all()
    return [json.loads(row.envelope)["data"] for row in rows]


async def audit_entries(platform: RunningPlatform, object_id: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in await outbox_events(platform, "doorstep.audit.recorded.v1")
        if entry["object_id"] == object_id
    ]


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + slug
    return body


def fields_of(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    return [error["field"] for error in response.json()["errors"]]


# --- Invitations ---------------------------------------------------------------------------------------


@BOTH_DATABASES
async def test_an_invited_employee_accepts_and_then_logs_in(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When its API key invites a dispatcher by email
    invited = await invite(
        platform, tenant.headers, email=" Dana@Example.com ", name="Dana", roles=["dispatcher"]
    )

    # Then the user exists, invited, and the token is shown once
    assert invited.status_code == 201, invited.text
    body = invited.json()
    assert body["email"] == "dana@example.com"
    assert body["status"] == "invited"
    assert body["roles"] == ["dispatcher"]
    assert body["merchant_ids"] == []
    assert body["invitation_token"].startswith("dsi_")
    token = body["invitation_token"]
    # And the invitation went out by email, its token marked sensitive
    [message] = await outbox_events(platform, "doorstep.notifications.requested.v1")
    assert message["channel"] == "email"
    assert message["to"] == "dana@example.com"
    assert message["template"] == "identity.invitation"
    assert message["params"]["token"] == token
    assert message["params"]["name"] == "Dana"
    assert message["sensitive"] == ["token"]
    # And the invitee cannot log in yet
    refused = await platform.client.post(
        "/v1/identity/login",
        json={"tenant_id": tenant.tenant_id, "email": "dana@example.com", "password": PASSWORD},
    )
    assert refused.status_code == 401

    # When the invitee accepts with a password and their full name
    accepted = await platform.client.post(
        "/v1/identity/invitations/accept", json={"token": token, "password": PASSWORD, "name": "Dana Fox"}
    )

    # Then they are signed in, active, with the dispatcher's permissions
    assert accepted.status_code == 200, accepted.text
    assert set(accepted.json()) == {"access_token", "refresh_token", "expires_in", "token_type"}
    me = await platform.client.get("/v1/identity/me", headers=bearer(accepted.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["status"] == "active"
    assert me.json()["name"] == "Dana Fox"
    assert me.json()["permissions"] == sorted(DEFAULT_ROLES[Role.DISPATCHER])
    # And the password logs in from now on
    await log_in(platform, tenant, "dana@example.com")
    # And the token cannot be used twice
    again = await platform.client.post(
        "/v1/identity/invitations/accept", json={"token": token, "password": "another password"}
    )
    assert_problem(again, 404, "invitation-invalid")
    # And the audit trail has both steps, without any password hash
    entries = await audit_entries(platform, body["id"])
    assert [entry["action"] for entry in entries] == ["user.invited", "user.invitation_accepted"]
    assert entries[0]["actor"].startswith("api_key:")
    assert entries[1]["actor"] == f"user:{body['id']}"
    assert entries[1]["before"]["status"] == "invited"
    assert entries[1]["after"]["status"] == "active"
    assert "password" not in json.dumps(entries)
    assert token not in json.dumps(entries)


async def test_an_invitation_by_phone_goes_out_by_sms(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it invites a driver who has no email
    invited = await invite(platform, tenant.headers, phone="+49 151 1234567", name="Ali", roles=["driver"])

    # Then the invitation goes to the phone, in E.164
    assert invited.status_code == 201, invited.text
    assert invited.json()["phone"] == "+491511234567"
    assert invited.json()["email"] is None
    [message] = await outbox_events(platform, "doorstep.notifications.requested.v1")
    assert (message["channel"], message["to"]) == ("sms", "+491511234567")


async def test_unknown_and_expired_invitations_are_404s(platform: RunningPlatform) -> None:
    # Given an invitation that expired
    tenant = await platform.new_tenant()
    invited = await invite(
        platform, tenant.headers, email="late@example.com", name="Late", roles=["employee"]
    )
    async with platform.services["identity"].database.writer_engine.begin() as connection:
        await connection.execute(update(invitations).values(expires_at=utcnow() - timedelta(seconds=1)))

    # When it, and a made-up token, are accepted
    for token in (invited.json()["invitation_token"], "dsi_made-up"):
        response = await platform.client.post(
            "/v1/identity/invitations/accept", json={"token": token, "password": PASSWORD}
        )

        # Then both are the same 404
        body = assert_problem(response, 404, "invitation-invalid")
        assert body["detail"] == "the invitation is unknown, used or expired"


async def test_a_short_password_on_accepting_is_a_422_naming_the_password(platform: RunningPlatform) -> None:
    # Given an invitation
    tenant = await platform.new_tenant()
    invited = await invite(platform, tenant.headers, email="new@example.com", name="New", roles=["employee"])

    # When it is accepted with a 9-character password
    response = await platform.client.post(
        "/v1/identity/invitations/accept",
        json={"token": invited.json()["invitation_token"], "password": "123456789"},
    )

    # Then the problem names the password, and the invitation is still open
    assert fields_of(response) == ["password"]
    ok = await platform.client.post(
        "/v1/identity/invitations/accept",
        json={"token": invited.json()["invitation_token"], "password": PASSWORD},
    )
    assert ok.status_code == 200


async def test_inviting_someone_registered_is_a_409(platform: RunningPlatform) -> None:
    # Given a user
    tenant = await platform.new_tenant()
    await create_user(platform, tenant, "taken@example.com", ["customer"])

    # When someone with the same email is invited
    response = await invite(platform, tenant.headers, email="TAKEN@example.com", name="X", roles=["employee"])

    # Then it is a conflict
    assert_problem(response, 409, "already-registered")


async def test_invitations_with_bad_input_are_422s_naming_the_field(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"email": "not-an-email", "name": "X", "roles": ["employee"]}, ["email"]),
        ({"phone": "12", "name": "X", "roles": ["employee"]}, ["phone"]),
        ({"name": "X", "roles": ["employee"]}, ["email"]),
        ({"email": "a@example.com", "name": " ", "roles": ["employee"]}, ["name"]),
        ({"email": "a@example.com", "name": "X\u0000", "roles": ["employee"]}, ["name"]),
        ({"email": "a@example.com", "name": "X", "roles": ["pilot"]}, ["roles"]),
        ({"email": "a@example.com", "name": "X", "roles": []}, ["roles"]),
        ({"email": "a@example.com", "name": "X", "roles": ["merchant_staff"]}, ["merchant_ids"]),
        (
            {"email": "a@example.com", "name": "X", "roles": ["merchant_staff"], "merchant_ids": [""]},
            ["merchant_ids.0"],
        ),
        ({"email": "a@example.com", "name": "X", "roles": ["employee"], "admin": True}, ["admin"]),
    ]
    for body, fields in cases:
        # When it invites with the bad input
        response = await invite(platform, tenant.headers, **body)

        # Then the problem names the field
        assert fields_of(response) == fields, body
    # And nobody was created
    listed = await platform.client.get("/v1/identity/users", headers=tenant.headers)
    assert listed.json()["items"] == []


# --- The grant rule ------------------------------------------------------------------------------------


async def _fulfilment_admin_who_manages_users(platform: RunningPlatform, tenant: Tenant) -> dict[str, str]:
    """The tenant lets fulfilment admins manage users; one signs in."""
    permissions = sorted(DEFAULT_ROLES[Role.FULFILMENT_ADMIN] | {"users.manage"})
    changed = await platform.client.put(
        "/v1/identity/roles/fulfilment_admin", json={"permissions": permissions}, headers=tenant.headers
    )
    assert changed.status_code == 200, changed.text
    _, headers = await signed_in(platform, tenant, "lead@example.com", ["fulfilment_admin"])
    return headers


async def test_nobody_grants_a_role_holding_more_than_they_do(platform: RunningPlatform) -> None:
    # Given a fulfilment admin who may manage users
    tenant = await platform.new_tenant()
    lead = await _fulfilment_admin_who_manages_users(platform, tenant)

    # When they invite a tenant admin
    response = await invite(platform, lead, email="boss@example.com", name="Boss", roles=["tenant_admin"])

    # Then it is refused, naming the role and what they lack
    body = assert_problem(response, 403, "role-not-grantable")
    assert body["role"] == "tenant_admin"
    assert "api_keys.manage" in body["missing_permissions"]
    # But a dispatcher, whose permissions they all hold, they may invite
    ok = await invite(platform, lead, email="disp@example.com", name="Disp", roles=["dispatcher"])
    assert ok.status_code == 201, ok.text
    # And nobody was created for the refused invitation
    listed = await platform.client.get("/v1/identity/users?q=boss", headers=tenant.headers)
    assert listed.json()["items"] == []


async def test_the_grant_rule_follows_the_tenants_matrix(platform: RunningPlatform) -> None:
    # Given a fulfilment admin who may manage users, and a tenant whose dispatchers may also refund
    tenant = await platform.new_tenant()
    lead = await _fulfilment_admin_who_manages_users(platform, tenant)
    await platform.client.put(
        "/v1/identity/roles/dispatcher",
        json={"permissions": sorted(DEFAULT_ROLES[Role.DISPATCHER] | {"wallet.refund"})},
        headers=tenant.headers,
    )

    # When the fulfilment admin invites a dispatcher
    response = await invite(platform, lead, email="disp@example.com", name="Disp", roles=["dispatcher"])

    # Then it is refused: in this tenant a dispatcher holds wallet.refund, which they do not
    body = assert_problem(response, 403, "role-not-grantable")
    assert body["missing_permissions"] == ["wallet.refund"]


async def test_super_admin_is_never_granted(platform: RunningPlatform) -> None:
    # Given a tenant whose API key holds every permission of the tenant
    tenant = await platform.new_tenant()
    user_id = await create_user(platform, tenant, "emp@example.com", ["employee"])

    # When it invites a super-admin, or makes the employee one
    invited = await invite(
        platform, tenant.headers, email="root@example.com", name="R", roles=["super_admin"]
    )
    patched = await platform.client.patch(
        f"/v1/identity/users/{user_id}", json={"roles": ["super_admin"]}, headers=tenant.headers
    )

    # Then both are refused
    for response in (invited, patched):
        assert assert_problem(response, 403, "role-not-grantable")["role"] == "super_admin"


async def test_a_key_scoped_to_users_cannot_grant_what_it_lacks(platform: RunningPlatform) -> None:
    # Given a key that may manage users and nothing else
    tenant = await platform.new_tenant()
    created = await platform.client.post(
        "/v1/identity/api-keys",
        json={"name": "hr", "scopes": ["users.manage", "users.read"]},
        headers=tenant.headers,
    )
    hr = bearer(created.json()["api_key"])

    # When it invites a customer
    response = await invite(platform, hr, email="c@example.com", name="C", roles=["customer"])

    # Then it is refused: a customer reads orders, which the key cannot
    assert "orders.read" in assert_problem(response, 403, "role-not-grantable")["missing_permissions"]


@BOTH_DATABASES
async def test_nobody_changes_a_user_who_holds_more_than_they_do(platform: RunningPlatform) -> None:
    # Given a fulfilment admin who may manage users, a tenant admin, and a dispatcher
    tenant = await platform.new_tenant()
    lead = await _fulfilment_admin_who_manages_users(platform, tenant)
    admin_id = await create_user(platform, tenant, "admin@example.com", ["tenant_admin"])
    dispatcher_id = await create_user(platform, tenant, "disp@example.com", ["dispatcher"], name="Disp")

    # When the fulfilment admin renames or deactivates the tenant admin, or promotes the dispatcher
    renamed = await platform.client.patch(f"/v1/identity/users/{admin_id}", json={"name": "X"}, headers=lead)
    deactivated = await platform.client.post(f"/v1/identity/users/{admin_id}/deactivate", headers=lead)
    promoted = await platform.client.patch(
        f"/v1/identity/users/{dispatcher_id}", json={"roles": ["tenant_admin"]}, headers=lead
    )

    # Then all three are refused, and nothing changed
    assert_problem(renamed, 403, "user-not-manageable")
    assert_problem(deactivated, 403, "user-not-manageable")
    assert_problem(promoted, 403, "role-not-grantable")
    admin = await platform.client.get(f"/v1/identity/users/{admin_id}", headers=tenant.headers)
    assert (admin.json()["name"], admin.json()["status"]) == ("Someone", "active")
    dispatcher = await platform.client.get(f"/v1/identity/users/{dispatcher_id}", headers=tenant.headers)
    assert dispatcher.json()["roles"] == ["dispatcher"]
    # But the dispatcher they may rename
    ok = await platform.client.patch(
        f"/v1/identity/users/{dispatcher_id}", json={"name": "Dee"}, headers=lead
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == "Dee"


async def test_changing_roles_takes_effect_at_the_next_refresh(platform: RunningPlatform) -> None:
    # Given a signed-in employee
    tenant = await platform.new_tenant()
    user_id = await create_user(platform, tenant, "emp@example.com", ["employee"])
    tokens = await log_in(platform, tenant, "emp@example.com")

    # When the admin makes them a dispatcher as well
    patched = await platform.client.patch(
        f"/v1/identity/users/{user_id}", json={"roles": ["employee", "dispatcher"]}, headers=tenant.headers
    )

    # Then the user shows both roles, and the change is audited
    assert patched.status_code == 200, patched.text
    assert patched.json()["roles"] == ["dispatcher", "employee"]
    [entry] = [e for e in await audit_entries(platform, user_id) if e["action"] == "user.changed"]
    assert (entry["before"]["roles"], entry["after"]["roles"]) == (["employee"], ["dispatcher", "employee"])
    # And the old access token is refused at once, while the refresh token brings the new permissions
    stale = await platform.client.get("/v1/identity/me", headers=bearer(tokens["access_token"]))
    assert stale.status_code == 401
    refreshed = await platform.client.post(
        "/v1/identity/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    me = await platform.client.get("/v1/identity/me", headers=bearer(refreshed.json()["access_token"]))
    assert me.json()["permissions"] == sorted(DEFAULT_ROLES[Role.EMPLOYEE] | DEFAULT_ROLES[Role.DISPATCHER])


# --- Deactivation --------------------------------------------------------------------------------------


@BOTH_DATABASES
async def test_deactivation_ends_every_session_at_once(platform: RunningPlatform) -> None:
    # Given a dispatcher signed in, whose token works
    tenant = await platform.new_tenant()
    user_id = await create_user(platform, tenant, "disp@example.com", ["dispatcher"])
    tokens = await log_in(platform, tenant, "disp@example.com")
    assert (
        await platform.client.get("/v1/orders", headers=bearer(tokens["access_token"]))
    ).status_code == 200

    # When the tenant deactivates them
    response = await platform.client.post(f"/v1/identity/users/{user_id}/deactivate", headers=tenant.headers)

    # Then the user is deactivated
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "deactivated"
    # And the access token is refused on the very next request, here and by other services
    for path in ("/v1/identity/me", "/v1/orders"):
        refused = await platform.client.get(path, headers=bearer(tokens["access_token"]))
        assert_problem(refused, 401, "unauthenticated")
    # And the refresh token is spent for good
    refresh = await platform.client.post(
        "/v1/identity/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    # And the password no longer logs in
    login = await platform.client.post(
        "/v1/identity/login",
        json={"tenant_id": tenant.tenant_id, "email": "disp@example.com", "password": PASSWORD},
    )
    assert_problem(login, 403, "user-not-active")
    # And the audit trail says who did it
    [entry] = [e for e in await audit_entries(platform, user_id) if e["action"] == "user.deactivated"]
    assert entry["actor"].startswith("api_key:")
    assert (entry["before"]["status"], entry["after"]["status"]) == ("active", "deactivated")


async def test_a_deactivated_user_can_be_activated_again(platform: RunningPlatform) -> None:
    # Given a deactivated user
    tenant = await platform.new_tenant()
    user_id = await create_user(platform, tenant, "disp@example.com", ["dispatcher"])
    await platform.client.post(f"/v1/identity/users/{user_id}/deactivate", headers=tenant.headers)

    # When the tenant activates them (twice: the second changes nothing)
    first = await platform.client.post(f"/v1/identity/users/{user_id}/activate", headers=tenant.headers)
    second = await platform.client.post(f"/v1/identity/users/{user_id}/activate", headers=tenant.headers)

    # Then they are active and may log in again
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "active"
    await log_in(platform, tenant, "disp@example.com")
    actions = [e["action"] for e in await audit_entries(platform, user_id)]
    assert actions == ["user.created", "user.deactivated", "user.activated"]


async def test_an_invited_user_is_activated_by_accepting_only(platform: RunningPlatform) -> None:
    # Given an invited user
    tenant = await platform.new_tenant()
    invited = await invite(platform, tenant.headers, email="inv@example.com", name="I", roles=["employee"])

    # When the tenant activates them
    response = await platform.client.post(
        f"/v1/identity/users/{invited.json()['id']}/activate", headers=tenant.headers
    )

    # Then it is a conflict: they have to accept
    assert_problem(response, 409, "invitation-pending")


async def test_nobody_deactivates_themselves(platform: RunningPlatform) -> None:
    # Given a signed-in tenant admin
    tenant = await platform.new_tenant()
    admin_id, admin = await signed_in(platform, tenant, "admin@example.com", ["tenant_admin"])

    # When they deactivate themselves
    response = await platform.client.post(f"/v1/identity/users/{admin_id}/deactivate", headers=admin)

    # Then it is refused, and they are still signed in
    assert_problem(response, 409, "self-deactivation")
    assert (await platform.client.get("/v1/identity/me", headers=admin)).status_code == 200


# --- Tenancy -------------------------------------------------------------------------------------------


@BOTH_DATABASES
async def test_another_tenants_user_is_a_404_everywhere(platform: RunningPlatform) -> None:
    # Given tenants A and B, and a user of A
    tenant_a = await platform.new_tenant("A")
    tenant_b = await platform.new_tenant("B")
    user_id = await create_user(platform, tenant_a, "a@example.com", ["employee"])

    # When B reads, changes, deactivates or activates that user
    responses = [
        await platform.client.get(f"/v1/identity/users/{user_id}", headers=tenant_b.headers),
        await platform.client.patch(
            f"/v1/identity/users/{user_id}", json={"name": "B's now"}, headers=tenant_b.headers
        ),
        await platform.client.post(f"/v1/identity/users/{user_id}/deactivate", headers=tenant_b.headers),
        await platform.client.post(f"/v1/identity/users/{user_id}/activate", headers=tenant_b.headers),
    ]

    # Then each is the 404 of a user that does not exist, and B's list does not show it
    for response in responses:
        assert_problem(response, 404, "user-not-found")
    assert (await platform.client.get("/v1/identity/users", headers=tenant_b.headers)).json()["items"] == []
    # And the user is untouched
    user = (await platform.client.get(f"/v1/identity/users/{user_id}", headers=tenant_a.headers)).json()
    assert (user["name"], user["status"]) == ("Someone", "active")


async def test_another_users_address_is_a_404(platform: RunningPlatform) -> None:
    # Given two customers of one tenant, the first with an address, and a customer of another tenant
    tenant = await platform.new_tenant()
    other_tenant = await platform.new_tenant("Other")
    _, first = await signed_in(platform, tenant, "first@example.com", ["customer"])
    _, second = await signed_in(platform, tenant, "second@example.com", ["customer"])
    _, stranger = await signed_in(platform, other_tenant, "first@example.com", ["customer"])
    created = await platform.client.post(
        "/v1/identity/me/addresses",
        json={"label": "Home", "line1": "Oranienstraße 12", "city": "Berlin", "country": "DE"},
        headers=first,
    )
    address_id = created.json()["id"]

    for caller in (second, stranger):
        # When someone else changes or removes it
        patched = await platform.client.patch(
            f"/v1/identity/me/addresses/{address_id}", json={"label": "Mine"}, headers=caller
        )
        removed = await platform.client.delete(f"/v1/identity/me/addresses/{address_id}", headers=caller)

        # Then it does not exist for them, and their list is empty
        assert_problem(patched, 404, "address-not-found")
        assert_problem(removed, 404, "address-not-found")
        assert (await platform.client.get("/v1/identity/me/addresses", headers=caller)).json()["items"] == []
    # And the owner still has it as it was
    [mine] = (await platform.client.get("/v1/identity/me/addresses", headers=first)).json()["items"]
    assert mine["label"] == "Home"


# --- Listing -------------------------------------------------------------------------------------------


@BOTH_DATABASES
async def test_users_are_listed_with_filters_and_cursor_pages(platform: RunningPlatform) -> None:
    # Given a tenant with three active users and one invited
    tenant = await platform.new_tenant()
    anna = await create_user(platform, tenant, "anna@example.com", ["dispatcher"], name="Anna Berg")
    bert = await create_user(platform, tenant, "bert@example.com", ["employee"], name="Bert Stein")
    cleo = await create_user(platform, tenant, "cleo@shop.example", ["dispatcher", "employee"], name="Cleo")
    invited = await invite(platform, tenant.headers, email="dora@example.com", name="Dora", roles=["driver"])
    dora = invited.json()["id"]

    async def ids(query: str) -> list[str]:
        response = await platform.client.get(f"/v1/identity/users{query}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    # When it lists them with filters
    # Then each filter narrows the list, newest first
    assert await ids("") == [dora, cleo, bert, anna]
    assert await ids("?status=invited") == [dora]
    assert await ids("?status=active&role=dispatcher") == [cleo, anna]
    assert await ids("?role=employee") == [cleo, bert]
    assert await ids("?q=STEIN") == [bert]
    assert await ids("?q=shop.example") == [cleo]
    assert await ids("?q=%25") == []
    # And pages follow the cursor to the end
    first = (await platform.client.get("/v1/identity/users?limit=3", headers=tenant.headers)).json()
    assert [item["id"] for item in first["items"]] == [dora, cleo, bert]
    rest = (
        await platform.client.get(
            f"/v1/identity/users?limit=3&cursor={first['next_cursor']}", headers=tenant.headers
        )
    ).json()
    assert ([item["id"] for item in rest["items"]], rest["next_cursor"]) == ([anna], None)
    # And one user is its own page
    one = await platform.client.get(f"/v1/identity/users/{anna}", headers=tenant.headers)
    assert one.json()["name"] == "Anna Berg"
    assert set(one.json()) == {
        "id", "email", "phone", "name", "status", "roles", "merchant_ids", "profile", "preferences",
        "created_at", "updated_at",
    }  # fmt: skip


async def test_bad_list_filters_are_422s_naming_the_parameter(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When it lists with an unknown role, status, a forged cursor and a limit too high
    # Then each problem names the parameter
    for query, field in [
        ("role=pilot", "role"),
        ("status=asleep", "status"),
        ("cursor=bm9wZQ", "cursor"),
        ("limit=1000", "limit"),
    ]:
        response = await platform.client.get(f"/v1/identity/users?{query}", headers=tenant.headers)
        assert fields_of(response) == [field], query


@BOTH_DATABASES
async def test_merchant_staff_see_only_the_users_of_their_merchants(platform: RunningPlatform) -> None:
    # Given a tenant whose merchant staff may read users, staff of two merchants, and a dispatcher
    tenant = await platform.new_tenant()
    await platform.client.put(
        "/v1/identity/roles/merchant_staff",
        json={"permissions": sorted(DEFAULT_ROLES[Role.MERCHANT_STAFF] | {"users.read"})},
        headers=tenant.headers,
    )
    me_id, me = await signed_in(platform, tenant, "m1@example.com", ["merchant_staff"], merchant_ids=["m1"])
    colleague = await create_user(
        platform, tenant, "m12@example.com", ["merchant_staff"], merchant_ids=["m1", "m2"]
    )
    other = await create_user(platform, tenant, "m2@example.com", ["merchant_staff"], merchant_ids=["m2"])
    dispatcher = await create_user(platform, tenant, "d@example.com", ["dispatcher"])

    # When they list users, and look at one outside their merchants
    listed = await platform.client.get("/v1/identity/users", headers=me)
    outside = await platform.client.get(f"/v1/identity/users/{other}", headers=me)

    # Then they see themselves and their merchant's staff only
    assert [item["id"] for item in listed.json()["items"]] == [colleague, me_id]
    assert_problem(outside, 404, "user-not-found")
    assert_problem(
        await platform.client.get(f"/v1/identity/users/{dispatcher}", headers=me), 404, "user-not-found"
    )


async def test_merchant_staff_invite_only_staff_of_their_own_merchants(platform: RunningPlatform) -> None:
    # Given a tenant whose merchant staff may manage users, and staff of merchant m1
    tenant = await platform.new_tenant()
    await platform.client.put(
        "/v1/identity/roles/merchant_staff",
        json={"permissions": sorted(DEFAULT_ROLES[Role.MERCHANT_STAFF] | {"users.manage", "users.read"})},
        headers=tenant.headers,
    )
    _, staff = await signed_in(platform, tenant, "m1@example.com", ["merchant_staff"], merchant_ids=["m1"])
    new = {"email": "new@example.com", "name": "New", "roles": ["merchant_staff"]}

    # When they invite staff without merchants, of another merchant, an employee, and staff of m1
    without = await invite(platform, staff, **new)
    elsewhere = await invite(platform, staff, **new, merchant_ids=["m2"])
    employee = await invite(platform, staff, **{**new, "roles": ["employee"]}, merchant_ids=["m1"])
    ok = await invite(platform, staff, **new, merchant_ids=["m1"])

    # Then only staff of m1 is invited: an employee reaches the whole tenant, further than they do
    assert fields_of(without) == ["merchant_ids"]
    assert fields_of(elsewhere) == ["merchant_ids"]
    assert "reaches tenant" in assert_problem(employee, 403, "role-not-grantable")["detail"]
    assert ok.status_code == 201, ok.text
    assert ok.json()["merchant_ids"] == ["m1"]


# --- /me -----------------------------------------------------------------------------------------------


async def test_me_answers_the_user_with_their_permissions(platform: RunningPlatform) -> None:
    # Given a signed-in merchant staff member
    tenant = await platform.new_tenant()
    user_id, headers = await signed_in(
        platform, tenant, "staff@example.com", ["merchant_staff"], merchant_ids=["m1"], name="Sam"
    )

    # When they ask who they are
    response = await platform.client.get("/v1/identity/me", headers=headers)

    # Then they get their user, permissions and reach
    assert response.status_code == 200, response.text
    body = response.json()
    assert {key: value for key, value in body.items() if key not in {"created_at", "updated_at"}} == {
        "kind": "user",
        "id": user_id,
        "tenant_id": tenant.tenant_id,
        "email": "staff@example.com",
        "phone": None,
        "name": "Sam",
        "status": "active",
        "roles": ["merchant_staff"],
        "merchant_ids": ["m1"],
        "profile": {"customer": None, "dealer": None},
        "preferences": {"language": None, "time_zone": None, "units": None, "notifications": None},
        "permissions": sorted(DEFAULT_ROLES[Role.MERCHANT_STAFF]),
        "reach": "merchants",
    }


async def test_me_answers_an_api_key_with_its_permissions(platform: RunningPlatform) -> None:
    # Given a tenant's default key
    tenant = await platform.new_tenant()
    [key] = (await platform.client.get("/v1/identity/api-keys", headers=tenant.headers)).json()["items"]

    # When it asks who it is
    response = await platform.client.get("/v1/identity/me", headers=tenant.headers)

    # Then it is the key, with every permission of the tenant
    assert response.status_code == 200
    assert response.json() == {
        "kind": "api_key",
        "id": key["id"],
        "tenant_id": tenant.tenant_id,
        "permissions": sorted(TENANT_PERMISSIONS),
    }
    # And it has no profile to change
    patched = await platform.client.patch("/v1/identity/me", json={"name": "Key"}, headers=tenant.headers)
    assert_problem(patched, 403, "user-required")
    assert_problem(
        await platform.client.get("/v1/identity/me/addresses", headers=tenant.headers), 403, "user-required"
    )


async def test_me_without_a_credential_is_a_401(platform: RunningPlatform) -> None:
    # Given no credential
    # When someone asks who they are
    response = await platform.client.get("/v1/identity/me")

    # Then it is a 401
    assert_problem(response, 401, "unauthenticated")


@BOTH_DATABASES
async def test_profile_and_preferences_merge_what_is_sent(platform: RunningPlatform) -> None:
    # Given a signed-in dealer
    tenant = await platform.new_tenant()
    user_id, headers = await signed_in(platform, tenant, "dealer@example.com", ["dealer"])

    # When they fill in their dealer profile and preferences, then change one field of each
    first = await platform.client.patch(
        "/v1/identity/me",
        json={
            "name": "Dora Dealer",
            "profile": {
                "dealer": {"company_name": "Dora GmbH", "vat_id": "de 123 456 789"},
                "customer": {"marketing_opt_in": True, "dietary_preferences": ["vegan"]},
            },
            "preferences": {
                "language": "EN-gb",
                "time_zone": "Europe/Berlin",
                "notifications": {"channels": ["push", "email"], "order_updates": True},
            },
        },
        headers=headers,
    )
    second = await platform.client.patch(
        "/v1/identity/me",
        json={
            "profile": {"dealer": {"billing_email": "Billing@Dora.example"}, "customer": None},
            "preferences": {"notifications": {"channels": []}},
        },
        headers=headers,
    )

    # Then each patch changed only what it sent, values in canonical form
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["name"] == "Dora Dealer"
    assert body["tokens"] is None
    assert body["profile"] == {
        "customer": None,
        "dealer": {
            "company_name": "Dora GmbH",
            "vat_id": "DE123456789",
            "registration_number": None,
            "billing_email": "billing@dora.example",
            "contact_phone": None,
        },
    }
    assert body["preferences"] == {
        "language": "en-GB",
        "time_zone": "Europe/Berlin",
        "units": None,
        "notifications": {"channels": [], "order_updates": True, "delivery_updates": None},
    }
    # And an admin sees the same
    seen = await platform.client.get(f"/v1/identity/users/{user_id}", headers=tenant.headers)
    assert (seen.json()["profile"], seen.json()["preferences"]) == (body["profile"], body["preferences"])
    # And the audit trail holds each change, by the user
    changes = [e for e in await audit_entries(platform, user_id) if e["action"] == "user.changed"]
    assert [e["actor"] for e in changes] == [f"user:{user_id}"] * 2
    assert changes[1]["before"]["profile"]["customer"] == {
        "marketing_opt_in": True,
        "dietary_preferences": ["vegan"],
    }
    assert "customer" not in changes[1]["after"]["profile"]


async def test_bad_profile_input_is_a_422_naming_the_field(platform: RunningPlatform) -> None:
    # Given a signed-in customer
    tenant = await platform.new_tenant()
    _, headers = await signed_in(platform, tenant, "c@example.com", ["customer"])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"profile": {"dealer": {"vat_id": "DE123"}}}, "profile.dealer.company_name"),
        ({"profile": {"dealer": {"company_name": "X", "vat_id": "12"}}}, "profile.dealer.vat_id"),
        ({"profile": {"customer": {"date_of_birth": "2999-01-01"}}}, "profile.customer.date_of_birth"),
        ({"profile": {"customer": {"shoe_size": 44}}}, "profile.customer.shoe_size"),
        ({"profile": {"customer": {"default_address_id": "nope"}}}, "profile.customer.default_address_id"),
        ({"preferences": {"language": "klingon!"}}, "preferences.language"),
        ({"preferences": {"time_zone": "Mars/Olympus"}}, "preferences.time_zone"),
        (
            {"preferences": {"notifications": {"channels": ["sms", "sms"]}}},
            "preferences.notifications.channels",
        ),
        ({"name": None}, "name"),
        ({"profile": None}, "profile"),
    ]
    for body, field in cases:
        # When they send it
        response = await platform.client.patch("/v1/identity/me", json=body, headers=headers)

        # Then the problem names the field
        assert fields_of(response) == [field], body


@BOTH_DATABASES
async def test_a_new_password_ends_every_other_session(platform: RunningPlatform) -> None:
    # Given a customer signed in on two devices
    tenant = await platform.new_tenant()
    await create_user(platform, tenant, "c@example.com", ["customer"])
    phone = await log_in(platform, tenant, "c@example.com")
    laptop = await log_in(platform, tenant, "c@example.com")

    # When they change their password on the phone, first with a wrong current one
    wrong = await platform.client.patch(
        "/v1/identity/me",
        json={"current_password": "not my password", "new_password": "a much better one"},
        headers=bearer(phone["access_token"]),
    )
    missing = await platform.client.patch(
        "/v1/identity/me", json={"new_password": "a much better one"}, headers=bearer(phone["access_token"])
    )
    short = await platform.client.patch(
        "/v1/identity/me",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(phone["access_token"]),
    )
    changed = await platform.client.patch(
        "/v1/identity/me",
        json={"current_password": PASSWORD, "new_password": "a much better one"},
        headers=bearer(phone["access_token"]),
    )

    # Then the bad attempts name their field
    assert fields_of(wrong) == ["current_password"]
    assert fields_of(missing) == ["current_password"]
    assert fields_of(short) == ["new_password"]
    # And the change answers new tokens for the phone, which work
    assert changed.status_code == 200, changed.text
    tokens = changed.json()["tokens"]
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert (
        await platform.client.get("/v1/identity/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200
    # And every earlier token is refused: access and refresh, on both devices
    for device in (phone, laptop):
        assert (
            await platform.client.get("/v1/identity/me", headers=bearer(device["access_token"]))
        ).status_code == 401
        refreshed = await platform.client.post(
            "/v1/identity/token/refresh", json={"refresh_token": device["refresh_token"]}
        )
        assert refreshed.status_code == 401
    # And only the new password logs in
    await log_in(platform, tenant, "c@example.com", "a much better one")
    old = await platform.client.post(
        "/v1/identity/login",
        json={"tenant_id": tenant.tenant_id, "email": "c@example.com", "password": PASSWORD},
    )
    assert old.status_code == 401


# --- Addresses -----------------------------------------------------------------------------------------

HOME = {
    "label": "Home",
    "line1": "Skalitzer Straße 80",
    "line2": "3rd floor",
    "city": "Berlin",
    "postal_code": "10997",
    "country": "de",
    "lat": 52.4996,
    "lng": 13.4310,
    "instructions": "Ring twice",
}
WORK = {"label": "Work", "line1": "Oranienstraße 12", "city": "Berlin", "country": "DE"}


@BOTH_DATABASES
async def test_addresses_keep_exactly_one_default(platform: RunningPlatform) -> None:
    # Given a signed-in customer
    tenant = await platform.new_tenant()
    user_id, headers = await signed_in(platform, tenant, "c@example.com", ["customer"])

    async def listed() -> list[tuple[str, bool]]:
        items = (await platform.client.get("/v1/identity/me/addresses", headers=headers)).json()["items"]
        return [(item["label"], item["is_default"]) for item in items]

    async def default_in_profile() -> str | None:
        me = (await platform.client.get("/v1/identity/me", headers=headers)).json()
        return (me["profile"]["customer"] or {}).get("default_address_id")

    # When they save a first address
    home = await platform.client.post("/v1/identity/me/addresses", json=HOME, headers=headers)

    # Then it is stored as given, with the country in capitals, and it is the default
    assert home.status_code == 201, home.text
    home_body = home.json()
    assert {key: home_body[key] for key in HOME} == {**HOME, "country": "DE"}
    assert home_body["is_default"] is True
    assert await default_in_profile() == home_body["id"]

    # When they save a second one, then a third marked default
    work = (await platform.client.post("/v1/identity/me/addresses", json=WORK, headers=headers)).json()
    gym = (
        await platform.client.post(
            "/v1/identity/me/addresses", json={**WORK, "label": "Gym", "is_default": True}, headers=headers
        )
    ).json()

    # Then the second is not the default, and the third took the default over
    assert work["is_default"] is False
    assert await listed() == [("Gym", True), ("Home", False), ("Work", False)]
    assert await default_in_profile() == gym["id"]

    # When they mark Work the default through its address, then Home through the profile
    patched = await platform.client.patch(
        f"/v1/identity/me/addresses/{work['id']}",
        json={"is_default": True, "label": "Office"},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert await listed() == [("Office", True), ("Home", False), ("Gym", False)]
    profiled = await platform.client.patch(
        "/v1/identity/me",
        json={"profile": {"customer": {"default_address_id": home_body["id"]}}},
        headers=headers,
    )
    assert profiled.status_code == 200, profiled.text

    # Then the default moved each time
    assert await listed() == [("Home", True), ("Office", False), ("Gym", False)]
    assert await default_in_profile() == home_body["id"]

    # When they try to unset the default without choosing another
    unset = await platform.client.patch(
        f"/v1/identity/me/addresses/{home_body['id']}", json={"is_default": False}, headers=headers
    )

    # Then it is refused, naming the field
    assert fields_of(unset) == ["is_default"]

    # When they remove the default
    removed = await platform.client.delete(f"/v1/identity/me/addresses/{home_body['id']}", headers=headers)

    # Then the oldest remaining address becomes the default
    assert removed.status_code == 204
    assert await listed() == [("Office", True), ("Gym", False)]
    assert await default_in_profile() == work["id"]

    # When they remove the rest
    for address_id in (work["id"], gym["id"]):
        assert (
            await platform.client.delete(f"/v1/identity/me/addresses/{address_id}", headers=headers)
        ).status_code == 204

    # Then there is no address and no default
    assert await listed() == []
    assert await default_in_profile() is None
    # And each step is in the audit trail, by the user
    entries = [
        entry
        for entry in await outbox_events(platform, "doorstep.audit.recorded.v1")
        if entry["object_type"] == "address"
    ]
    assert [entry["action"] for entry in entries] == ["address.added"] * 3 + ["address.changed"] + [
        "address.removed"
    ] * 3
    assert {entry["actor"] for entry in entries} == {f"user:{user_id}"}
    assert entries[3]["before"]["label"] == "Work"
    assert entries[3]["after"]["label"] == "Office"


async def test_an_address_patch_clears_optional_fields_with_null(platform: RunningPlatform) -> None:
    # Given a saved address with a location
    tenant = await platform.new_tenant()
    _, headers = await signed_in(platform, tenant, "c@example.com", ["customer"])
    home = (await platform.client.post("/v1/identity/me/addresses", json=HOME, headers=headers)).json()

    # When the location and line 2 are cleared
    response = await platform.client.patch(
        f"/v1/identity/me/addresses/{home['id']}",
        json={"lat": None, "lng": None, "line2": None},
        headers=headers,
    )

    # Then they are gone, and the rest is as it was
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["lat"], body["lng"], body["line2"]) == (None, None, None)
    assert (body["line1"], body["instructions"]) == (HOME["line1"], HOME["instructions"])


async def test_bad_addresses_are_422s_naming_the_field(platform: RunningPlatform) -> None:
    # Given a signed-in customer with one address
    tenant = await platform.new_tenant()
    _, headers = await signed_in(platform, tenant, "c@example.com", ["customer"])
    home = (await platform.client.post("/v1/identity/me/addresses", json=WORK, headers=headers)).json()
    created: list[tuple[dict[str, Any], str]] = [
        ({**WORK, "country": "XX"}, "country"),
        ({**WORK, "country": "DEU"}, "country"),
        ({**WORK, "lat": 52.5}, "lng"),
        ({**WORK, "lng": 13.4}, "lat"),
        ({**WORK, "lat": 90.5, "lng": 13.4}, "lat"),
        ({**WORK, "lat": 52.5, "lng": -180.1}, "lng"),
        ({**WORK, "line1": ""}, "line1"),
        ({**WORK, "label": "x" * 101}, "label"),
        ({key: value for key, value in WORK.items() if key != "city"}, "city"),
    ]
    for body, field in created:
        # When they save a bad address
        response = await platform.client.post("/v1/identity/me/addresses", json=body, headers=headers)

        # Then the problem names the field
        assert fields_of(response) == [field], body
    changed: list[tuple[dict[str, Any], str]] = [
        ({"lat": 52.5}, "lng"),
        ({"city": None}, "city"),
        ({"country": "zz"}, "country"),
        ({"is_default": None}, "is_default"),
    ]
    for body, field in changed:
        # When they change it badly
        response = await platform.client.patch(
            f"/v1/identity/me/addresses/{home['id']}", json=body, headers=headers
        )

        # Then the problem names the field, and the address is unchanged
        assert fields_of(response) == [field], body
    [stored] = (await platform.client.get("/v1/identity/me/addresses", headers=headers)).json()["items"]
    assert stored == home


async def test_a_user_keeps_at_most_fifty_addresses(platform: RunningPlatform) -> None:
    # Given a customer with 50 addresses
    tenant = await platform.new_tenant()
    _, headers = await signed_in(platform, tenant, "c@example.com", ["customer"])
    for number in range(50):
        response = await platform.client.post(
            "/v1/identity/me/addresses", json={**WORK, "label": f"Place {number}"}, headers=headers
        )
        assert response.status_code == 201, response.text

    # When they save a 51st
    response = await platform.client.post("/v1/identity/me/addresses", json=WORK, headers=headers)

    # Then it is refused
    assert_problem(response, 409, "too-many-addresses")
    items = (await platform.client.get("/v1/identity/me/addresses", headers=headers)).json()["items"]
    assert len(items) == 50
