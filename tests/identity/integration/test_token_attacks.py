"""Forged and tampered access tokens against the all-in-one platform: every one is a 401.

The forgeries that need a valid signature are signed with identity's real private key, read from its
`signing_keys` table, so the only thing wrong with each is the one thing the test names. A control
test shows such a self-signed token with nothing wrong is accepted: the forging itself is sound.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from tests.platform import RunningPlatform

from doorstep.identity.adapters.tables import signing_keys
from doorstep.identity.domain.commands import CreateUser
from doorstep.identity.domain.users import User
from doorstep.kernel.auth import Authenticator
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import PROBLEM_BASE
from doorstep.kernel.ids import new_id

PASSWORD = "correct horse battery staple"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A JWS compact serialisation built by hand, for algorithms PyJWT rightly refuses to make."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


@dataclass
class Forger:
    """A live customer's session, and identity's real signing key to sign variations of it with."""

    user: User
    access_token: str
    kid: str
    private_key: Ed25519PrivateKey
    public_jwk: dict[str, Any]

    def claims(self, **changes: Any) -> dict[str, Any]:
        """The claims identity would issue now; a change to None removes the claim."""
        now = int(utcnow().timestamp())
        claims: dict[str, Any] = {
            "iss": "doorstep",
            "aud": "doorstep",
            "sub": self.user.id,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": new_id(),
            "tid": self.user.tenant_id,
            "roles": ["customer"],
            "perms": ["orders.read"],
            "reach": "own",
            "mer": [],
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def sign(
        self, claims: dict[str, Any], *, kid: str | None = None, key: Ed25519PrivateKey | None = None
    ) -> str:
        return jwt.encode(
            claims,
            key or self.private_key,
            algorithm="EdDSA",
            headers={"kid": kid or self.kid, "typ": "at+jwt"},
        )

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture
async def forger(platform: RunningPlatform) -> Forger:
    tenant = await platform.new_tenant()
    user: User = await platform.services["identity"].bus.handle(
        CreateUser(
            tenant_id=tenant.tenant_id,
            email="ada@example.com",
            password=PASSWORD,
            name="Ada",
            roles=["customer"],
        )
    )
    response = await platform.client.post(
        "/v1/identity/login",
        json={"tenant_id": tenant.tenant_id, "email": "ada@example.com", "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    identity = platform.services["identity"]
    async with identity.database.reader() as session:
        row = (
            await session.execute(
                select(signing_keys)
                .where(signing_keys.c.retired_at.is_(None))
                .order_by(signing_keys.c.created_at.desc())
                .limit(1)
            )
        ).one()
    private = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return Forger(
        user=user,
        access_token=response.json()["access_token"],
        kid=row.kid,
        private_key=private,
        public_jwk=dict(row.public_jwk),
    )


def authenticator(platform: RunningPlatform) -> Authenticator:
    """The one authenticator of the process: the edge's, and the one every in-process service asks."""
    shared: Authenticator = platform.app.state.authenticator
    return shared


async def refused_everywhere(platform: RunningPlatform, token: str) -> None:
    """Identity and orders answer 401, and the process's authenticator knows no principal for it."""
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/v1/identity/tenant", "/v1/orders"):
        response = await platform.client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["type"] == PROBLEM_BASE + "unauthenticated"
    assert await authenticator(platform).authenticate(token) is None


