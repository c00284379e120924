"""The orders CSV parser: headers, row groups, cell conversion, error rows and streaming."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone

import pytest

from doorstep.contracts.orders import (
    Customer,
    GeoPoint,
    Item,
    OrderDraft,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Stop,
    TimeWindow,
)
from doorstep.orders.csv_orders import CsvHeaderError, ParsedOrder, RowError, parse_orders

REQUIRED = [
    "external_id",
    "pickup_name",
    "pickup_address",
    "pickup_lat",
    "pickup_lon",
    "dropoff_name",
    "dropoff_address",
    "dropoff_lat",
    "dropoff_lon",
    "customer_name",
    "item_name",
    "quantity",
    "unit_price",
    "currency",
]

BASE = {
    "external_id": "A-1",
    "pickup_name": "Bakery Mitte",
    "pickup_address": "Torstr. 1, Berlin",
    "pickup_lat": "52.5290",
    "pickup_lon": "13.4010",
    "dropoff_name": "Ada",
    "dropoff_address": "Invalidenstr. 5, Berlin",
    "dropoff_lat": "52.5310",
    "dropoff_lon": "13.3840",
    "customer_name": "Ada Lovelace",
    "item_name": "Rye bread",
    "quantity": "2",
    "unit_price": "450",
    "currency": "EUR",
}

PICKUP = Stop(name="Bakery Mitte", address="Torstr. 1, Berlin", location=GeoPoint(lat=52.529, lon=13.401))
DROPOFF = Stop(name="Ada", address="Invalidenstr. 5, Berlin", location=GeoPoint(lat=52.531, lon=13.384))
RYE = Item(name="Rye bread", quantity=2, unit_price=450)


def csv_text(header: list[str], *rows: Mapping[str, str]) -> str:
    """Write rows (missing cells empty) under `header` the way a spreadsheet export would."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return out.getvalue()


def parse(text: str) -> list[ParsedOrder | RowError]:
    return list(parse_orders(io.StringIO(text, newline="")))


def minimal_draft(**changes: object) -> OrderDraft:
    fields: dict[str, object] = {
        "external_id": "A-1",
        "pickup": PICKUP,
        "dropoff": DROPOFF,
        "customer": Customer(name="Ada Lovelace"),
        "items": [RYE],
        "currency": "EUR",
    }
    return OrderDraft(**(fields | changes))


def test_a_single_row_with_every_column_is_one_exact_draft() -> None:
    # Given a row that fills every column the importer knows
    row = BASE | {
        "merchant_id": "m-7",
        "pickup_phone": "+49 30 111",
        "dropoff_phone": "+49 30 222",
        "customer_phone": "+49 170 333",
        "customer_email": "ada@example.org",
        "item_sku": "RYE-500",
        "tip": "150",
        "delivery_fee": "399",
        "notes": "Leave at the door",
        "payment_method": "Card",
        "payment_status": "PAID",
        "pickup_window_start": "2025-05-01T10:00:00+02:00",
        "pickup_window_end": "2025-05-01T10:30:00+02:00",
        "dropoff_window_start": "2025-05-01T11:00:00Z",
        "dropoff_window_end": "2025-05-01T12:00:00Z",
    }

    # When it is parsed
    result = parse(csv_text(list(row), row))

    # Then it is one order starting on row 1, with every cell in its place
    cest = timezone(timedelta(hours=2))
    assert result == [
        ParsedOrder(
            row=1,
            draft=OrderDraft(
                external_id="A-1",
                merchant_id="m-7",
                pickup=PICKUP.model_copy(
                    update={
                        "phone": "+49 30 111",
                        "window": TimeWindow(
                            start=datetime(2025, 5, 1, 10, 0, tzinfo=cest),
                            end=datetime(2025, 5, 1, 10, 30, tzinfo=cest),
                        ),
                    }
                ),
                dropoff=DROPOFF.model_copy(
                    update={
                        "phone": "+49 30 222",
                        "window": TimeWindow(
                            start=datetime(2025, 5, 1, 11, 0, tzinfo=UTC),
                            end=datetime(2025, 5, 1, 12, 0, tzinfo=UTC),
                        ),
                    }
                ),
                customer=Customer(name="Ada Lovelace", phone="+49 170 333", email="ada@example.org"),
                items=[Item(name="Rye bread", sku="RYE-500", quantity=2, unit_price=450)],
                currency="EUR",
                tip=150,
                delivery_fee=399,
                notes="Leave at the door",
                payment=Payment(method=PaymentMethod.CARD, status=PaymentStatus.PAID),
            ),
        )
    ]


