"""Spreadsheet import for agencies that export CSV or XLSX: rows -> validated raw records -> the
agency's outbox, so delivery goes through the same relay (acks=all, marked after ack).

A ledger of (source id, content hash) makes re-importing a file send nothing new; a changed row
with the same id (e.g. a review outcome added later) is sent again as an update.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Engine, MetaData, PrimaryKeyConstraint, String, Table, select

from schemas.codec import AvroCodec
from schemas.errors import ConfigError, InvalidMessage
from schemas.topics import Agency

from .agencies import PARSERS
from .outbox import enqueue

ledger_meta = MetaData()
ledger = Table(
    "netral_import_ledger",
    ledger_meta,
    Column("agency", String(20), nullable=False),
    Column("source_id", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    PrimaryKeyConstraint("agency", "source_id", "sha256"),
)


@dataclass
class ImportReport:
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str | None, str]] = field(default_factory=list)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(spreadsheet row number, row) for a CSV or XLSX file; row 1 is the header."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                yield i, {k.strip(): (v.strip() if isinstance(v, str) else v)
                          for k, v in row.items() if k}
    elif suffix == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        rows = book.active.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        for i, values in enumerate(rows, start=2):
            if all(v is None for v in values):
                continue
            yield i, {h: _cell(v) for h, v in zip(header, values, strict=False) if h}
        book.close()
    else:
        raise ConfigError(f"{path.name}: only .csv and .xlsx files can be imported")


def _cell(value: Any) -> Any:
    """Spreadsheet cells as the native export would write them."""
    if isinstance(value, datetime) and value.time() == time(0) and value.tzinfo is None:
        return value.date().isoformat()
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def import_file(path: Path, agency: Agency, engine: Engine, codec: AvroCodec,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    """Validate every row and queue the new ones in the agency's outbox (one transaction)."""
    ledger_meta.create_all(engine)
    parse = PARSERS[agency]
    report = ImportReport()
    with engine.begin() as conn:
        for number, row in read_rows(path):
            report.rows += 1
            if progress:
                progress(1)
            try:
                record = parse(row)
            except InvalidMessage as err:
                report.rejected.append((number, _row_id(row), str(err)))
                continue
            digest = hashlib.sha256(codec.encode_record(record)).hexdigest()
            seen = conn.execute(select(ledger.c.sha256).where(
                ledger.c.agency == agency.value, ledger.c.source_id == record.source_id,
                ledger.c.sha256 == digest)).first()
            if seen:
                report.duplicates += 1
            else:
                enqueue(conn, record, codec)
                conn.execute(ledger.insert().values(agency=agency.value,
                                                    source_id=record.source_id, sha256=digest))
                report.accepted += 1
    return report


def _row_id(row: Mapping[str, Any]) -> str | None:
    return next((str(v) for k, v in row.items() if k.startswith("id_") and v), None)


def write_rejects(path: Path, report: ImportReport) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "source_id", "reason"])
        writer.writerows(report.rejected)
