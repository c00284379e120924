"""CSV import: stream the file, store valid orders in batches, report the rest. Memory stays bounded."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from typing import BinaryIO

from pydantic import BaseModel

from doorstep.kernel.bus import MessageBus
from doorstep.kernel.errors import InvalidInput
from doorstep.orders.csv_orders import CsvHeaderError, ParsedOrder, RowError, parse_orders
from doorstep.orders.domain.commands import ImportOrderBatch
from doorstep.orders.handlers import BatchOutcome

BATCH_SIZE = 500
MAX_REPORTED_ERRORS = 1000


class RowProblem(BaseModel):
    row: int
    field: str | None
    message: str


class ImportReport(BaseModel):
    created: int = 0
    duplicates: int = 0
    errors: list[RowProblem] = []
    errors_total: int = 0


async def import_csv(
    file: BinaryIO,
    *,
    bus: MessageBus,
    tenant_id: str,
    actor: str,
    on_batch: Callable[[ImportReport], None] = lambda _report: None,
) -> ImportReport:
    """Import a UTF-8 CSV of orders; the batches before a failure stay stored."""
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    parsed = parse_orders(text)
    report = ImportReport()
    while True:
        try:
            batch, errors, finished = await asyncio.to_thread(_next_batch, parsed)
        except CsvHeaderError as error:
            raise InvalidInput(str(error), field="file", location="body") from None
        except UnicodeDecodeError as error:
            raise InvalidInput(
                f"the file is not UTF-8 text (byte {error.start} of a chunk)", field="file", location="body"
            ) from None
        for row_error in errors:
            report.errors_total += 1
            if len(report.errors) < MAX_REPORTED_ERRORS:
                report.errors.append(
                    RowProblem(row=row_error.row, field=row_error.field, message=row_error.message)
                )
        if batch:
            outcome: BatchOutcome = await bus.handle(
                ImportOrderBatch(tenant_id=tenant_id, actor=actor, drafts=[parsed.draft for parsed in batch])
            )
            report.created += outcome.created
            report.duplicates += outcome.duplicates
        on_batch(report)
        if finished:
            text.detach()
            return report


def _next_batch(parsed: Iterator[ParsedOrder | RowError]) -> tuple[list[ParsedOrder], list[RowError], bool]:
    batch: list[ParsedOrder] = []
    errors: list[RowError] = []
    for result in parsed:
        if isinstance(result, RowError):
            errors.append(result)
        else:
            batch.append(result)
        if len(batch) >= BATCH_SIZE:
            return batch, errors, False
    return batch, errors, True