def test_consecutive_rows_with_one_external_id_are_one_order_with_an_item_each() -> None:
    # Given three rows of order A-1, whose later rows disagree on order fields, then order B-2
    text = csv_text(
        [*REQUIRED, "item_sku"],
        BASE,
        BASE | {"item_name": "Butter", "item_sku": "BUT", "quantity": "1", "unit_price": "299"},
        BASE | {"item_name": "Jam", "quantity": "3", "unit_price": "0", "customer_name": "Someone else"},
        BASE | {"external_id": "B-2"},
    )

    # When it is parsed
    result = parse(text)

    # Then A-1 holds three items and the first row's order fields; B-2 starts on row 4
    assert result == [
        ParsedOrder(
            row=1,
            draft=minimal_draft(
                items=[
                    RYE,
                    Item(name="Butter", sku="BUT", quantity=1, unit_price=299),
                    Item(name="Jam", quantity=3, unit_price=0),
                ]
            ),
        ),
        ParsedOrder(row=4, draft=minimal_draft(external_id="B-2")),
    ]


def test_optional_columns_may_be_left_out_or_left_empty() -> None:
    # Given one file with only the required columns and one with every optional column present but empty
    bare = csv_text(REQUIRED, BASE)
    empty = csv_text([*REQUIRED, "tip", "payment_method", "customer_email", "pickup_window_start"], BASE)

    # When both are parsed
    results = (parse(bare), parse(empty))

    # Then both give the defaults
    expected = [ParsedOrder(row=1, draft=minimal_draft())]
    assert results == (expected, expected)
    assert expected[0].draft.tip == 0
    assert expected[0].draft.payment == Payment()


def test_columns_match_in_any_order_case_and_surrounding_whitespace() -> None:
    # Given a header in reverse order, mixed case and padded
    header = [f"  {name.upper() if i % 2 else name.title()} " for i, name in enumerate(reversed(REQUIRED))]
    text = csv_text(
        header, {padded: BASE[name] for padded, name in zip(header, reversed(REQUIRED), strict=True)}
    )

    # When it is parsed
    result = parse(text)

    # Then the cells land in the right fields
    assert result == [ParsedOrder(row=1, draft=minimal_draft())]


