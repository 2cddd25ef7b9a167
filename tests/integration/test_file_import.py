"""`netral import` of CSV and XLSX exports: summary, rejects file, re-import sends nothing new."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from schemas.kafka import KafkaConnection
from tests.fixtures.kafka_tools import consume_until
from tests.helpers import netral
from tests.unit.test_connectors_native import BAWASLU

pytestmark = pytest.mark.integration
COLUMNS = [k for k in BAWASLU if k not in ("terlapor", "bukti")] + \
    [f"terlapor.{k}" for k in BAWASLU["terlapor"]] + ["bukti"]


def _row(sid: str, **changes: Any) -> dict[str, Any]:
    flat = {k: v for k, v in BAWASLU.items() if k not in ("terlapor", "bukti")}
    flat |= {f"terlapor.{k}": v for k, v in BAWASLU["terlapor"].items()}
    flat["bukti"] = "https://sigap.example/e/1.png"
    return {**flat, "id_laporan": sid, **changes}


def test_csv_import_and_reimport(topics: KafkaConnection, tmp_path: Path, unique: str) -> None:
    rows = [_row(f"csv-{unique}-{i}") for i in range(5)]
    rows.insert(2, _row(f"csv-{unique}-badregion", kode_wilayah="99.99"))
    rows.append(_row(f"csv-{unique}-badtime", dicatat_pada="2024-11-05 09:12"))
    path = tmp_path / "laporan.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    env = {"NETRAL_HOME": str(tmp_path / "home"), "NETRAL_KAFKA_BOOTSTRAP": topics.bootstrap}
    first = netral("import", "--agency", "bawaslu", str(path), env=env, check=True).stdout
    assert "7 rows, 5 accepted, 2 rejected, 0 duplicates" in first
    assert "5 sent to netral.raw.bawaslu" in first
    with (tmp_path / "laporan.csv.rejects.csv").open(encoding="utf-8") as fh:
        rejected = list(csv.DictReader(fh))
    assert [r["row"] for r in rejected] == ["4", "8"]  # spreadsheet rows, header is row 1
    assert "kode_wilayah" in rejected[0]["reason"]
    assert "no UTC offset" in rejected[1]["reason"]
    keys = {f"csv-{unique}-{i}".encode() for i in range(5)}
    asyncio.run(consume_until(topics, ["netral.raw.bawaslu"],
                              lambda rs: keys <= {r.key for r in rs}))
    again = netral("import", "--agency", "bawaslu", str(path), env=env, check=True).stdout
    assert "0 accepted, 2 rejected, 5 duplicates" in again
    assert "0 sent" in again


def test_xlsx_import(topics: KafkaConnection, tmp_path: Path, unique: str) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(COLUMNS)
    for i in range(3):
        sheet.append([_row(f"xlsx-{unique}-{i}")[c] for c in COLUMNS])
    path = tmp_path / "temuan.xlsx"
    book.save(path)
    env = {"NETRAL_HOME": str(tmp_path / "home"), "NETRAL_KAFKA_BOOTSTRAP": topics.bootstrap}
    out = netral("import", "--agency", "bawaslu", str(path), env=env, check=True).stdout
    assert "3 rows, 3 accepted, 0 rejected" in out


def test_unsupported_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "laporan.json"
    path.write_text("[]")
    proc = netral("import", "--agency", "bawaslu", str(path),
                  env={"NETRAL_HOME": str(tmp_path), "NETRAL_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert proc.returncode == 2
    assert "only .csv and .xlsx" in proc.stderr and "Traceback" not in proc.stderr
