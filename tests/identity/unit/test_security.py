"""Passwords (argon2id), signing keys and the access tokens identity signs with them."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from doorstep.identity.domain.keys import SigningKey
from doorstep.identity.security import Claims, TokenSigner, hash_password, new_signing_key, verify_password
from doorstep.infra.revocations import MemoryRevocationList
from doorstep.kernel.permissions import Reach

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
LIFETIME = timedelta(minutes=10)
CLAIMS = Claims(
    tenant_id="t-1",
    user_id="u-1",
    roles=frozenset({"merchant_staff", "customer"}),
    permissions=frozenset({"orders.read", "catalog.manage"}),
    reach=Reach.MERCHANTS,
    merchant_ids=frozenset({"m-2", "m-1"}),
)


class KeyStore:
    """The signing keys as the database would hand them over; counts how often they are loaded."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.loads = 0

    async def load(self) -> Sequence[SigningKey]:
        self.loads += 1
        return list(self.keys)


def signer_for(store: KeyStore, *, reload: timedelta = timedelta(seconds=60)) -> TokenSigner:
    return TokenSigner(
        load_keys=store.load, issuer="doorstep", audience="doorstep", lifetime=LIFETIME, reload=reload
    )


def verify(token: str, key: SigningKey) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        token,
        jwt.PyJWK(key.public_jwk),
        algorithms=["EdDSA"],
        audience="doorstep",
        issuer="doorstep",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    return claims


# --- passwords --------------------------------------------------------------------------------------


async def test_a_password_hash_is_salted_argon2id_and_verifies_only_the_password() -> None:
    # Given a password hashed twice
    first = await hash_password("correct horse battery staple")
    second = await hash_password("correct horse battery staple")

    # Then each hash is argon2id, salted differently, and never contains the password
    assert first.startswith("$argon2id$")
    assert first != second
    assert "correct horse" not in first
    # And each verifies the password and nothing else
    assert await verify_password(first, "correct horse battery staple") is True
    assert await verify_password(second, "correct horse battery staple") is True
    assert await verify_password(first, "correct horse battery stapler") is False
    assert await verify_password(first, "") is False


async def test_no_hash_or_a_broken_hash_never_verifies() -> None:
    # Given no user (no hash), and a hash that is not one
    # When a password is checked against each
    # Then neither verifies, not even the dummy hash's own password
    assert await verify_password(None, "doorstep: no such user") is False
    assert await verify_password(None, "anything") is False
    assert await verify_password("not-a-hash", "anything") is False
    assert await verify_password("$argon2id$v=19$m=65536,t=3,p=4$broken", "anything") is False


# --- signing keys -----------------------------------------------------------------------------------


