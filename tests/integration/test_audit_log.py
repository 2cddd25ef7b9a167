"""The personal-data access log: every API read of a person or a case is one row (who, role,
what, when, from where), readable by the national Satgas only, and the rows cannot be changed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from tests.fixtures.monitor_data import NIP_A1
from tests.fixtures.monitor_server import MonitorServer, get

pytestmark = pytest.mark.integration


def test_each_read_of_personal_data_is_logged(seeded_monitor: MonitorServer) -> None:
    assert get(seeded_monitor, "/v1/cases/A1", "province32").status_code == 200
    assert get(seeded_monitor, f"/v1/asn/{NIP_A1}", "province32").status_code == 200
    assert get(seeded_monitor, "/v1/cases", "agency", state="RECOMMENDED").status_code == 200
    # refused: no data read; aggregates: nothing personal
    assert get(seeded_monitor, "/v1/cases/B1", "province32").status_code == 403
    assert get(seeded_monitor, "/v1/stats", "public").status_code == 200
    log = get(seeded_monitor, "/v1/audit", "national", limit="50").json()["items"]
    seen = [(a["role"], a["action"], a["subject_kind"], a["subject_id"]) for a in log]
    assert ("province", "read_case", "case", "A1") in seen
    assert ("province", "read_person", "person", NIP_A1) in seen
    assert ("agency", "list_cases", "cases", None) in seen
    assert not any(s[3] == "B1" for s in seen)
    assert all(a["remote_addr"] == "127.0.0.1" and a["principal"] and a["at"] for a in log)
    listed = next(a for a in log if a["action"] == "list_cases" and a["role"] == "agency")
    assert listed["detail"] == "state=RECOMMENDED"
    one = get(seeded_monitor, "/v1/audit", "national", subject_id="A1").json()["items"]
    assert one and all(a["subject_id"] == "A1" for a in one)


@pytest.mark.parametrize("role", ["province32", "agency", "public"])
def test_only_the_national_satgas_reads_the_log(seeded_monitor: MonitorServer, role: str) -> None:
    resp = get(seeded_monitor, "/v1/audit", role)
    assert resp.status_code == 403 and resp.json()["detail"]


def test_the_log_is_append_only(seeded_monitor: MonitorServer) -> None:
    get(seeded_monitor, "/v1/cases/A1", "national")
    with pytest.raises(DatabaseError), seeded_monitor.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET principal = 'someone-else'"))
    with pytest.raises(DatabaseError), seeded_monitor.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log"))
