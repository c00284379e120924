"""Every process's view of identity: access tokens verified locally from the JWKS, API keys asked for.

- Access tokens (JWTs) are checked here, with the public keys identity serves at
  `/.well-known/jwks.json`, and against the shared revocation list (log-out, deactivation).
- API keys are checked by identity's `/v1/identity/introspect`, and the answer is cached briefly; a
  revoked key is on the revocation list at once, so the cache cannot keep it alive.

In the all-in-one shape the HTTP client's transport is in-process: same code, no socket.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import structlog

from doorstep.infra.shared import Shared
from doorstep.kernel.auth import MAX_CREDENTIAL_LENGTH, Principal
from doorstep.kernel.errors import ServiceUnavailable
from doorstep.kernel.limits import RevocationList
from doorstep.kernel.permissions import Reach
from doorstep.kernel.settings import Settings

log = structlog.get_logger()
_MAX_CACHED = 10_000
JWKS_PATH = "/.well-known/jwks.json"
ALGORITHMS = ("EdDSA",)
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "jti", "tid"]
_LEEWAY_SECONDS = 5


class IdentityUnavailable(ServiceUnavailable):
    pass


def looks_like_jwt(credential: str) -> bool:
    return credential.startswith("eyJ") and credential.count(".") == 2


def api_key_revocation_id(api_key_id: str) -> str:
    """API keys share the revocation list with tokens, under their own names."""
    return f"api_key:{api_key_id}"


class HttpJwks:
    """The public keys, fetched from identity and kept `cache_seconds`; an unknown `kid` fetches again.

    The refetch for an unknown `kid` happens at most every `refetch_seconds`, so tokens with made-up key
    ids cannot turn into a flood of requests to identity.
    """

    def __init__(
        self, client: httpx.AsyncClient, *, cache_seconds: float = 300.0, refetch_seconds: float = 5.0
    ) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._refetch_seconds = refetch_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._next_try = float("-inf")

    async def key(self, kid: str) -> jwt.PyJWK | None:
        now = time.monotonic()
        stale = now - self._fetched_at > self._cache_seconds
        unknown = kid not in self._keys
        if (stale or unknown) and now >= self._next_try:
            await self._fetch(now)
            if kid not in self._keys:  # a made-up kid: no more fetches for refetch_seconds
                self._next_try = now + self._refetch_seconds
        return self._keys.get(kid)

    async def _fetch(self, now: float) -> None:
        try:
            response = await self._client.get(JWKS_PATH)
        except httpx.HTTPError as error:
            if self._keys:  # keep verifying with the keys we have; try again a little later
                log.warning("jwks_fetch_failed", error=str(error))
                self._next_try = now + self._refetch_seconds
                return
            raise IdentityUnavailable(f"identity did not answer: {error}") from error
        if response.status_code != 200:
            if self._keys:
                log.warning("jwks_fetch_failed", status=response.status_code)
                self._next_try = now + self._refetch_seconds
                return
            raise IdentityUnavailable(f"identity answered {response.status_code} for its JWKS")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in response.json().get("keys", []):
            if entry.get("alg") in ALGORITHMS and entry.get("kid"):
                keys[entry["kid"]] = jwt.PyJWK(entry)
        self._keys = keys
        self._fetched_at = now

    async def close(self) -> None:
        await self._client.aclose()


class JwtVerifier:
    """Checks signature (EdDSA only: `none`, HS256 and RS256 are refused), `iss`, `aud`, `exp`, revocation."""

    def __init__(self, jwks: HttpJwks, revocations: RevocationList, *, issuer: str, audience: str) -> None:
        self._jwks = jwks
        self._revocations = revocations
        self._issuer = issuer
        self._audience = audience

    async def verify(self, token: str) -> Principal | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return None
        kid = header.get("kid")
        if header.get("alg") not in ALGORITHMS or not isinstance(kid, str):
            return None
        key = await self._jwks.key(kid)
        if key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.InvalidTokenError:
            return None
        principal = _principal_of(claims)
        if principal is None:
            return None
        issued_at = datetime.fromtimestamp(claims["iat"], UTC)
        if await self._revocations.is_revoked(claims["jti"], claims["sub"], issued_at):
            return None
        return principal


def _principal_of(claims: dict[str, Any]) -> Principal | None:
    try:
        return Principal(
            tenant_id=str(claims["tid"]),
            subject=str(claims["sub"]),
            kind="user",
            permissions=frozenset(claims.get("perms", ())),
            roles=frozenset(claims.get("roles", ())),
            reach=Reach(claims.get("reach", Reach.OWN.value)),
            merchant_ids=frozenset(claims.get("mer", ())),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (TypeError, ValueError):
        return None


class HttpAuthenticator:
    """API keys through identity's introspection, cached for `cache_seconds`; tokens through `JwtVerifier`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        revocations: RevocationList | None = None,
        tokens: JwtVerifier | None = None,
        cache_seconds: float = 10.0,
    ) -> None:
        self._client = client
        self._revocations = revocations
        self._tokens = tokens
        self._cache_seconds = cache_seconds
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def authenticate(self, credential: str) -> Principal | None:
        if len(credential) > MAX_CREDENTIAL_LENGTH:
            return None
        if looks_like_jwt(credential):
            return await self._tokens.verify(credential) if self._tokens is not None else None
        principal = await self._api_key(credential)
        if principal is None:
            return None
        if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
            self._cache.pop(credential, None)
            return None
        if self._revocations is not None:
            revocation_id = api_key_revocation_id(principal.subject)
            epoch = datetime.fromtimestamp(0, UTC)
            if await self._revocations.is_revoked(revocation_id, revocation_id, epoch):
                self._cache.pop(credential, None)
                return None
        return principal

    async def _api_key(self, credential: str) -> Principal | None:
        now = time.monotonic()
        cached = self._cache.get(credential)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = await self._client.post("/v1/identity/introspect", json={"credential": credential})
        except httpx.HTTPError as error:
            raise IdentityUnavailable(f"identity did not answer: {error}") from error
        if 400 <= response.status_code < 500:
            # Identity refused the question itself (say, a credential longer than any key): not a key.
            return None
        if response.status_code != 200:
            raise IdentityUnavailable(f"identity answered {response.status_code}")
        body = response.json()
        if not body.get("active"):
            self._cache.pop(credential, None)
            return None
        principal = Principal.from_dict(body)
        if self._cache_seconds > 0:
            self._cache[credential] = (now + self._cache_seconds, principal)
            self._cache.move_to_end(credential)
            while len(self._cache) > _MAX_CACHED:
                self._cache.popitem(last=False)
        return principal

    async def close(self) -> None:
        await self._client.aclose()


def make_authenticator(settings: Settings, client: httpx.AsyncClient, shared: Shared) -> HttpAuthenticator:
    """Access tokens verified here from identity's JWKS; API keys asked of identity, briefly cached."""
    tokens = JwtVerifier(
        HttpJwks(client, cache_seconds=settings.jwks_cache_seconds),
        shared.revocations,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )
    return HttpAuthenticator(
        client, revocations=shared.revocations, tokens=tokens, cache_seconds=settings.api_key_cache_seconds
    )
