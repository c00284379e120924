"""Parse an orders CSV into `OrderDraft`s while streaming, one group of rows at a time.

Row numbers count data records after the header: row 1 is the first line after the header. Blank lines
count too, so a row number is the spreadsheet's row number minus the header; a quoted cell spanning
several lines is still one row. Consecutive rows with the same external_id form one order: the order's
fields come from its first row and every row adds one item. Only the current group is held in memory,
so the input is never read whole. Open files with ``newline=""`` so line breaks in quoted cells survive.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from doorstep.contracts.orders import Item, OrderDraft

# fmt: off
REQUIRED_COLUMNS = (
    "external_id",
    "pickup_name", "pickup_address",
    "dropoff_name", "dropoff_address",
    "customer_name", "item_name", "quantity", "unit_price", "currency",
)
# Coordinates left out (or both cells blank) are geocoded from the address.
OPTIONAL_COLUMNS = (
    "pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon",
    "merchant_id", "pickup_phone", "dropoff_phone", "customer_phone", "customer_email", "item_sku", "notes",
    "tip", "delivery_fee", "payment_method", "payment_status",
    "pickup_window_start", "pickup_window_end", "dropoff_window_start", "dropoff_window_end",
)
# fmt: on
COLUMNS = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)

_MAX_ITEMS = 500  # OrderDraft.items' max_length; checked per row so the offending row gets the blame
_ITEM_COLUMNS = {"name": "item_name", "sku": "item_sku", "quantity": "quantity", "unit_price": "unit_price"}
# ASCII only: int() would also take underscores and other scripts' digits, which no export means.
_INTEGER = re.compile(r"[+-]?[0-9]+")
# Plain decimals: float() would also take "nan", "inf", "1_0" and exponents.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ParsedOrder:
    """A valid order and the row its group starts on."""

    row: int
    draft: OrderDraft


@dataclass(frozen=True, slots=True)
class RowError:
    """Why an order was rejected: the offending row and CSV column (None when no one column is to blame)."""

    row: int
    field: str | None
    message: str


class CsvHeaderError(ValueError):
    """The header is missing, lacks required columns or names columns the importer does not know."""

    def __init__(self, message: str, *, missing: Sequence[str] = (), unknown: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)
        self.unknown = tuple(unknown)


class _CellError(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def parse_orders(lines: Iterable[str]) -> Iterator[ParsedOrder | RowError]:
    """Yield one ParsedOrder or one RowError per group of rows; raise CsvHeaderError before anything else."""
    reader = csv.reader(lines)
    columns = _read_header(reader)
    id_at = columns.index("external_id")
    group: _Group | None = None
    row = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The record's cells, and so its order, are unknown: it can only be reported on its own.
            if group is not None:
                yield group.result()
                group = None
            yield RowError(row, None, f"the row is not valid CSV: {exc}")
            continue
        if not any(cell.strip() for cell in cells):
            continue
        # Read the id even from a row with the wrong cell count, so that its error sinks its own order.
        key = cells[id_at].strip() if id_at < len(cells) else ""
        if group is not None and (not key or key != group.external_id):
            yield group.result()
            group = None
        if group is None:
            group = _Group(key, row)
        group.add(row, cells, columns)
    if group is not None:
        yield group.result()


def _read_header(reader: Iterator[list[str]]) -> list[str]:
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                break
        else:
            raise CsvHeaderError("the file is empty")
    except csv.Error as exc:
        raise CsvHeaderError(f"the header is not valid CSV: {exc}") from exc
    cells[0] = cells[0].lstrip("\ufeff")  # Excel's "CSV UTF-8" starts with a BOM the caller may not strip
    columns = [cell.strip().lower() for cell in cells]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    unknown = [name or "(blank)" for name in columns if name not in COLUMNS]
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1 and name in COLUMNS)
    problems = []
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown columns: {', '.join(unknown)}")
    if repeated:
        problems.append(f"repeated columns: {', '.join(repeated)}")
    if problems:
        raise CsvHeaderError("; ".join(problems), missing=missing, unknown=unknown)
    return columns


class _Group:
    """The rows of one order read so far: the only state kept from one row to the next."""

    __slots__ = ("draft", "error", "external_id", "items", "row")

    def __init__(self, external_id: str, row: int) -> None:
        self.external_id = external_id
        self.row = row
        self.draft: OrderDraft | None = None
        self.items: list[Item] = []
        self.error: RowError | None = None

    def add(self, row: int, cells: list[str], columns: list[str]) -> None:
        if self.error is not None:
            return  # the order is rejected already; one error per order is enough
        try:
            if len(cells) != len(columns):
                raise _CellError(None, f"expected {len(columns)} cells, found {len(cells)}")
            values = {name: cell.strip() for name, cell in zip(columns, cells, strict=True)}
            if self.draft is None:
                self.draft = _validate(OrderDraft, _order_fields(values))
                self.items.extend(self.draft.items)
            elif len(self.items) >= _MAX_ITEMS:
                raise _CellError(None, f"an order holds at most {_MAX_ITEMS} items")
            else:
                self.items.append(_validate(Item, _item_fields(values)))
        except _CellError as exc:
            self.error = RowError(row, exc.column, exc.message)
            self.items.clear()

    def result(self) -> ParsedOrder | RowError:
        if self.error is not None:
            return self.error
        assert self.draft is not None  # every group gets a first row, which sets a draft or an error
        if len(self.items) == 1:
            return ParsedOrder(self.row, self.draft)
        # Every item was validated on its own row and the count is capped, so nothing is left to check.
        return ParsedOrder(self.row, self.draft.model_copy(update={"items": self.items}))


def _order_fields(values: Mapping[str, str]) -> dict[str, Any]:
    return {
        "external_id": _required(values, "external_id"),
        "merchant_id": values.get("merchant_id") or None,
        "pickup": _stop(values, "pickup"),
        "dropoff": _stop(values, "dropoff"),
        "customer": {
            "name": _required(values, "customer_name"),
            "phone": values.get("customer_phone") or None,
            "email": values.get("customer_email") or None,
        },
        "items": [_item_fields(values)],
        # Spreadsheets hand-typed as "eur" mean EUR.
        "currency": _required(values, "currency").upper(),
        "tip": _minor_units(values, "tip", default=0),
        "delivery_fee": _minor_units(values, "delivery_fee", default=0),
        "notes": values.get("notes") or None,
        "payment": {
            key: values[f"payment_{key}"].lower()
            for key in ("method", "status")
            if values.get(f"payment_{key}")
        },
    }


def _stop(values: Mapping[str, str], prefix: str) -> dict[str, Any]:
    return {
        "name": _required(values, f"{prefix}_name"),
        "address": _required(values, f"{prefix}_address"),
        "phone": values.get(f"{prefix}_phone") or None,
        "location": _location(values, prefix),
        "window": _window(values, prefix),
    }


def _location(values: Mapping[str, str], prefix: str) -> dict[str, float] | None:
    if not values.get(f"{prefix}_lat") and not values.get(f"{prefix}_lon"):
        return None
    return {"lat": _number(values, f"{prefix}_lat"), "lon": _number(values, f"{prefix}_lon")}


def _item_fields(values: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": _required(values, "item_name"),
        "sku": values.get("item_sku") or None,
        "quantity": _integer(_required(values, "quantity"), "quantity", "expected a whole number"),
        "unit_price": _minor_units(values, "unit_price"),
    }


def _required(values: Mapping[str, str], column: str) -> str:
    text = values.get(column, "")
    if not text:
        raise _CellError(column, "a value is required")
    return text


def _number(values: Mapping[str, str], column: str) -> float:
    text = _required(values, column)
    if not _DECIMAL.fullmatch(text):
        raise _CellError(column, f"expected a decimal number such as 52.5163, got {_shown(text)}")
    return float(text)


def _integer(text: str, column: str, expected: str) -> int:
    if _INTEGER.fullmatch(text):
        try:
            return int(text)
        except ValueError:
            pass  # longer than int() will parse from text; far beyond any bound, so the message below fits
    raise _CellError(column, f"{expected}, got {_shown(text)}")


def _minor_units(values: Mapping[str, str], column: str, default: int | None = None) -> int:
    text = values.get(column, "")
    if not text and default is not None:
        return default
    return _integer(
        _required(values, column), column, "expected a whole amount in minor units (e.g. 1250 for 12.50)"
    )


def _window(values: Mapping[str, str], prefix: str) -> dict[str, datetime] | None:
    start_column, end_column = f"{prefix}_window_start", f"{prefix}_window_end"
    start, end = values.get(start_column, ""), values.get(end_column, "")
    if not start and not end:
        return None
    if not start or not end:
        missing, given = (end_column, start_column) if start else (start_column, end_column)
        raise _CellError(missing, f"a value is required when {given} is set")
    starts_at, ends_at = _timestamp(start, start_column), _timestamp(end, end_column)
    # TimeWindow compares the two, and ordering a naive time against an aware one raises TypeError.
    if (starts_at.tzinfo is None) != (ends_at.tzinfo is None):
        raise _CellError(end_column, f"give {start_column} and {end_column} both a UTC offset, or neither")
    return {"start": starts_at, "end": ends_at}


def _timestamp(text: str, column: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise _CellError(
            column, f"expected an ISO 8601 date-time such as 2025-05-01T12:00:00+02:00, got {_shown(text)}"
        ) from None


def _validate(model: type[_M], data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        message = error["msg"].removeprefix("Value error, ")
        raise _CellError(_column_for(error["loc"]), message) from None


def _column_for(loc: tuple[int | str, ...]) -> str | None:
    """Name the CSV column behind a pydantic error location, e.g. dropoff.location.lat -> dropoff_lat."""
    names = [part for part in loc if isinstance(part, str) and part != "location"]
    if names[:1] == ["items"]:
        names = names[1:]  # an order is validated on its first row, where it holds that row's item only
    if len(names) == 1 and names[0] in _ITEM_COLUMNS:
        return _ITEM_COLUMNS[names[0]]
    column = "_".join(names)
    if column.endswith("_window"):
        column += "_end"  # TimeWindow's own check is that the end comes after the start
    return column if column in COLUMNS else None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else f"{text[:40]}...")
