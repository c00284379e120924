"""Passwords (argon2id) and access tokens (EdDSA JWTs) as identity makes them."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from doorstep.identity.domain.keys import SigningKey
from doorstep.kernel.ids import new_id
from doorstep.kernel.permissions import Reach

ALGORITHM = "EdDSA"
_HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106 "low memory") parameters
# Compared against when the user does not exist, so an unknown email costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("doorstep: no such user")


async def hash_password(password: str) -> str:
    # ~50 ms of CPU: off the event loop so other requests go on meanwhile.
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def new_signing_key(now: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = new_id()
    public_raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(public_raw).rstrip(b"=").decode(),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }
    return SigningKey(kid=kid, algorithm=ALGORITHM, private_pem=pem, public_jwk=jwk, created_at=now)


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    token_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Claims:
    tenant_id: str
    user_id: str
    roles: frozenset[str]
    permissions: frozenset[str]
    reach: Reach
    merchant_ids: frozenset[str]


class TokenSigner:
    """Signs access tokens with the newest signing key; reloads the keys at most every `reload` seconds.

    Several identity instances share the keys through the database; after a rotation, an instance may
    sign with the retired key until its next reload, which the retired key's time in the JWKS covers.
    """

    def __init__(
        self,
        *,
        load_keys: Callable[[], Awaitable[Sequence[SigningKey]]],
        issuer: str,
        audience: str,
        lifetime: timedelta,
        reload: timedelta = timedelta(seconds=60),
    ) -> None:
        # Set by bootstrap once the bus exists: makes the first key when the service has none yet.
        self.ensure_key: Callable[[], Awaitable[object]] | None = None
        self._load_keys = load_keys
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self._reload = reload
        self._key: tuple[str, Ed25519PrivateKey] | None = None
        self._loaded_at: datetime | None = None

    def forget(self) -> None:
        """Reload on the next signature (after this instance rotated the keys)."""
        self._key = None

    async def _signing_key(self, now: datetime) -> tuple[str, Ed25519PrivateKey]:
        if self._key is None or self._loaded_at is None or now - self._loaded_at > self._reload:
            signing = [key for key in await self._load_keys() if key.signs()]
            if not signing and self.ensure_key is not None:
                await self.ensure_key()
                signing = [key for key in await self._load_keys() if key.signs()]
            if not signing:
                raise RuntimeError("identity has no signing key: migrate and start the identity service")
            newest = max(signing, key=lambda key: key.created_at)
            private = serialization.load_pem_private_key(newest.private_pem.encode(), password=None)
            assert isinstance(private, Ed25519PrivateKey)
            self._key = (newest.kid, private)
            self._loaded_at = now
        return self._key

    async def sign(self, claims: Claims, *, now: datetime) -> AccessToken:
        kid, private = await self._signing_key(now)
        token_id = new_id()
        expires_at = now + self.lifetime
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": claims.user_id,
            # Fractional (RFC 7519 allows it): "every token issued before the log-out" must not also
            # catch the one issued in the same second just after it. Rounded down, never up: a token
            # signed just before a cut-off must not claim a moment after it.
            "iat": int(now.timestamp()) + now.microsecond // 1000 / 1000,
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": token_id,
            "tid": claims.tenant_id,
            "roles": sorted(claims.roles),
            "perms": sorted(claims.permissions),
            "reach": claims.reach.value,
            "mer": sorted(claims.merchant_ids),
        }
        token = jwt.encode(payload, private, algorithm=ALGORITHM, headers={"kid": kid, "typ": "at+jwt"})
        return AccessToken(token=token, token_id=token_id, expires_at=expires_at)
