"""Which adapter speaks for a courier account: built from the account's provider, credentials and settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from doorstep.integrations.adapters.platforms.doordash_drive import signing_key
from doorstep.integrations.couriers import doordash_drive, uber_direct
from doorstep.integrations.couriers.domain import Provider
from doorstep.integrations.couriers.ports import CourierPort
from doorstep.integrations.couriers.provider_http import ProviderHttp
from doorstep.kernel.clock import utcnow

# The credentials each network needs; `webhook_secret` of DoorDash is made by Doorstep, not given.
REQUIRED_CREDENTIALS: dict[Provider, tuple[str, ...]] = {
    Provider.DOORDASH_DRIVE: ("developer_id", "key_id", "signing_secret"),
    Provider.UBER_DIRECT: ("customer_id", "client_id", "client_secret", "webhook_signing_key"),
}
SETTINGS: dict[Provider, tuple[str, ...]] = {
    Provider.DOORDASH_DRIVE: ("base_url",),
    Provider.UBER_DIRECT: ("base_url", "auth_url"),
}


def credential_problem(provider: Provider, credentials: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first credential that is missing or malformed, as `(field, why)`; None when all are good."""
    for key in REQUIRED_CREDENTIALS[provider]:
        value = credentials.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > 500 or "\x00" in value:
            return key, f"`{key}` is required: a text of at most 500 characters"
    extra = sorted(set(credentials) - set(REQUIRED_CREDENTIALS[provider]))
    if extra:
        return extra[0], f"`{extra[0]}` is not a {provider.value} credential"
    if provider is Provider.DOORDASH_DRIVE:
        try:
            signing_key(str(credentials["signing_secret"]))
        except ValueError as error:
            return "signing_secret", f"`signing_secret` must be the secret DoorDash shows: {error}"
    return None


def settings_problem(provider: Provider, settings: Mapping[str, Any]) -> tuple[str, str] | None:
    for key, value in settings.items():
        if key not in SETTINGS[provider]:
            return (
                key,
                f"`{key}` is not a {provider.value} setting (allowed: {', '.join(SETTINGS[provider])})",
            )
        if not isinstance(value, str) or not value.startswith(("http://", "https://")) or len(value) > 500:
            return key, f"`{key}` must be an http(s) URL"
    return None


class CourierNetworks:
    """Builds the adapter of a courier account; one HTTP client and one token cache per process."""

    def __init__(self, *, http: ProviderHttp | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.http = http or ProviderHttp()
        self._clock = clock
        self._uber_tokens: dict[str, tuple[str, datetime]] = {}

    def adapter(
        self, provider: Provider, credentials: Mapping[str, str], settings: Mapping[str, str]
    ) -> CourierPort:
        if provider is Provider.DOORDASH_DRIVE:
            return doordash_drive.DoorDashDrive(
                http=self.http,
                developer_id=credentials["developer_id"],
                key_id=credentials["key_id"],
                signing_secret=credentials["signing_secret"],
                webhook_secret=credentials.get("webhook_secret", ""),
                base_url=settings.get("base_url", doordash_drive.DEFAULT_BASE_URL),
                clock=self._clock,
            )
        return uber_direct.UberDirect(
            http=self.http,
            customer_id=credentials["customer_id"],
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
            webhook_signing_key=credentials["webhook_signing_key"],
            base_url=settings.get("base_url", uber_direct.DEFAULT_BASE_URL),
            auth_url=settings.get("auth_url", uber_direct.DEFAULT_AUTH_URL),
            tokens=self._uber_tokens,
            clock=self._clock,
        )