def test_a_utf8_bom_before_the_first_column_is_ignored() -> None:
    # Given an Excel "CSV UTF-8" export decoded as plain UTF-8, so the BOM is still there
    raw = ("\ufeff" + csv_text(REQUIRED, BASE)).encode()

    # When it is parsed through a text wrapper, as the upload endpoint does
    result = list(parse_orders(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="")))

    # Then external_id is recognised
    assert result == [ParsedOrder(row=1, draft=minimal_draft())]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("95", "Input should be less than or equal to 90"),
        ("north", "expected a decimal number such as 52.5163, got 'north'"),
        ("nan", "expected a decimal number such as 52.5163, got 'nan'"),
        ("", "a value is required"),
    ],
)
def test_a_bad_latitude_rejects_the_order_naming_its_column(cell: str, message: str) -> None:
    # Given order A-1 with a bad dropoff latitude on row 1, then a good order B-2
    text = csv_text(REQUIRED, BASE | {"dropoff_lat": cell}, BASE | {"external_id": "B-2"})

    # When it is parsed
    result = parse(text)

    # Then A-1 is one error on row 1 in dropoff_lat, and B-2 still comes through
    assert result == [
        RowError(row=1, field="dropoff_lat", message=message),
        ParsedOrder(row=2, draft=minimal_draft(external_id="B-2")),
    ]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("two", "expected a whole number, got 'two'"),
        ("2.5", "expected a whole number, got '2.5'"),
        ("0", "Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_quantity_on_a_later_row_rejects_the_whole_group_at_that_row(cell: str, message: str) -> None:
    # Given order A-1 on rows 1-3 whose second row has a bad quantity, then order B-2
    text = csv_text(
        REQUIRED,
        BASE,
        BASE | {"quantity": cell},
        BASE | {"quantity": "-1"},
        BASE | {"external_id": "B-2"},
    )

    # When it is parsed
    result = parse(text)

    # Then A-1 is only the error for row 2 (row 3's is not reported), and B-2 follows
    assert result == [
        RowError(row=2, field="quantity", message=message),
        ParsedOrder(row=4, draft=minimal_draft(external_id="B-2")),
    ]


@pytest.mark.parametrize(
    ("column", "cell"), [("unit_price", "12.50"), ("tip", "1,50"), ("delivery_fee", "€3")]
)
def test_money_must_be_whole_minor_units(column: str, cell: str) -> None:
    # Given an amount written in major units or with a symbol
    text = csv_text([*REQUIRED, "tip", "delivery_fee"], BASE | {column: cell})

    # When it is parsed
    result = parse(text)

    # Then the message says minor units are expected
    assert result == [
        RowError(
            row=1,
            field=column,
            message=f"expected a whole amount in minor units (e.g. 1250 for 12.50), got {cell!r}",
        )
    ]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"customer_email": "ada at example"}, "customer_email", "not an email address"),
        ({"external_id": ""}, "external_id", "a value is required"),
        ({"currency": "EURO"}, "currency", "String should match pattern '^[A-Z]{3}$'"),
        ({"pickup_phone": "1"}, "pickup_phone", "String should have at least 3 characters"),
        (
            {"payment_method": "barter"},
            "payment_method",
            "Input should be 'card', 'cash', 'wallet', 'online', 'invoice' or 'other'",
        ),
        (
            {"pickup_window_start": "2025-05-01T12:00:00Z", "pickup_window_end": "2025-05-01T11:00:00Z"},
            "pickup_window_end",
            "window end must be after its start",
        ),
        (
            {"dropoff_window_start": "2025-05-01T12:00:00Z"},
            "dropoff_window_end",
            "a value is required when dropoff_window_start is set",
        ),
        (
            {"dropoff_window_start": "tomorrow", "dropoff_window_end": "2025-05-01T12:00:00Z"},
            "dropoff_window_start",
            "expected an ISO 8601 date-time such as 2025-05-01T12:00:00+02:00, got 'tomorrow'",
        ),
        (
            {"dropoff_window_start": "2025-05-01T11:00:00", "dropoff_window_end": "2025-05-01T12:00:00Z"},
            "dropoff_window_end",
            "give dropoff_window_start and dropoff_window_end both a UTC offset, or neither",
        ),
    ],
)
def test_order_field_errors_name_their_csv_column(changes: dict[str, str], field: str, message: str) -> None:
    # Given a row with one bad order-level cell
    header = [
        *REQUIRED,
        "customer_email",
        "pickup_phone",
        "payment_method",
        *(f"{stop}_window_{end}" for stop in ("pickup", "dropoff") for end in ("start", "end")),
    ]
    text = csv_text(header, BASE | changes)

    # When it is parsed
    result = parse(text)

    # Then the error names the CSV column, not the draft's path
    assert result == [RowError(row=1, field=field, message=message)]


def test_lowercase_currency_and_payment_values_are_normalised() -> None:
    # Given hand-typed lower/upper case values
    text = csv_text([*REQUIRED, "payment_status"], BASE | {"currency": "eur", "payment_status": "Authorized"})

    # When it is parsed
    result = parse(text)

    # Then they match the contract's spelling
    assert result == [
        ParsedOrder(row=1, draft=minimal_draft(payment=Payment(status=PaymentStatus.AUTHORIZED)))
    ]


def test_an_unknown_column_is_a_header_error_raised_before_any_row() -> None:
    # Given a header with two columns the importer does not know
    rows = parse_orders(io.StringIO(csv_text([*REQUIRED, "Gift_Wrap", "colour"], BASE)))

    # When the first result is asked for
    with pytest.raises(CsvHeaderError) as caught:
        next(rows)

    # Then the error names them
    assert str(caught.value) == "unknown columns: gift_wrap, colour"
    assert caught.value.unknown == ("gift_wrap", "colour")
    assert caught.value.missing == ()


