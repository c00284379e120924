"""Cursor pagination: opaque cursors, `{"items": [...], "next_cursor": ...}` pages."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Row, Select

from doorstep.kernel.errors import InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def newest_first(
    query: Select[Any], id_column: ColumnElement[str], *, limit: int, cursor: str | None
) -> Select[Any]:
    """Keyset pagination on ids that sort by creation time (UUIDv7), newest first.

    One row more than asked is fetched: its presence says there is a next page (see `page_of`).
    """
    if cursor:
        before = decode_cursor(cursor).get("before")
        if not isinstance(before, str) or not before:
            raise InvalidInput("the cursor is not one this API returned", field="cursor", location="query")
        query = query.where(id_column < before)
    return query.order_by(id_column.desc()).limit(limit + 1)


def page_of(rows: Sequence[Row[Any]], limit: int) -> tuple[Sequence[Row[Any]], str | None]:
    """The rows of this page and the cursor of the next, for a query made by `newest_first`."""
    page = rows[:limit]
    return page, encode_cursor({"before": page[-1].id}) if len(rows) > limit and page else None


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
