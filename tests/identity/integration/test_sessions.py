"""Sessions on the all-in-one platform: sign-up, log-in, refresh, log-out, the JWKS, key rotation, codes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select
from tests.platform import RunningPlatform, running_platform, settings_for

from doorstep.contracts.notifications import NotificationRequested
from doorstep.identity import sessions
from doorstep.identity.domain.commands import CreateUser, RotateSigningKeys
from doorstep.identity.domain.users import OTP_LIFETIME, User
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import PROBLEM_BASE
from doorstep.kernel.messages import CloudEvent
from doorstep.kernel.permissions import DEFAULT_ROLES, Role

PROBLEM_JSON = "application/problem+json"
PASSWORD = "correct horse battery staple"
CUSTOMER_PERMISSIONS = sorted(DEFAULT_ROLES[Role.CUSTOMER])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, Any]:
    """The token's claims as anyone can read them: no signature check."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def create_user(
    platform: RunningPlatform, tenant_id: str, *, email: str, roles: tuple[str, ...] = ("customer",)
) -> User:
    user: User = await platform.services["identity"].bus.handle(
        CreateUser(tenant_id=tenant_id, email=email, password=PASSWORD, name="Ada", roles=list(roles))
    )
    return user


async def log_in(platform: RunningPlatform, tenant_id: str, **credentials: str) -> httpx.Response:
    return await platform.client.post("/v1/identity/login", json={"tenant_id": tenant_id, **credentials})


async def tokens_for(platform: RunningPlatform, tenant_id: str, email: str) -> dict[str, Any]:
    """A fresh session (log-in with the password) for an existing user."""
    response = await log_in(platform, tenant_id, email=email, password=PASSWORD)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(platform: RunningPlatform, refresh_token: str) -> httpx.Response:
    return await platform.client.post("/v1/identity/token/refresh", json={"refresh_token": refresh_token})


async def tenant_status(platform: RunningPlatform, access_token: str) -> int:
    """What `GET /v1/identity/tenant` answers this access token."""
    return (await platform.client.get("/v1/identity/tenant", headers=bearer(access_token))).status_code


def assert_unauthenticated(response: httpx.Response, slug: str = "unauthenticated") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == PROBLEM_BASE + slug


async def sent_codes(platform: RunningPlatform, destination: str) -> list[str]:
    """The one-time codes sent to `destination`, oldest first, read from identity's outbox.

    The outbox is where a `notifications.requested` event is committed with the code; whatever delivers
    it (the log sender today, the notifications service later) reads the same event.
    """
    identity = platform.services["identity"]
    outbox = identity.outbox
    async with identity.database.reader() as session:
        rows = (
            await session.execute(
                select(outbox.c.envelope)
                .where(outbox.c.type == NotificationRequested.event_type)
                .order_by(outbox.c.seq)
            )
        ).all()
    events = [CloudEvent.model_validate_json(row.envelope) for row in rows]
    return [event.data["params"]["code"] for event in events if event.data["to"] == destination]


async def request_code(
    platform: RunningPlatform, tenant_id: str, *, ip: str | None = None, **destination: str
) -> httpx.Response:
    headers = {"X-Forwarded-For": ip} if ip is not None else {}
    return await platform.client.post(
        "/v1/identity/otp", json={"tenant_id": tenant_id, **destination}, headers=headers
    )


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


# --- sign-up and log-in ---------------------------------------------------------------------------


async def test_sign_up_answers_201_with_a_bearer_session(platform: RunningPlatform) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When a customer signs up with an email and a password
    response = await platform.client.post(
        "/v1/identity/signup",
        json={"tenant_id": tenant.tenant_id, "email": "Ada@Example.com", "password": PASSWORD, "name": "Ada"},
    )

    # Then the answer is a session: an access token, a refresh token, its lifetime and its type
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert body["expires_in"] == 600
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"].startswith("dsr_")
    assert body["access_token"].count(".") == 2
    # And the customer can log in with the same (normalised) email and the password
    assert (
        await log_in(platform, tenant.tenant_id, email="ada@example.com", password=PASSWORD)
    ).status_code == 200