def test_missing_required_columns_are_a_header_error_naming_them() -> None:
    # Given a header without the pickup's name and address, plus an unknown column
    header = [name for name in REQUIRED if name not in ("pickup_name", "pickup_address")] + ["extra"]

    # When it is parsed
    with pytest.raises(CsvHeaderError) as caught:
        parse(csv_text(header, BASE))

    # Then both problems are named
    assert (
        str(caught.value) == "missing required columns: pickup_name, pickup_address; unknown columns: extra"
    )
    assert caught.value.missing == ("pickup_name", "pickup_address")


def test_coordinates_left_out_or_blank_leave_the_stop_to_the_geocoder() -> None:
    # Given one order without coordinate columns and one whose dropoff coordinate cells are blank
    header = [name for name in REQUIRED if not name.endswith(("_lat", "_lon"))]
    without_columns = parse(csv_text(header, BASE))
    blank_cells = parse(
        csv_text(REQUIRED, BASE | {"external_id": "B-2", "dropoff_lat": "", "dropoff_lon": ""})
    )

    # Then both are orders, their stops without coordinates without a location
    [first], [second] = without_columns, blank_cells
    assert isinstance(first, ParsedOrder)
    assert isinstance(second, ParsedOrder)
    assert (first.draft.pickup, first.draft.dropoff) == (
        PICKUP.model_copy(update={"location": None}),
        DROPOFF.model_copy(update={"location": None}),
    )
    assert (second.draft.pickup, second.draft.dropoff) == (
        PICKUP,
        DROPOFF.model_copy(update={"location": None}),
    )


def test_one_coordinate_without_the_other_is_refused_naming_the_blank_one() -> None:
    # Given an order whose pickup longitude is blank while its latitude is set
    results = parse(csv_text(REQUIRED, BASE | {"pickup_lon": ""}))

    # Then the order is one error naming pickup_lon
    assert results == [RowError(row=1, field="pickup_lon", message="a value is required")]


@pytest.mark.parametrize("text", ["", "\n\n", " , \n"])
def test_an_empty_file_is_a_header_error(text: str) -> None:
    # Given a file with nothing but blank lines
    # When it is parsed
    with pytest.raises(CsvHeaderError) as caught:
        parse(text)

    # Then it says so
    assert str(caught.value) == "the file is empty"


def test_a_repeated_column_is_a_header_error() -> None:
    # Given a header naming quantity twice
    # When it is parsed
    with pytest.raises(CsvHeaderError) as caught:
        parse(csv_text([*REQUIRED, "Quantity"], BASE))

    # Then it says which
    assert str(caught.value) == "repeated columns: quantity"


def test_a_header_only_file_has_no_orders() -> None:
    # Given only a header
    # When it is parsed
    result = parse(csv_text(REQUIRED))

    # Then nothing comes out
    assert result == []


def test_blank_lines_are_skipped_but_still_counted() -> None:
    # Given blank lines inside order A-1's group, between orders and at the end
    lines = csv_text(REQUIRED, BASE, BASE, BASE | {"external_id": "B-2"}).splitlines(keepends=True)
    blank_cells = "," * (len(REQUIRED) - 1) + "\n"
    text = "".join([lines[0], lines[1], "\n", lines[2], blank_cells, "\n", lines[3], "\n", "\n"])

    # When it is parsed
    result = parse(text)

    # Then A-1 keeps both items, and B-2's row number counts the blank lines as a spreadsheet would
    assert result == [
        ParsedOrder(row=1, draft=minimal_draft(items=[RYE, RYE])),
        ParsedOrder(row=6, draft=minimal_draft(external_id="B-2")),
    ]


def test_quoted_cells_keep_commas_newlines_and_unicode() -> None:
    # Given quoted cells with commas, a line break and non-ASCII text, then another order
    text = csv_text(
        [*REQUIRED, "notes"],
        BASE
        | {
            "pickup_name": "Café Zürich, Mitte",
            "item_name": "Brötchen „Kaiser“ 🥐",
            "notes": "Ring twice,\nthen wait",
        },
        BASE | {"external_id": "B-2"},
    )

    # When it is parsed
    result = parse(text)

    # Then the cells are intact, and the multi-line cell is still one row
    assert result == [
        ParsedOrder(
            row=1,
            draft=minimal_draft(
                pickup=PICKUP.model_copy(update={"name": "Café Zürich, Mitte"}),
                items=[RYE.model_copy(update={"name": "Brötchen „Kaiser“ 🥐"})],
                notes="Ring twice,\nthen wait",
            ),
        ),
        ParsedOrder(row=2, draft=minimal_draft(external_id="B-2")),
    ]


