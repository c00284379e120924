"""Cursor pagination: opaque cursors, `{"items": [...], "next_cursor": ...}` pages."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from doorstep.kernel.errors import InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "the cursor is not one this API returned", field="cursor", location="query"
        ) from None
    if not isinstance(position, dict):
        raise InvalidInput("the cursor is not one this API returned", field="cursor", location="query")
    return position