async def accepted(platform: RunningPlatform, token: str) -> httpx.Response:
    response = await platform.client.get("/v1/identity/tenant", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response


# --- controls: what the attacks are measured against ------------------------------------------------


async def test_the_issued_token_and_a_faithful_self_signed_copy_are_accepted(
    platform: RunningPlatform, forger: Forger
) -> None:
    # Given the token identity issued, and one signed here with identity's key and nothing wrong
    faithful = forger.sign(forger.claims())

    # When each is used
    # Then both are accepted as the user, so a refusal below is due to what each attack changes
    assert (await accepted(platform, forger.access_token)).json()["id"] == forger.user.tenant_id
    assert (await accepted(platform, faithful)).json()["id"] == forger.user.tenant_id
    principal = await authenticator(platform).authenticate(faithful)
    assert principal is not None
    assert principal.subject == forger.user.id


# --- algorithm attacks ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_an_unsigned_token_is_refused(platform: RunningPlatform, forger: Forger, alg: str) -> None:
    # Given a token with `alg: none`, no signature, and the claims of a tenant admin
    claims = forger.claims(roles=["tenant_admin"], perms=["api_keys.manage", "orders.read"], reach="tenant")
    token = compact({"alg": alg, "typ": "at+jwt", "kid": forger.kid}, claims, lambda _data: b"")
    assert token.endswith(".")

    # When it is used
    # Then it is refused
    await refused_everywhere(platform, token)


@pytest.mark.parametrize("secret", ["jwks-x-bytes", "jwks-x-text", "public-pem"])
async def test_an_hs256_token_keyed_with_the_public_key_is_refused(
    platform: RunningPlatform, forger: Forger, secret: str
) -> None:
    # Given the public key, as anyone reads it from the JWKS
    jwks = (await platform.client.get("/.well-known/jwks.json")).json()["keys"]
    [published] = [key for key in jwks if key["kid"] == forger.kid]
    secrets = {
        "jwks-x-bytes": b64url_decode(published["x"]),
        "jwks-x-text": published["x"].encode(),
        "public-pem": forger.public_pem,
    }
    assert published["x"] == forger.public_jwk["x"]
    # And a token "signed" HS256 with it as the HMAC secret (the key-confusion attack)
    claims = forger.claims()
    token = compact({"alg": "HS256", "typ": "at+jwt", "kid": forger.kid}, claims, hs256(secrets[secret]))
    # (which is a well-formed HS256 token for that secret)
    signing_input, _, signature = token.rpartition(".")
    assert (
        b64url_decode(signature) == hmac.new(secrets[secret], signing_input.encode(), hashlib.sha256).digest()
    )

    # When it is used
    # Then it is refused
    await refused_everywhere(platform, token)


# --- claims identity did not issue ------------------------------------------------------------------


async def test_an_expired_token_is_refused(platform: RunningPlatform, forger: Forger) -> None:
    # Given a token signed with identity's key that expired a minute ago (beyond any clock leeway)
    now = int(utcnow().timestamp())
    token = forger.sign(forger.claims(iat=now - 660, nbf=now - 660, exp=now - 60))

    # When it is used
    # Then it is refused
    await refused_everywhere(platform, token)


async def test_a_token_not_yet_valid_is_refused(platform: RunningPlatform, forger: Forger) -> None:
    # Given a token signed with identity's key that becomes valid only in an hour
    now = int(utcnow().timestamp())
    token = forger.sign(forger.claims(nbf=now + 3600, exp=now + 4200))

    # When it is used
    # Then it is refused
    await refused_everywhere(platform, token)


@pytest.mark.parametrize(
    ("claim", "value"), [("aud", "another-audience"), ("aud", ["another-audience"]), ("iss", "evil-issuer")]
)
async def test_a_token_for_another_audience_or_from_another_issuer_is_refused(
    platform: RunningPlatform, forger: Forger, claim: str, value: object
) -> None:
    # Given a token signed with identity's key but with a foreign audience or issuer
    token = forger.sign(forger.claims(**{claim: value}))

    # When it is used
    # Then it is refused
    await refused_everywhere(platform, token)


@pytest.mark.parametrize("claim", ["exp", "iss", "aud", "sub", "iat", "jti", "tid"])
async def test_a_token_missing_a_required_claim_is_refused(
    platform: RunningPlatform, forger: Forger, claim: str
) -> None:
    # Given a token signed with identity's key, without one required claim (`exp`: one that never expires)
    token = forger.sign(forger.claims(**{claim: None}))
    assert claim not in jwt.decode(token, options={"verify_signature": False})

    # When it is used
    # Then it is refused
    await refused_everywhere(platform, token)


async def test_a_token_with_a_revoked_jti_is_refused(platform: RunningPlatform, forger: Forger) -> None:
    # Given the user logged out with the issued token
    await accepted(platform, forger.access_token)
    jti = jwt.decode(forger.access_token, options={"verify_signature": False})["jti"]
    logout = await platform.client.post(
        "/v1/identity/logout", headers={"Authorization": f"Bearer {forger.access_token}"}
    )
    assert logout.status_code == 204

    # When the token is used again, and a freshly signed one that reuses its `jti`
    resigned = forger.sign(forger.claims(jti=jti))

    # Then both are refused
    await refused_everywhere(platform, forger.access_token)
    await refused_everywhere(platform, resigned)
    # And a token with another `jti` is not: the revocation is of that token id, not of the user
    await accepted(platform, forger.sign(forger.claims()))


# --- keys identity does not have --------------------------------------------------------------------


async def test_a_token_with_an_unknown_kid_is_refused(platform: RunningPlatform, forger: Forger) -> None:
    # Given a token signed with identity's own key but naming a key id the JWKS does not have
    token = forger.sign(forger.claims(), kid="no-such-key")

    # When it is used
    # Then it is refused
    await refused_everywhere(platform, token)


async def test_a_token_signed_with_another_ed25519_key_is_refused(
    platform: RunningPlatform, forger: Forger
) -> None:
    # Given an attacker's own Ed25519 key, naming first a made-up key id, then identity's key id
    attacker = Ed25519PrivateKey.generate()
    own_kid = forger.sign(forger.claims(), kid=new_id(), key=attacker)
    borrowed_kid = forger.sign(forger.claims(), key=attacker)

    # When each is used
    # Then both are refused
    await refused_everywhere(platform, own_kid)
    await refused_everywhere(platform, borrowed_kid)


# --- tampering and garbage --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"roles": ["tenant_admin"], "perms": ["api_keys.manage"], "reach": "tenant"},
        {"sub": "someone-else"},
        {"tid": "another-tenant"},
        {"exp": 4_102_444_800},  # 2100-01-01
    ],
    ids=["escalated", "other-subject", "other-tenant", "extended"],
)
async def test_a_token_altered_after_signing_is_refused(
    platform: RunningPlatform, forger: Forger, changes: dict[str, Any]
) -> None:
    # Given the issued token with its payload changed and its signature kept
    header, payload, signature = forger.access_token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims.update(changes)
    token = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert token != forger.access_token

    # When it is used
    # Then it is refused
    await refused_everywhere(platform, token)


@pytest.mark.parametrize(
    "garbage",
    [
        "eyJ",
        "eyJhbGciOiJFZERTQSJ9",
        "eyJ.eyJ.eyJ",
        "eyJhbGciOiJFZERTQSJ9.not-base64!.sig",
        "eyJhbGciOiJFZERTQSIsImtpZCI6MX0.e30.AAAA",  # a kid that is a number
        "eyJub3QiOiJhIGhlYWRlciJ9.e30.",  # a header without alg
        "eyJhbGciOiJFZERTQSJ9." + "A" * 4000,
    ],
    ids=["prefix", "header-only", "three-prefixes", "bad-payload", "numeric-kid", "no-alg", "long"],
)
async def test_garbage_that_looks_like_a_jwt_is_refused(platform: RunningPlatform, garbage: str) -> None:
    # Given a string starting like a JWT and nothing more
    # When it is used
    # Then it is refused, not an internal error
    await refused_everywhere(platform, garbage)