def test_a_row_with_the_wrong_cell_count_rejects_its_order() -> None:
    # Given order A-1 whose second row has an unquoted comma, a short row without an id, then B-2
    lines = csv_text(REQUIRED, BASE, BASE | {"item_name": "Bread, rye"}, BASE | {"external_id": "B-2"})
    lines = lines.replace('"Bread, rye"', "Bread, rye")
    head, a1, a2, b2 = lines.splitlines(keepends=True)
    text = head + a1 + a2 + ",short\n" + b2

    # When it is parsed
    result = parse(text)

    # Then A-1 is one error on its bad row, the short row is its own error, and B-2 is fine
    assert result == [
        RowError(row=2, field=None, message="expected 14 cells, found 15"),
        RowError(row=3, field=None, message="expected 14 cells, found 2"),
        ParsedOrder(row=4, draft=minimal_draft(external_id="B-2")),
    ]


def test_an_oversized_cell_is_reported_and_reading_goes_on() -> None:
    # Given a row whose notes exceed the csv module's field limit, between two orders
    text = csv_text(
        [*REQUIRED, "notes"],
        BASE,
        BASE | {"external_id": "B-2", "notes": "x" * 200_000},
        BASE | {"external_id": "C-3"},
    )

    # When it is parsed
    result = parse(text)

    # Then that row alone is an error
    assert result == [
        ParsedOrder(row=1, draft=minimal_draft()),
        RowError(
            row=2, field=None, message="the row is not valid CSV: field larger than field limit (131072)"
        ),
        ParsedOrder(row=3, draft=minimal_draft(external_id="C-3")),
    ]


def test_an_order_holds_at_most_500_items() -> None:
    # Given 501 rows of one order
    text = csv_text(REQUIRED, *([BASE] * 501))

    # When it is parsed
    result = parse(text)

    # Then the 501st row is blamed
    assert result == [RowError(row=501, field=None, message="an order holds at most 500 items")]


def test_an_external_id_seen_again_later_is_another_order() -> None:
    # Given A-1, B-2, then A-1 again
    text = csv_text(REQUIRED, BASE, BASE | {"external_id": "B-2"}, BASE)

    # When it is parsed
    result = parse(text)

    # Then the parser yields both A-1s; telling duplicates apart is the importer's job
    assert result == [
        ParsedOrder(row=1, draft=minimal_draft()),
        ParsedOrder(row=2, draft=minimal_draft(external_id="B-2")),
        ParsedOrder(row=3, draft=minimal_draft()),
    ]


class CountingLines:
    """A generator of lines that records how many have been read."""

    def __init__(self, orders: int, items_per_order: int) -> None:
        self.read = 0
        self.orders = orders
        self.items_per_order = items_per_order

    def __iter__(self) -> Iterator[str]:
        header, template = csv_text(REQUIRED, BASE | {"external_id": "{}"}).splitlines()
        yield self._line(header)
        for order in range(self.orders):
            for _ in range(self.items_per_order):
                yield self._line(template.format(f"O-{order}"))

    def _line(self, text: str) -> str:
        self.read += 1
        return text + "\n"


@pytest.mark.parametrize(("orders", "items_per_order"), [(100_000, 1), (50_000, 2)])
def test_a_100000_row_file_streams_through(orders: int, items_per_order: int) -> None:
    # Given 100,000 data rows produced lazily
    lines = CountingLines(orders, items_per_order)

    # When the first order comes out
    results = parse_orders(lines)
    first = next(results)

    # Then only the header and the rows up to the next group have been read
    assert isinstance(first, ParsedOrder)
    assert len(first.draft.items) == items_per_order
    assert lines.read == 2 + items_per_order

    # And when the rest are consumed, every order comes out valid and the input was read exactly once
    rest = sum(
        1
        for result in results
        if isinstance(result, ParsedOrder) and len(result.draft.items) == items_per_order
    )
    assert rest + 1 == orders
    assert lines.read == 1 + orders * items_per_order
