"""Doorstep's own webhook format: the body is an `OrderDraft`, signed like `Doorstep-Signature: t=...,v1=...`."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from doorstep.contracts.orders import OrderDraft
from doorstep.integrations.ports import MappedOrder, SignatureInvalid, UnmappablePayload

SIGNATURE_HEADER = "doorstep-signature"
DELIVERY_ID_HEADER = "doorstep-delivery-id"
# Bounds how long a captured delivery can be replayed; also how far sender and receiver clocks may drift.
TIMESTAMP_TOLERANCE_SECONDS = 300


def _hmac_hex(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_doorstep_payload(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The `Doorstep-Signature` header value for `body`, signed now unless `timestamp` is given."""
    t = str(int(time.time()) if timestamp is None else timestamp)
    return f"t={t},v1={_hmac_hex(secret, t, body)}"


def field_path(loc: Sequence[int | str], *, base: str = "") -> str:
    """`("items", 0, "sku")` as `items[0].sku`, appended to `base` when given."""
    path = base
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _parse_signature(header: str) -> tuple[str, list[str]]:
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise SignatureInvalid(f"malformed Doorstep-Signature header: {part.strip()!r} is not key=value")
        if key == "t":
            if timestamp is not None:
                raise SignatureInvalid("malformed Doorstep-Signature header: more than one t=")
            if not (value.isascii() and value.isdigit()):
                raise SignatureInvalid("malformed Doorstep-Signature header: t= is not unix seconds")
            timestamp = value
        elif key == "v1":
            signatures.append(value)
        # Other schemes (a future v2) are skipped so senders can add them before we verify them.
    if timestamp is None:
        raise SignatureInvalid("malformed Doorstep-Signature header: no t= timestamp")
    if not signatures:
        raise SignatureInvalid("malformed Doorstep-Signature header: no v1= signature")
    return timestamp, signatures


class DoorstepAdapter:
    """Inbound webhooks in Doorstep's documented format (an `OrderDraft` with a required `external_id`)."""

    name: str = "doorstep"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def verify(
        self, *, headers: Mapping[str, str], body: bytes, secret: str, settings: Mapping[str, Any] = {}
    ) -> None:
        """Raise `SignatureInvalid` unless a v1 signature matches and its timestamp is recent."""
        header = headers.get(SIGNATURE_HEADER)
        if header is None or not header.strip():
            raise SignatureInvalid("missing Doorstep-Signature header")
        timestamp, candidates = _parse_signature(header)
        expected = _hmac_hex(secret, timestamp, body).encode()
        # Several v1 entries let a sender sign with the old and the new secret while rotating.
        if not any(hmac.compare_digest(expected, c.strip().lower().encode()) for c in candidates):
            raise SignatureInvalid("no v1 signature in Doorstep-Signature matches the body")
        # Checked after the signature so that a stale message only ever describes an authentic delivery.
        skew = abs(self._clock() - int(timestamp))
        if skew > TIMESTAMP_TOLERANCE_SECONDS:
            raise SignatureInvalid(
                f"Doorstep-Signature timestamp is {int(skew)}s from now; "
                f"the tolerance is {TIMESTAMP_TOLERANCE_SECONDS}s"
            )

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str | None:
        """The sender's `Doorstep-Delivery-Id`, if any."""
        return headers.get(DELIVERY_ID_HEADER) or None

    def map_order(self, payload: Any, *, settings: Mapping[str, Any]) -> MappedOrder:
        """Validate the payload as an `OrderDraft`; `external_id` is what makes redeliveries idempotent."""
        if not isinstance(payload, dict):
            raise UnmappablePayload("payload is not a JSON object")
        try:
            draft = OrderDraft.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UnmappablePayload(first["msg"], field=field_path(first["loc"]) or None) from None
        if draft.external_id is None:
            raise UnmappablePayload("required for platform deliveries", field="external_id")
        return MappedOrder(external_id=draft.external_id, draft=draft)
