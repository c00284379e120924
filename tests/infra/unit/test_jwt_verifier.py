"""Access tokens verified locally: the JWKS cache, refetching for unknown keys, identity being down.

Identity is an in-memory JWKS behind `httpx.MockTransport`; time is a clock the test moves by hand.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from doorstep.infra import identity_client
from doorstep.infra.identity_client import HttpAuthenticator, HttpJwks, IdentityUnavailable, JwtVerifier
from doorstep.infra.revocations import MemoryRevocationList
from doorstep.kernel.auth import Principal
from doorstep.kernel.permissions import Reach

ISSUER = "doorstep"
AUDIENCE = "doorstep"
HMAC_SECRET = b"s" * 32


@dataclass
class Key:
    kid: str
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def jwk(self) -> dict[str, str]:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def sign(self, *, kid: str | None = None, **changes: Any) -> str:
        now = int(datetime.now(UTC).timestamp())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "u-1",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": "j-1",
            "tid": "t-1",
            "roles": ["customer"],
            "perms": ["orders.read", "profile.self"],
            "reach": "own",
            "mer": [],
        }
        claims.update(changes)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": kid or self.kid})


class Identity:
    """Identity's JWKS endpoint: serves `keys`, or fails the way it is told to; counts every fetch."""

    def __init__(self, *keys: Key) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.down = False
        self.status = 200

    def answer(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/.well-known/jwks.json"
        self.fetches += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(self.status, json={"keys": [key.jwk for key in self.keys]})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.answer), base_url="http://identity")


