"""Connections to partner platforms and the deliveries they send."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from doorstep.kernel.aggregate import Aggregate
from doorstep.kernel.ids import new_id

# Settings whose names say they are credentials (an API token, a consumer secret, an encryption key):
# stored for the adapters to use, never shown again, in answers or in the audit log.
_SECRET_SETTING = re.compile(r"(secret|token|password|key)$", re.IGNORECASE)
REDACTED = "***"


def public_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` as it may be shown: credentials replaced by `REDACTED`, at any depth."""
    return {
        name: REDACTED
        if _SECRET_SETTING.search(name) and value is not None
        else public_settings(value)
        if isinstance(value, dict)
        else value
        for name, value in settings.items()
    }


class DeliveryStatus(StrEnum):
    MAPPED = "mapped"
    FAILED = "failed"


@dataclass(kw_only=True)
class Connection(Aggregate):
    id: str
    platform: str
    token: str
    secret: str
    settings: dict[str, Any]
    created_at: datetime

    @classmethod
    def open(
        cls, *, tenant_id: str, platform: str, settings: dict[str, Any], secret: str | None, now: datetime
    ) -> Connection:
        """A new connection; its webhook URL carries an unguessable token, its secret signs deliveries."""
        return cls(
            id=new_id(),
            tenant_id=tenant_id,
            platform=platform,
            token=secrets.token_urlsafe(24),
            secret=secret or "whsec_" + secrets.token_urlsafe(32),
            settings=settings,
            created_at=now,
        )


@dataclass(kw_only=True)
class InboundDelivery(Aggregate):
    """One webhook call as it arrived, kept whether or not it could be mapped."""

    id: str
    connection_id: str
    platform: str
    platform_delivery_id: str | None
    headers: dict[str, str]
    body: bytes
    received_at: datetime
    status: DeliveryStatus
    external_id: str | None = None
    failure_field: str | None = None
    failure_reason: str | None = None
    attempts: int = 1

    def mapped(self, external_id: str) -> None:
        self.status = DeliveryStatus.MAPPED
        self.external_id = external_id
        self.failure_field = None
        self.failure_reason = None

    def failed(self, *, reason: str, field: str | None) -> None:
        self.status = DeliveryStatus.FAILED
        self.failure_reason = reason
        self.failure_field = field
