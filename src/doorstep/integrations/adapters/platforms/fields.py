"""Reading platform payload fields: each helper names the platform's field when the value does not fit."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from doorstep.integrations.ports import UnmappablePayload
from doorstep.kernel.money import InvalidAmount, to_minor_units


def text(value: Any, field: str) -> str | None:
    """The value as stripped text, None when absent or blank."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UnmappablePayload("not a string", field=field)
    stripped = str(value).strip()
    return stripped or None


def json_object(value: Any, field: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise UnmappablePayload("not a JSON object", field=field)
    return value


def json_list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise UnmappablePayload("not a list", field=field)
    return value


def amount(value: Any, currency: str, field: str) -> int:
    if isinstance(value, bool):
        raise UnmappablePayload(f"{value!r} is not an amount", field=field)
    try:
        return to_minor_units(value, currency)
    except InvalidAmount as exc:
        raise UnmappablePayload(str(exc), field=field) from None
    except ArithmeticError:
        # decimal overflows on absurd exponents such as "1e999999" rather than calling them invalid.
        raise UnmappablePayload(f"{value!r} is out of range", field=field) from None


def quantity(value: Any, field: str) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnmappablePayload(f"{value!r} is not a whole number", field=field)
    if value < 1:
        raise UnmappablePayload("must be at least 1", field=field)
    return value


def coordinate(value: Any, field: str) -> float:
    if value is None:
        raise UnmappablePayload("shipping address has no coordinates", field=field)
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError
        number = float(value)
    except ValueError:
        raise UnmappablePayload(f"{value!r} is not a coordinate", field=field) from None
    if not math.isfinite(number):
        raise UnmappablePayload(f"{value!r} is not a coordinate", field=field)
    return number


def first_text(*candidates: tuple[Any, str]) -> tuple[str | None, str | None]:
    """The first non-blank text among `(value, field)` pairs, with the field it came from."""
    for value, field in candidates:
        found = text(value, field)
        if found is not None:
            return found, field
    return None, None


def full_name(person: Mapping[str, Any], base: str) -> str | None:
    parts = (text(person.get(key), f"{base}.{key}") for key in ("first_name", "last_name"))
    return " ".join(part for part in parts if part) or None
