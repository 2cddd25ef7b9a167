"""Case lists as CSV or XLSX (``GET /v1/cases.csv|.xlsx``, ``netral export``).

One row per case with the list's columns (never the evidence or the timeline); the same scope
and filters as ``GET /v1/cases``. XLSX through openpyxl's write-only mode, so a large export
streams rows instead of building the sheet in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum

from openpyxl import Workbook

from sinks.sql.queries import CaseSummary

COLUMNS = list(CaseSummary.model_fields)


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_csv(rows: Iterable[CaseSummary]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        values = row.model_dump()
        writer.writerow([_cell(values[c]) for c in COLUMNS])
    return out.getvalue().encode("utf-8-sig")  # the BOM lets spreadsheet apps read UTF-8


def to_xlsx(rows: Iterable[CaseSummary]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("kasus")
    sheet.append(COLUMNS)
    for row in rows:
        values = row.model_dump()
        sheet.append([_cell(values[c]) for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(fmt: ExportFormat, rows: Iterable[CaseSummary]) -> bytes:
    return to_csv(rows) if fmt is ExportFormat.CSV else to_xlsx(rows)