def test_a_new_signing_key_is_ed25519_with_its_public_half_as_a_jwk() -> None:
    # Given a new signing key
    key = new_signing_key(NOW)

    # Then its JWK is the public half only, named by the key's id
    assert key.algorithm == "EdDSA"
    assert key.created_at == NOW
    assert set(key.public_jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert key.public_jwk["kty"] == "OKP"
    assert key.public_jwk["crv"] == "Ed25519"
    assert key.public_jwk["alg"] == "EdDSA"
    assert key.public_jwk["use"] == "sig"
    assert key.public_jwk["kid"] == key.kid
    # And `x` is the public key of the private key kept
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key.public_jwk["x"] == base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    # And it signs and is published
    assert key.signs() is True
    assert key.published(NOW + timedelta(days=365)) is True
    # And no two keys are alike
    other = new_signing_key(NOW)
    assert other.kid != key.kid
    assert other.public_jwk["x"] != key.public_jwk["x"]


def test_a_retired_key_stops_signing_and_stays_published_until_its_tokens_expire() -> None:
    # Given a key
    key = new_signing_key(NOW)

    # When it is retired
    key.retire(now=NOW, token_lifetime=LIFETIME)

    # Then it stops signing at once, and is published a minute longer than its last token lives
    assert key.signs() is False
    assert key.retired_at == NOW
    assert key.expires_at == NOW + LIFETIME + timedelta(minutes=1)
    assert key.published(NOW + LIFETIME + timedelta(seconds=59)) is True
    assert key.published(NOW + LIFETIME + timedelta(minutes=1)) is False
    # And retiring it again later changes nothing
    key.retire(now=NOW + timedelta(hours=1), token_lifetime=LIFETIME)
    assert key.retired_at == NOW
    assert key.expires_at == NOW + LIFETIME + timedelta(minutes=1)


# --- access tokens ----------------------------------------------------------------------------------


async def test_an_access_token_carries_the_claims_and_verifies_with_the_public_key() -> None:
    # Given a signer with one key
    key = new_signing_key(NOW)
    signer = signer_for(KeyStore(key))

    # When it signs a user's claims
    issued = await signer.sign(CLAIMS, now=NOW)

    # Then the header names the key, and the token verifies with the published JWK
    assert jwt.get_unverified_header(issued.token) == {"alg": "EdDSA", "kid": key.kid, "typ": "at+jwt"}
    claims = verify(issued.token, key)
    # And the claims say who, where, with what, until when
    assert claims == {
        "iss": "doorstep",
        "aud": "doorstep",
        "sub": "u-1",
        "iat": NOW.timestamp(),
        "nbf": int(NOW.timestamp()),
        "exp": int((NOW + LIFETIME).timestamp()),
        "jti": issued.token_id,
        "tid": "t-1",
        "roles": ["customer", "merchant_staff"],
        "perms": ["catalog.manage", "orders.read"],
        "reach": "merchants",
        "mer": ["m-1", "m-2"],
    }
    assert issued.expires_at == NOW + LIFETIME
    # And each token has its own id
    assert (await signer.sign(CLAIMS, now=NOW)).token_id != issued.token_id


@pytest.mark.parametrize("microsecond", [0, 400, 999_600, 123_456, 999_999])
async def test_iat_is_never_later_than_the_moment_of_signing(microsecond: int) -> None:
    # Given a signer
    signer = signer_for(KeyStore(new_signing_key(NOW)))
    now = NOW.replace(microsecond=microsecond)

    # When it signs at a moment anywhere within a millisecond
    issued = await signer.sign(CLAIMS, now=now)

    # Then `iat` is that moment or a little before it (within a millisecond), never after it
    iat = jwt.decode(issued.token, options={"verify_signature": False})["iat"]
    assert now.timestamp() - 0.001 < iat <= now.timestamp()


async def test_a_token_signed_just_before_a_log_out_is_caught_by_the_cut_off() -> None:
    # Given a token signed 100 microseconds before the user logged out everywhere
    signer = signer_for(KeyStore(new_signing_key(NOW)))
    signed_at = NOW.replace(microsecond=999_600)
    issued = await signer.sign(CLAIMS, now=signed_at)
    logged_out_at = signed_at + timedelta(microseconds=100)
    revocations = MemoryRevocationList(clock=lambda: logged_out_at)
    await revocations.revoke_subject("u-1", issued_before=logged_out_at, until=logged_out_at + LIFETIME)

    # When the verifier checks it, reading the issue time from the token as it does
    iat = jwt.decode(issued.token, options={"verify_signature": False})["iat"]
    revoked = await revocations.is_revoked(issued.token_id, "u-1", datetime.fromtimestamp(iat, UTC))

    # Then it is revoked
    assert revoked is True


async def test_the_newest_key_that_still_signs_is_used() -> None:
    # Given an old retired key, two signing keys, and a newer key that is retired already
    oldest = new_signing_key(NOW - timedelta(days=90))
    oldest.retire(now=NOW - timedelta(days=60), token_lifetime=LIFETIME)
    older = new_signing_key(NOW - timedelta(days=60))
    newest = new_signing_key(NOW - timedelta(days=1))
    retired = new_signing_key(NOW)
    retired.retire(now=NOW, token_lifetime=LIFETIME)
    signer = signer_for(KeyStore(oldest, newest, retired, older))

    # When a token is signed
    issued = await signer.sign(CLAIMS, now=NOW)

    # Then it is signed with the newest key that still signs
    assert jwt.get_unverified_header(issued.token)["kid"] == newest.kid
    verify(issued.token, newest)


async def test_the_keys_are_reloaded_at_most_every_reload_period_or_when_forgotten() -> None:
    # Given a signer that reloads its keys every 60 seconds
    first = new_signing_key(NOW - timedelta(days=1))
    store = KeyStore(first)
    signer = signer_for(store, reload=timedelta(seconds=60))
    assert jwt.get_unverified_header((await signer.sign(CLAIMS, now=NOW)).token)["kid"] == first.kid

    # When another instance rotates to a new key
    second = new_signing_key(NOW)
    first.retire(now=NOW, token_lifetime=LIFETIME)
    store.keys = [first, second]

    # Then this one signs with the old key until its reload period is over (the JWKS still has it)
    within = await signer.sign(CLAIMS, now=NOW + timedelta(seconds=60))
    assert jwt.get_unverified_header(within.token)["kid"] == first.kid
    assert store.loads == 1
    # And with the new key after it
    after = await signer.sign(CLAIMS, now=NOW + timedelta(seconds=61))
    assert jwt.get_unverified_header(after.token)["kid"] == second.kid
    assert store.loads == 2

    # And when this instance rotated the keys itself, it forgets them and reloads at once
    third = new_signing_key(NOW + timedelta(seconds=62))
    second.retire(now=NOW + timedelta(seconds=62), token_lifetime=LIFETIME)
    store.keys = [first, second, third]
    signer.forget()
    forgotten = await signer.sign(CLAIMS, now=NOW + timedelta(seconds=62))
    assert jwt.get_unverified_header(forgotten.token)["kid"] == third.kid
    assert store.loads == 3


async def test_without_keys_the_signer_asks_for_the_first_one() -> None:
    # Given a signer whose service has no key yet, and a way to make one
    store = KeyStore()
    signer = signer_for(store)
    made: list[SigningKey] = []

    async def ensure_key() -> object:
        key = new_signing_key(NOW)
        made.append(key)
        store.keys.append(key)
        return key.kid

    signer.ensure_key = ensure_key

    # When it signs
    issued = await signer.sign(CLAIMS, now=NOW)

    # Then it made exactly one key and signed with it
    [key] = made
    assert jwt.get_unverified_header(issued.token)["kid"] == key.kid
    verify(issued.token, key)


async def test_without_any_key_signing_fails_loudly() -> None:
    # Given a signer with no keys, once with nothing to make one and once with a maker that does not
    bare = signer_for(KeyStore())
    futile = signer_for(KeyStore())

    async def make_nothing() -> object:
        return None

    futile.ensure_key = make_nothing

    # When each signs
    # Then each fails saying what to do, rather than signing with nothing
    for signer in (bare, futile):
        with pytest.raises(RuntimeError, match="no signing key"):
            await signer.sign(CLAIMS, now=NOW)
