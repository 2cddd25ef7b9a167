"""Case-list exports: ``GET /v1/cases.csv|.xlsx`` in the caller's scope, and ``netral export``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from hub.export import COLUMNS
from tests.fixtures.monitor_server import MonitorServer, get
from tests.helpers import netral

pytestmark = pytest.mark.integration


def test_csv_export_holds_the_scoped_filtered_list(seeded_monitor: MonitorServer) -> None:
    resp = get(seeded_monitor, "/v1/cases.csv", "province32")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    listed = get(seeded_monitor, "/v1/cases", "province32", limit="100").json()
    assert {r["case_id"] for r in rows} == {c["case_id"] for c in listed["items"]} \
        == {"A1", "A2", "A3"}
    assert all(r["province_code"] == "32" for r in rows)
    body = get(seeded_monitor, "/v1/cases.csv", "national", province="32").content
    national = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert {r["case_id"] for r in national} == {"A1", "A2", "A3"}


def test_xlsx_export_opens_in_a_spreadsheet(seeded_monitor: MonitorServer) -> None:
    resp = get(seeded_monitor, "/v1/cases.xlsx", "national")
    assert resp.status_code == 200
    sheet = load_workbook(io.BytesIO(resp.content), read_only=True)["kasus"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == COLUMNS
    total = get(seeded_monitor, "/v1/cases", "national", limit="100").json()["total"]
    assert len(rows) - 1 == total


@pytest.mark.parametrize(("path", "role", "params", "status"), [
    ("/v1/cases.csv", "province32", {"province": "31"}, 403),
    ("/v1/cases.xlsx", "public", {}, 403),
    ("/v1/cases.pdf", "national", {}, 422),
])
def test_export_errors_have_a_message(seeded_monitor: MonitorServer, path: str, role: str,
                                      params: dict[str, str], status: int) -> None:
    resp = get(seeded_monitor, path, role, **params)
    assert resp.status_code == status and resp.json()["detail"]


def test_netral_export_writes_the_file(seeded_monitor: MonitorServer, tmp_path: Path) -> None:
    out = tmp_path / "kasus.xlsx"
    done = netral("export", "--out", str(out), "--province", "32",
                  env={"NETRAL_DATABASE_URL": str(seeded_monitor.engine.url)}, check=True)
    assert "3 cases written" in done.stdout
    rows = list(load_workbook(out, read_only=True)["kasus"].iter_rows(values_only=True))
    assert {r[0] for r in rows[1:]} == {"A1", "A2", "A3"}
    bad = netral("export", "--out", str(tmp_path / "kasus.pdf"),
                 env={"NETRAL_DATABASE_URL": str(seeded_monitor.engine.url)})
    assert bad.returncode != 0 and "--format csv|xlsx" in bad.stdout + bad.stderr
