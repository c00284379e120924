"""Building an `OrderDraft` from a platform payload, naming the platform's field when it does not fit."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from doorstep.contracts.orders import OrderDraft
from doorstep.integrations.adapters.platforms.doorstep_json import field_path
from doorstep.integrations.ports import SignatureInvalid, UnmappablePayload


def validated_draft(raw: Mapping[str, Any], sources: Mapping[str, str]) -> OrderDraft:
    """Validate `raw`; an error names the platform field recorded in `sources` for the longest dotted
    prefix of the draft field (`"dropoff.phone"`, else `"dropoff"`), followed by the rest of the path."""
    try:
        return OrderDraft.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        for end in range(len(loc), 0, -1):
            base = sources.get(".".join(str(part) for part in loc[:end]))
            if base is not None:
                raise UnmappablePayload(first["msg"], field=field_path(loc[end:], base=base)) from None
        raise UnmappablePayload(first["msg"], field=field_path(loc) or None) from None


def pickup_from_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    pickup = settings.get("pickup")
    if not isinstance(pickup, Mapping):
        raise UnmappablePayload("the connection has no pickup stop configured", field="settings.pickup")
    return dict(pickup)


def microseconds(value: Any, field: str) -> int:
    """An ISO 8601 time (naive means UTC, as WooCommerce's `_gmt` fields are) as µs since the epoch."""
    if not isinstance(value, str) or not value.strip():
        raise UnmappablePayload("missing or not a time", field=field)
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UnmappablePayload(f"{value!r} is not an ISO 8601 time", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def verify_base64_hmac(header_name: str, header: str | None, message: bytes, secret: str) -> None:
    """Raise `SignatureInvalid` unless `header` is the base64 HMAC-SHA256 of `message` under `secret`."""
    if header is None or not header.strip():
        raise SignatureInvalid(f"missing {header_name} header")
    try:
        received = base64.b64decode(header.strip(), validate=True)
    except ValueError:
        raise SignatureInvalid(f"malformed {header_name} header: not base64") from None
    expected = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, received):
        raise SignatureInvalid(f"{header_name} does not match the body")


def sign_base64(message: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode("ascii")