class Clock:
    """Stands in for `time.monotonic` inside the identity client only (asyncio keeps the real one)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(identity_client, "time", fake)  # undone by monkeypatch after the test
    return fake


def verifier_for(
    identity: Identity,
    revocations: MemoryRevocationList | None = None,
    *,
    cache_seconds: float = 300.0,
    refetch_seconds: float = 5.0,
) -> JwtVerifier:
    jwks = HttpJwks(identity.client(), cache_seconds=cache_seconds, refetch_seconds=refetch_seconds)
    # (not `revocations or ...`: an empty revocation list has a length of 0, so it is falsy)
    revocations = MemoryRevocationList() if revocations is None else revocations
    return JwtVerifier(jwks, revocations, issuer=ISSUER, audience=AUDIENCE)


# --- what a valid token becomes ---------------------------------------------------------------------


async def test_a_valid_token_becomes_the_users_principal(clock: Clock) -> None:
    # Given identity serving key k-1, and a token signed with it
    key = Key("k-1")
    verifier = verifier_for(Identity(key))
    exp = int(datetime.now(UTC).timestamp()) + 600
    token = key.sign(exp=exp, reach="merchants", mer=["m-2", "m-1"], roles=["merchant_staff"])

    # When it is verified
    principal = await verifier.verify(token)

    # Then it is the user's principal, with what the claims say
    assert principal == Principal(
        tenant_id="t-1",
        subject="u-1",
        kind="user",
        permissions=frozenset({"orders.read", "profile.self"}),
        roles=frozenset({"merchant_staff"}),
        reach=Reach.MERCHANTS,
        merchant_ids=frozenset({"m-1", "m-2"}),
        token_id="j-1",
        expires_at=datetime.fromtimestamp(exp, UTC),
    )


async def test_the_jwks_is_fetched_once_and_kept_for_cache_seconds(clock: Clock) -> None:
    # Given a verifier that keeps the JWKS for 300 seconds
    key = Key("k-1")
    identity = Identity(key)
    verifier = verifier_for(identity, cache_seconds=300)
    token = key.sign()

    # When tokens are verified over the next 300 seconds
    for offset in (0, 1, 150, 300):
        clock.now = 1000.0 + offset
        assert await verifier.verify(token) is not None

    # Then identity was asked once
    assert identity.fetches == 1
    # And once more after that
    clock.now = 1000.0 + 301
    assert await verifier.verify(token) is not None
    assert identity.fetches == 2


async def test_a_key_gone_from_the_jwks_stops_verifying_once_the_cache_is_stale(clock: Clock) -> None:
    # Given a token signed with k-1, verified while k-1 was published
    old, new = Key("k-1"), Key("k-2")
    identity = Identity(old)
    verifier = verifier_for(identity, cache_seconds=300)
    token = old.sign()
    assert await verifier.verify(token) is not None

    # When identity drops k-1 (its tokens have all expired) and the cache goes stale
    identity.keys = [new]
    clock.now += 301

    # Then tokens of k-1 are refused, and tokens of k-2 verify
    assert await verifier.verify(token) is None
    assert await verifier.verify(new.sign()) is not None


# --- unknown key ids --------------------------------------------------------------------------------


async def test_an_unknown_kid_refetches_at_most_once_per_refetch_seconds(clock: Clock) -> None:
    # Given a verifier that refetches for unknown kids at most every 5 s, and identity serving k-1
    key = Key("k-1")
    identity = Identity(key)
    verifier = verifier_for(identity, refetch_seconds=5)

    # When a flood of tokens with made-up kids arrives, ten a second for five seconds
    for step in range(50):
        clock.now = 1000.0 + step * 0.1
        assert await verifier.verify(key.sign(kid=f"made-up-{step}")) is None

    # Then identity was asked once
    assert identity.fetches == 1
    # And in the next five seconds once more, not once per token
    for step in range(50):
        clock.now = 1005.1 + step * 0.1
        assert await verifier.verify(key.sign(kid=f"made-up-again-{step}")) is None
    assert identity.fetches == 2
    # And the known kid verifies from the cache throughout
    assert await verifier.verify(key.sign()) is not None
    assert identity.fetches == 2


async def test_a_new_key_is_found_by_refetching(clock: Clock) -> None:
    # Given a verifier that fetched the JWKS with k-1 a while ago
    old, new = Key("k-1"), Key("k-2")
    identity = Identity(old)
    verifier = verifier_for(identity, refetch_seconds=5)
    assert await verifier.verify(old.sign()) is not None

    # When identity rotates to k-2, and a token of k-2 arrives 10 seconds later
    identity.keys = [new, old]
    clock.now += 10

    # Then the verifier refetches and accepts it, and still accepts k-1's tokens
    assert await verifier.verify(new.sign()) is not None
    assert identity.fetches == 2
    assert await verifier.verify(old.sign()) is not None
    assert identity.fetches == 2


async def test_a_new_key_is_found_right_after_a_routine_fetch(clock: Clock) -> None:
    # Given a verifier that fetched the JWKS (k-1) a second ago, as part of verifying a token
    old, new = Key("k-1"), Key("k-2")
    identity = Identity(old)
    verifier = verifier_for(identity, refetch_seconds=5)
    assert await verifier.verify(old.sign()) is not None

    # When identity rotates to k-2 and a user who just logged in sends a token of k-2
    identity.keys = [new, old]
    clock.now += 1

    # Then the token is accepted: a rotation costs no refused requests (no unknown kid was asked for
    # in the last 5 seconds, so one refetch is due)
    assert await verifier.verify(new.sign()) is not None
    assert identity.fetches == 2


# --- identity down ----------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["connection-refused", "503"])
async def test_identity_down_with_cached_keys_keeps_verifying(clock: Clock, failure: str) -> None:
    # Given a verifier that has fetched the JWKS
    key = Key("k-1")
    identity = Identity(key)
    verifier = verifier_for(identity, cache_seconds=300, refetch_seconds=5)
    token = key.sign()
    assert await verifier.verify(token) is not None

    # When identity goes down, and the cache goes stale
    if failure == "503":
        identity.status = 503
    else:
        identity.down = True
    clock.now += 301

    # Then tokens still verify with the cached keys, and tokens of unknown kids are refused, not errors
    assert await verifier.verify(token) is not None
    assert await verifier.verify(token) is not None
    clock.now += 10
    assert await verifier.verify(key.sign(kid="k-unknown")) is None
    assert await verifier.verify(token) is not None
    # And once identity is back, a request fetches again, and the cache is fresh from then on
    identity.down, identity.status = False, 200
    clock.now += 10
    fetches = identity.fetches
    assert await verifier.verify(token) is not None
    assert await verifier.verify(token) is not None
    clock.now += 299
    assert await verifier.verify(token) is not None
    assert identity.fetches == fetches + 1


async def test_identity_down_is_asked_again_at_most_once_per_refetch_seconds(clock: Clock) -> None:
    # Given a verifier with a stale JWKS cache, and identity down (each try may wait for a timeout)
    key = Key("k-1")
    identity = Identity(key)
    verifier = verifier_for(identity, cache_seconds=300, refetch_seconds=5)
    token = key.sign()
    assert await verifier.verify(token) is not None
    identity.down = True
    clock.now += 301

    # When many requests come within the next 5 seconds
    for step in range(50):
        clock.now = 1301.0 + step * 0.1
        assert await verifier.verify(token) is not None

    # Then identity was tried once in those 5 seconds, not once per request
    assert identity.fetches == 2
    # And tried again after them
    clock.now = 1306.1
    assert await verifier.verify(token) is not None
    assert identity.fetches == 3


@pytest.mark.parametrize("failure", ["connection-refused", "503"])
async def test_identity_down_before_any_fetch_is_a_503(clock: Clock, failure: str) -> None:
    # Given identity is down and nothing was ever fetched
    key = Key("k-1")
    identity = Identity(key)
    if failure == "503":
        identity.status = 503
    else:
        identity.down = True
    verifier = verifier_for(identity)

    # When a token is verified
    with pytest.raises(IdentityUnavailable) as raised:
        await verifier.verify(key.sign())

    # Then the caller gets a retryable 503
    assert raised.value.status == 503
    assert raised.value.slug == "service-unavailable"


async def test_keys_of_other_algorithms_in_the_jwks_are_ignored(clock: Clock) -> None:
    # Given a JWKS that also lists an RSA-style entry and an entry without a kid
    key = Key("k-1")

    def answer(request: httpx.Request) -> httpx.Response:
        secret = base64.urlsafe_b64encode(HMAC_SECRET).rstrip(b"=").decode()
        extra = [{"kty": "oct", "k": secret, "kid": "k-hmac", "alg": "HS256"}, {**key.jwk, "kid": ""}]
        return httpx.Response(200, json={"keys": [key.jwk, *extra]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://identity")
    verifier = JwtVerifier(HttpJwks(client), MemoryRevocationList(), issuer=ISSUER, audience=AUDIENCE)
    hs256 = jwt.encode({"sub": "u-1"}, HMAC_SECRET, algorithm="HS256", headers={"kid": "k-hmac"})

    # When a token of k-1 and an HS256 token naming the HMAC entry are verified
    # Then only the EdDSA one is accepted
    assert await verifier.verify(key.sign()) is not None
    assert await verifier.verify(hs256) is None


# --- refused before any network call ----------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "eyJhbGciOiJub25lIiwia2lkIjoiay0xIn0.eyJzdWIiOiJ1LTEifQ.",  # alg none, kid k-1
        jwt.encode({"sub": "u-1"}, "k" * 32, algorithm="HS256", headers={"kid": "k-1"}),
        jwt.encode({"sub": "u-1"}, Ed25519PrivateKey.generate(), algorithm="EdDSA"),  # no kid
        "eyJhbGciOiJFZERTQSIsImtpZCI6MX0.e30.AAAA",  # kid is a number
        "eyJ.garbage.garbage",
        "",
    ],
    ids=["alg-none", "hs256", "no-kid", "numeric-kid", "garbage", "empty"],
)
async def test_a_token_refused_by_its_header_never_reaches_identity(clock: Clock, token: str) -> None:
    # Given a verifier that has not fetched the JWKS yet
    identity = Identity(Key("k-1"))
    verifier = verifier_for(identity)

    # When a token with a header it refuses is verified
    # Then it is refused without asking identity
    assert await verifier.verify(token) is None
    assert identity.fetches == 0


# --- claims -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "exp", "iat", "jti", "tid"])
async def test_a_token_without_a_required_claim_is_refused(clock: Clock, claim: str) -> None:
    # Given a token signed with the published key but missing one required claim
    key = Key("k-1")
    verifier = verifier_for(Identity(key))

    # When it is verified
    # Then it is refused
    assert await verifier.verify(key.sign(**{claim: None})) is None


@pytest.mark.parametrize(
    "changes",
    [{"iss": "someone-else"}, {"aud": "someone-else"}, {"reach": "galaxy"}, {"perms": 5}],
    ids=["issuer", "audience", "unknown-reach", "perms-not-a-list"],
)
async def test_a_token_with_a_wrong_claim_is_refused(clock: Clock, changes: dict[str, Any]) -> None:
    # Given a token signed with the published key but with one wrong claim
    key = Key("k-1")
    verifier = verifier_for(Identity(key))

    # When it is verified
    # Then it is refused
    assert await verifier.verify(key.sign(**changes)) is None


async def test_expiry_has_a_five_second_leeway(clock: Clock) -> None:
    # Given tokens that expired 3 seconds and 10 seconds ago
    key = Key("k-1")
    verifier = verifier_for(Identity(key))
    now = int(datetime.now(UTC).timestamp())

    # When they are verified
    # Then the first passes (clocks drift) and the second is refused
    assert await verifier.verify(key.sign(iat=now - 600, nbf=now - 600, exp=now - 3)) is not None
    assert await verifier.verify(key.sign(iat=now - 600, nbf=now - 600, exp=now - 10)) is None


async def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(clock: Clock) -> None:
    # Given identity publishes k-1, and an attacker signs with their own key under the kid k-1
    verifier = verifier_for(Identity(Key("k-1")))
    forged = Key("k-1").sign()

    # When it is verified
    # Then it is refused
    assert await verifier.verify(forged) is None


# --- revocation -------------------------------------------------------------------------------------


async def test_a_revoked_token_id_is_refused_and_others_are_not(clock: Clock) -> None:
    # Given token j-1 revoked until its expiry
    key = Key("k-1")
    revocations = MemoryRevocationList()
    verifier = verifier_for(Identity(key), revocations)
    await revocations.revoke_token("j-1", until=datetime.now(UTC) + timedelta(minutes=10))

    # When j-1 and j-2 of the same user are verified
    # Then j-1 is refused and j-2 is not
    assert await verifier.verify(key.sign(jti="j-1")) is None
    assert await verifier.verify(key.sign(jti="j-2")) is not None


async def test_a_revoked_subject_refuses_tokens_issued_before_the_cut_off(clock: Clock) -> None:
    # Given user u-1 logged out everywhere at a moment
    key = Key("k-1")
    revocations = MemoryRevocationList()
    verifier = verifier_for(Identity(key), revocations)
    cutoff = datetime.now(UTC)
    await revocations.revoke_subject("u-1", issued_before=cutoff, until=cutoff + timedelta(minutes=10))
    at = cutoff.timestamp()

    # When tokens issued just before and just after that moment are verified, and one of another user
    before = key.sign(iat=at - 0.001, jti="j-before")
    after = key.sign(iat=at + 0.001, jti="j-after")
    other = key.sign(iat=at - 0.001, sub="u-2", jti="j-other")

    # Then only the one issued before is refused
    assert await verifier.verify(before) is None
    assert await verifier.verify(after) is not None
    assert await verifier.verify(other) is not None


# --- the authenticator in front of it ---------------------------------------------------------------


async def test_the_authenticator_verifies_tokens_locally_never_by_introspection(clock: Clock) -> None:
    # Given an authenticator whose identity serves only the JWKS
    key = Key("k-1")
    identity = Identity(key)
    verifier = verifier_for(identity)
    authenticator = HttpAuthenticator(identity.client(), tokens=verifier, cache_seconds=60)

    # When a token, and then a tampered copy, are authenticated
    token = key.sign()
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload[:-2]}AA.{signature}"

    # Then the token is the user's principal and the tampered one is refused, and only the JWKS was
    # fetched (the JWKS handler would fail the test on any other path)
    principal = await authenticator.authenticate(token)
    assert principal is not None
    assert principal.subject == "u-1"
    assert await authenticator.authenticate(tampered) is None
    assert identity.fetches == 1


async def test_the_authenticator_refuses_an_oversized_credential_unread(clock: Clock) -> None:
    # Given an authenticator
    identity = Identity(Key("k-1"))
    authenticator = HttpAuthenticator(identity.client(), tokens=verifier_for(identity))

    # When a credential longer than any token is authenticated
    # Then it is refused without asking identity
    assert await authenticator.authenticate("eyJ" + "a" * 5000 + ".b.c") is None
    assert identity.fetches == 0
