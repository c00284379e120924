"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` per secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime

PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 after `whsec_` (the spec's format; receivers decode it the same way)."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secrets: Sequence[str], *, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; during a rotation one signature per secret, space-separated,
    so a receiver that still holds the old secret verifies as well as one that has the new."""
    timestamp = int(at.timestamp())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id=message_id, timestamp=timestamp, body=body) for secret in secrets
        ),
    }