async def test_signing_up_twice_with_the_same_email_is_a_409(platform: RunningPlatform) -> None:
    # Given a customer who signed up
    tenant = await platform.new_tenant()
    body = {"tenant_id": tenant.tenant_id, "email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
    assert (await platform.client.post("/v1/identity/signup", json=body)).status_code == 201

    # When someone signs up again with the same email, differently cased
    again = await platform.client.post("/v1/identity/signup", json={**body, "email": "ADA@example.com"})

    # Then it is a conflict
    assert again.status_code == 409
    assert again.json()["type"] == PROBLEM_BASE + "already-registered"


async def test_a_user_logs_in_with_the_password(platform: RunningPlatform) -> None:
    # Given a user created by the set-up
    tenant = await platform.new_tenant()
    user = await create_user(platform, tenant.tenant_id, email="ada@example.com")

    # When the user logs in with the password
    response = await log_in(platform, tenant.tenant_id, email="ada@example.com", password=PASSWORD)

    # Then the session is the user's
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert claims_of(body["access_token"])["sub"] == user.id


async def test_a_wrong_password_and_an_unknown_email_get_the_same_401(platform: RunningPlatform) -> None:
    # Given a user
    tenant = await platform.new_tenant()
    await create_user(platform, tenant.tenant_id, email="ada@example.com")

    # When someone logs in with the wrong password, and someone else with an email nobody has
    wrong = await log_in(platform, tenant.tenant_id, email="ada@example.com", password="not the password")
    unknown = await log_in(platform, tenant.tenant_id, email="nobody@example.com", password=PASSWORD)

    # Then both are the same 401 problem: nothing tells whether the email exists
    for response in (wrong, unknown):
        assert_unauthenticated(response, "invalid-credentials")

    def without_request_id(response: httpx.Response) -> dict[str, Any]:
        body: dict[str, Any] = response.json()
        body.pop("request_id", None)
        return body

    assert without_request_id(wrong) == without_request_id(unknown)


async def test_the_access_token_works_where_the_role_allows_and_is_403_elsewhere(
    platform: RunningPlatform,
) -> None:
    # Given a customer's session
    tenant = await platform.new_tenant("Acme")
    await create_user(platform, tenant.tenant_id, email="ada@example.com")
    session = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    headers = bearer(session["access_token"])

    # When the customer asks for the tenant, for orders, and for the API keys
    tenant_answer = await platform.client.get("/v1/identity/tenant", headers=headers)
    orders = await platform.client.get("/v1/orders", headers=headers)
    keys = await platform.client.get("/v1/identity/api-keys", headers=headers)

    # Then the tenant is theirs, orders are readable (customers hold orders.read)
    assert tenant_answer.status_code == 200
    assert tenant_answer.json()["id"] == tenant.tenant_id
    assert tenant_answer.json()["name"] == "Acme"
    assert orders.status_code == 200
    # And the API keys are a 403 problem that names the missing permission
    assert keys.status_code == 403
    assert keys.headers["content-type"] == PROBLEM_JSON
    problem = keys.json()
    assert problem["type"] == PROBLEM_BASE + "forbidden"
    assert problem["permission"] == "api_keys.manage"
    assert problem["detail"] == "this needs the permission api_keys.manage"


async def test_the_access_token_carries_the_standard_and_doorstep_claims(platform: RunningPlatform) -> None:
    # Given a customer
    tenant = await platform.new_tenant()
    user = await create_user(platform, tenant.tenant_id, email="ada@example.com")
    before = utcnow().timestamp()

    # When the customer logs in
    session = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    after = utcnow().timestamp()

    # Then the header names the EdDSA key it was signed with
    header = jwt.get_unverified_header(session["access_token"])
    assert header["alg"] == "EdDSA"
    assert header["typ"] == "at+jwt"
    assert isinstance(header["kid"], str)
    assert header["kid"]
    # And the claims say who issued it for whom, until when, in which tenant, with which rights
    claims = claims_of(session["access_token"])
    assert claims["iss"] == "doorstep"
    assert claims["aud"] == "doorstep"
    assert claims["sub"] == user.id
    assert claims["tid"] == tenant.tenant_id
    # (`iat` may be fractional, so that a log-out cut-off can tell tokens of the same second apart)
    assert before <= claims["iat"] <= after
    assert isinstance(claims["nbf"], int)
    assert abs(claims["iat"] - claims["nbf"]) <= 1
    assert claims["exp"] == claims["nbf"] + 600
    assert isinstance(claims["jti"], str)
    assert claims["jti"]
    assert claims["roles"] == ["customer"]
    assert claims["perms"] == CUSTOMER_PERMISSIONS
    assert claims["reach"] == "own"
    assert claims["mer"] == []
    # And no two sessions share a token id
    other = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    assert claims_of(other["access_token"])["jti"] != claims["jti"]


# --- refresh ----------------------------------------------------------------------------------------


async def test_refreshing_rotates_the_refresh_token_and_spends_the_old_one(platform: RunningPlatform) -> None:
    # Given a customer's session
    tenant = await platform.new_tenant()
    user = await create_user(platform, tenant.tenant_id, email="ada@example.com")
    first = await tokens_for(platform, tenant.tenant_id, "ada@example.com")

    # When the refresh token is traded in
    response = await refresh(platform, first["refresh_token"])

    # Then a new access token and a new refresh token come back, for the same user
    assert response.status_code == 200
    second = response.json()
    assert set(second) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["refresh_token"].startswith("dsr_")
    assert claims_of(second["access_token"])["sub"] == user.id
    assert claims_of(second["access_token"])["jti"] != claims_of(first["access_token"])["jti"]
    assert await tenant_status(platform, second["access_token"]) == 200
    # And the new refresh token refreshes again
    third = await refresh(platform, second["refresh_token"])
    assert third.status_code == 200
    assert await tenant_status(platform, third.json()["access_token"]) == 200


async def test_an_unknown_refresh_token_is_a_401(platform: RunningPlatform) -> None:
    # Given no session at all
    # When a made-up refresh token is traded in
    response = await refresh(platform, "dsr_" + "x" * 43)

    # Then it is refused
    assert_unauthenticated(response, "invalid-credentials")


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(platform: RunningPlatform) -> None:
    # Given a session refreshed once: the first refresh token is spent, the second is the newest
    tenant = await platform.new_tenant()
    await create_user(platform, tenant.tenant_id, email="ada@example.com")
    first = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    second = (await refresh(platform, first["refresh_token"])).json()
    assert await tenant_status(platform, second["access_token"]) == 200

    # When the spent refresh token is presented again (someone copied it)
    reuse = await refresh(platform, first["refresh_token"])

    # Then it is refused
    assert_unauthenticated(reuse, "invalid-credentials")
    # And the newest refresh token of the family no longer works either
    assert_unauthenticated(await refresh(platform, second["refresh_token"]), "invalid-credentials")
    # And the access tokens the family issued are refused
    assert await tenant_status(platform, second["access_token"]) == 401
    assert await tenant_status(platform, first["access_token"]) == 401


async def test_reuse_revokes_only_its_own_family(platform: RunningPlatform) -> None:
    # Given the same user logged in on two devices, one of which had its refresh token copied
    tenant = await platform.new_tenant()
    await create_user(platform, tenant.tenant_id, email="ada@example.com")
    phone = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    laptop = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    assert (await refresh(platform, phone["refresh_token"])).status_code == 200

    # When the phone's spent refresh token is reused
    assert (await refresh(platform, phone["refresh_token"])).status_code == 401

    # Then the laptop's session goes on
    assert await tenant_status(platform, laptop["access_token"]) == 200
    assert (await refresh(platform, laptop["refresh_token"])).status_code == 200


# --- log-out ----------------------------------------------------------------------------------------


async def test_logging_out_revokes_the_access_and_the_refresh_token(platform: RunningPlatform) -> None:
    # Given a customer logged in on two devices
    tenant = await platform.new_tenant()
    await create_user(platform, tenant.tenant_id, email="ada@example.com")
    phone = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    laptop = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    assert await tenant_status(platform, phone["access_token"]) == 200

    # When the phone logs out, giving its refresh token
    response = await platform.client.post(
        "/v1/identity/logout",
        json={"refresh_token": phone["refresh_token"]},
        headers=bearer(phone["access_token"]),
    )

    # Then the log-out has no content
    assert response.status_code == 204
    assert response.content == b""
    # And the phone's access token is refused on the next request, and its refresh token too
    assert_unauthenticated(
        await platform.client.get("/v1/identity/tenant", headers=bearer(phone["access_token"]))
    )
    assert_unauthenticated(await refresh(platform, phone["refresh_token"]), "invalid-credentials")
    # And the laptop is still logged in
    assert await tenant_status(platform, laptop["access_token"]) == 200
    assert (await refresh(platform, laptop["refresh_token"])).status_code == 200


async def test_logging_out_needs_a_credential(platform: RunningPlatform) -> None:
    # Given no credential
    # When someone logs out
    response = await platform.client.post("/v1/identity/logout", json={})

    # Then it is a 401
    assert_unauthenticated(response)


async def test_logging_out_everywhere_ends_every_session_of_the_user(platform: RunningPlatform) -> None:
    # Given a customer logged in on two devices, and another customer of the same tenant
    tenant = await platform.new_tenant()
    await create_user(platform, tenant.tenant_id, email="ada@example.com")
    await create_user(platform, tenant.tenant_id, email="bob@example.com")
    phone = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    laptop = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    bob = await tokens_for(platform, tenant.tenant_id, "bob@example.com")

    # When the phone logs out everywhere
    response = await platform.client.post(
        "/v1/identity/logout", json={"everywhere": True}, headers=bearer(phone["access_token"])
    )

    # Then every access token and every refresh token of the user is refused
    assert response.status_code == 204
    for session in (phone, laptop):
        assert await tenant_status(platform, session["access_token"]) == 401
        assert_unauthenticated(await refresh(platform, session["refresh_token"]), "invalid-credentials")
    # And the other customer is still logged in
    assert await tenant_status(platform, bob["access_token"]) == 200
    assert (await refresh(platform, bob["refresh_token"])).status_code == 200


async def test_a_new_log_in_after_logging_out_everywhere_works(platform: RunningPlatform) -> None:
    # Given a customer who logged out everywhere
    tenant = await platform.new_tenant()
    await create_user(platform, tenant.tenant_id, email="ada@example.com")
    old = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    response = await platform.client.post(
        "/v1/identity/logout", json={"everywhere": True}, headers=bearer(old["access_token"])
    )
    assert response.status_code == 204

    # When the customer logs in again at once
    new = await tokens_for(platform, tenant.tenant_id, "ada@example.com")

    # Then the new session works, while the old one stays revoked
    assert await tenant_status(platform, new["access_token"]) == 200
    assert await tenant_status(platform, old["access_token"]) == 401


# --- the JWKS and key rotation ----------------------------------------------------------------------


async def test_the_jwks_serves_the_ed25519_public_key_tokens_are_signed_with(
    platform: RunningPlatform,
) -> None:
    # Given a customer who signed up (so identity has signed with its key)
    tenant = await platform.new_tenant()
    user = await create_user(platform, tenant.tenant_id, email="ada@example.com")
    session = await tokens_for(platform, tenant.tenant_id, "ada@example.com")

    # When anyone asks for the JWKS, without a credential
    response = await platform.client.get("/.well-known/jwks.json")

    # Then it is one public OKP/Ed25519 key, with the kid of the token, cacheable for a minute
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=60"
    [key] = response.json()["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}  # no private part ("d")
    assert key["kty"] == "OKP"
    assert key["crv"] == "Ed25519"
    assert key["alg"] == "EdDSA"
    assert key["use"] == "sig"
    assert key["kid"] == jwt.get_unverified_header(session["access_token"])["kid"]
    # And the token verifies with that key
    claims = jwt.decode(
        session["access_token"], jwt.PyJWK(key), algorithms=["EdDSA"], audience="doorstep", issuer="doorstep"
    )
    assert claims["sub"] == user.id


async def test_rotating_the_signing_key_keeps_old_tokens_valid(platform: RunningPlatform) -> None:
    # Given a session signed with the current key, in use
    tenant = await platform.new_tenant()
    await create_user(platform, tenant.tenant_id, email="ada@example.com")
    old = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    old_kid = jwt.get_unverified_header(old["access_token"])["kid"]
    assert await tenant_status(platform, old["access_token"]) == 200

    # When identity rotates its signing keys
    new_kid = await platform.services["identity"].bus.handle(RotateSigningKeys())

    # Then the JWKS serves both keys, the new one first
    assert isinstance(new_kid, str)
    assert new_kid != old_kid
    keys = (await platform.client.get("/.well-known/jwks.json")).json()["keys"]
    assert [key["kid"] for key in keys] == [new_kid, old_kid]
    # And the token signed before the rotation still works, and still verifies from the JWKS
    assert await tenant_status(platform, old["access_token"]) == 200
    jwt.decode(
        old["access_token"], jwt.PyJWK(keys[1]), algorithms=["EdDSA"], audience="doorstep", issuer="doorstep"
    )
    # And a new log-in is signed with the new key, and works at once
    new = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    assert jwt.get_unverified_header(new["access_token"])["kid"] == new_kid
    assert await tenant_status(platform, new["access_token"]) == 200
    assert await tenant_status(platform, old["access_token"]) == 200


async def test_rotation_only_when_due_keeps_a_young_key(platform: RunningPlatform) -> None:
    # Given a signing key in use
    tenant = await platform.new_tenant()
    await create_user(platform, tenant.tenant_id, email="ada@example.com")
    session = await tokens_for(platform, tenant.tenant_id, "ada@example.com")
    kid = jwt.get_unverified_header(session["access_token"])["kid"]

    # When the housekeeping's periodic check runs on a key younger than the rotation period
    rotated = await platform.services["identity"].bus.handle(RotateSigningKeys(only_if_older_than_days=30))

    # Then nothing rotates
    assert rotated is None
    keys = (await platform.client.get("/.well-known/jwks.json")).json()["keys"]
    assert [key["kid"] for key in keys] == [kid]


# --- one-time codes ---------------------------------------------------------------------------------


async def test_a_code_request_is_202_and_the_code_goes_out_as_a_notification(
    platform: RunningPlatform,
) -> None:
    # Given a tenant
    tenant = await platform.new_tenant()

    # When a code is asked for a phone number, written with spaces
    response = await request_code(platform, tenant.tenant_id, phone="+49 30 123456")

    # Then the request is accepted with no content
    assert response.status_code == 202
    assert response.content == b""
    # And one SMS notification with a 6-digit code to the normalised number is in identity's outbox
    identity = platform.services["identity"]
    async with identity.database.reader() as session:
        rows = (
            await session.execute(
                select(identity.outbox.c.envelope, identity.outbox.c.tenant_id).where(
                    identity.outbox.c.type == "doorstep.notifications.requested.v1"
                )
            )
        ).all()
    [row] = rows
    assert row.tenant_id == tenant.tenant_id
    data = CloudEvent.model_validate_json(row.envelope).data
    assert data["channel"] == "sms"
    assert data["to"] == "+4930123456"
    assert data["template"] == "identity.one_time_code"
    assert data["sensitive"] == ["code"]
    assert set(data["params"]) == {"code", "expires_in_minutes"}
    assert data["params"]["expires_in_minutes"] == "5"
    code = data["params"]["code"]
    assert len(code) == 6
    assert code.isdigit()


async def test_a_code_for_a_new_phone_signs_up_a_customer(platform: RunningPlatform) -> None:
    # Given a code sent to a phone number nobody has
    tenant = await platform.new_tenant()
    assert (await request_code(platform, tenant.tenant_id, phone="+4930123456")).status_code == 202
    [code] = await sent_codes(platform, "+4930123456")

    # When the phone logs in with the code
    response = await log_in(platform, tenant.tenant_id, phone="+4930123456", code=code)

    # Then there is a session for a new customer
    assert response.status_code == 200
    session = response.json()
    claims = claims_of(session["access_token"])
    assert claims["tid"] == tenant.tenant_id
    assert claims["roles"] == ["customer"]
    assert claims["perms"] == CUSTOMER_PERMISSIONS
    assert await tenant_status(platform, session["access_token"]) == 200
    # And the same code does not work twice
    again = await log_in(platform, tenant.tenant_id, phone="+4930123456", code=code)
    assert_unauthenticated(again, "invalid-credentials")
    # And a second code logs in the same customer, not a new one
    assert (await request_code(platform, tenant.tenant_id, phone="+4930123456")).status_code == 202
    second_code = (await sent_codes(platform, "+4930123456"))[-1]
    second = await log_in(platform, tenant.tenant_id, phone="+4930123456", code=second_code)
    assert second.status_code == 200
    assert claims_of(second.json()["access_token"])["sub"] == claims["sub"]


async def test_a_code_logs_in_an_existing_user(platform: RunningPlatform) -> None:
    # Given a user with an email, who asks for a code by email
    tenant = await platform.new_tenant()
    user = await create_user(platform, tenant.tenant_id, email="ada@example.com")
    assert (await request_code(platform, tenant.tenant_id, email="Ada@Example.com")).status_code == 202
    [code] = await sent_codes(platform, "ada@example.com")

    # When the user logs in with the code
    response = await log_in(platform, tenant.tenant_id, email="ada@example.com", code=code)

    # Then the session is that user's
    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["sub"] == user.id


async def test_only_the_newest_code_counts(platform: RunningPlatform) -> None:
    # Given two codes asked for one after the other
    tenant = await platform.new_tenant()
    for _ in range(2):
        assert (await request_code(platform, tenant.tenant_id, phone="+4930123456")).status_code == 202
    first, second = await sent_codes(platform, "+4930123456")

    # When the phone logs in with the first code (unless both happen to be the same digits)
    if first != second:
        stale = await log_in(platform, tenant.tenant_id, phone="+4930123456", code=first)
        # Then it is refused
        assert_unauthenticated(stale, "invalid-credentials")
    # And the second code works
    assert (await log_in(platform, tenant.tenant_id, phone="+4930123456", code=second)).status_code == 200


async def test_five_wrong_codes_lock_the_code_even_against_the_right_one(platform: RunningPlatform) -> None:
    # Given a code sent to a phone
    tenant = await platform.new_tenant()
    assert (await request_code(platform, tenant.tenant_id, phone="+4930123456")).status_code == 202
    [code] = await sent_codes(platform, "+4930123456")
    wrong = wrong_code(code)

    # When four wrong codes are tried
    for _ in range(4):
        # Then each is an invalid credential
        attempt = await log_in(platform, tenant.tenant_id, phone="+4930123456", code=wrong)
        assert_unauthenticated(attempt, "invalid-credentials")
    # And the fifth wrong one locks the code
    fifth = await log_in(platform, tenant.tenant_id, phone="+4930123456", code=wrong)
    assert_unauthenticated(fifth, "one-time-code-locked")
    # And even the right code is then refused
    right = await log_in(platform, tenant.tenant_id, phone="+4930123456", code=code)
    assert_unauthenticated(right, "one-time-code-locked")


async def test_an_expired_code_is_refused(platform: RunningPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a code sent to a phone
    tenant = await platform.new_tenant()
    assert (await request_code(platform, tenant.tenant_id, phone="+4930123456")).status_code == 202
    [code] = await sent_codes(platform, "+4930123456")

    # When the right code is used just after its five minutes
    later: datetime = utcnow() + OTP_LIFETIME + timedelta(seconds=1)
    monkeypatch.setattr(sessions, "utcnow", lambda: later)
    response = await log_in(platform, tenant.tenant_id, phone="+4930123456", code=code)

    # Then it is refused
    assert_unauthenticated(response, "invalid-credentials")


async def test_a_code_is_refused_when_none_was_sent(platform: RunningPlatform) -> None:
    # Given a tenant where no code was asked for
    tenant = await platform.new_tenant()

    # When someone logs in with a guessed code
    response = await log_in(platform, tenant.tenant_id, phone="+4930123456", code="123456")

    # Then it is refused like a wrong code
    assert_unauthenticated(response, "invalid-credentials")


async def test_the_sixth_code_for_one_destination_within_an_hour_is_a_429(platform: RunningPlatform) -> None:
    # Given five codes sent to one phone
    tenant = await platform.new_tenant()
    for _ in range(5):
        assert (await request_code(platform, tenant.tenant_id, phone="+4930123456")).status_code == 202

    # When a sixth is asked for
    response = await request_code(platform, tenant.tenant_id, phone="+4930123456")

    # Then it is refused with the time until the next one may be sent: an hour / 5 codes, less the
    # few moments the five took
    assert response.status_code == 429
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEM_BASE + "too-many-requests"
    assert 710 < int(response.headers["retry-after"]) <= 720
    # And no sixth code went out
    assert len(await sent_codes(platform, "+4930123456")) == 5
    # And another phone still gets its code
    assert (await request_code(platform, tenant.tenant_id, phone="+4930999999")).status_code == 202


async def test_codes_are_limited_per_client_address(tmp_path: Path) -> None:
    # Given a platform that sends at most three codes an hour to one client address
    async with running_platform(settings_for(tmp_path, otp_ip_per_hour=3)) as platform:
        tenant = await platform.new_tenant()
        for number in ("+4930100001", "+4930100002", "+4930100003"):
            sent = await request_code(platform, tenant.tenant_id, phone=number, ip="203.0.113.7")
            assert sent.status_code == 202

        # When the same address asks for a code for a fourth phone
        response = await request_code(platform, tenant.tenant_id, phone="+4930100004", ip="203.0.113.7")

        # Then it is refused with the time until the next one (an hour / 3 codes, less the moments taken)
        assert response.status_code == 429
        assert response.json()["type"] == PROBLEM_BASE + "too-many-requests"
        assert 1190 < int(response.headers["retry-after"]) <= 1200
        assert await sent_codes(platform, "+4930100004") == []
        # And another address may ask for that phone's code
        other = await request_code(platform, tenant.tenant_id, phone="+4930100004", ip="198.51.100.9")
        assert other.status_code == 202
        assert len(await sent_codes(platform, "+4930100004")) == 1
