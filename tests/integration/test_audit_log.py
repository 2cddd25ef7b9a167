"""The personal-data access log: every API read of a person or a case is one row (who, role,
what, when, from where), readable by the national Satgas only, and the rows cannot be changed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from schemas.kafka import KafkaConnection
from tests.fixtures.monitor_data import NIP_A1
from tests.fixtures.monitor_server import MonitorServer, serve_monitor

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(topics: KafkaConnection, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[MonitorServer]:
    home = tmp_path_factory.mktemp("audit")
    yield from serve_monitor(topics, home, f"sqlite:///{home / 'netral.db'}")


def get(server: MonitorServer, path: str, role: str, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"X-API-Key": server.keys[role]},
                     params=params, timeout=30)


def test_each_read_of_personal_data_is_logged(server: MonitorServer) -> None:
    assert get(server, "/v1/cases/A1", "province32").status_code == 200
    assert get(server, f"/v1/asn/{NIP_A1}", "province32").status_code == 200
    assert get(server, "/v1/cases", "agency", state="RECOMMENDED").status_code == 200
    assert get(server, "/v1/cases/B1", "province32").status_code == 403  # refused: no data read
    assert get(server, "/v1/stats", "public").status_code == 200  # aggregates: not personal
    log = get(server, "/v1/audit", "national", limit="50").json()["items"]
    seen = [(a["role"], a["action"], a["subject_kind"], a["subject_id"]) for a in log]
    assert ("province", "read_case", "case", "A1") in seen
    assert ("province", "read_person", "person", NIP_A1) in seen
    assert ("agency", "list_cases", "cases", None) in seen
    assert not any(s[3] == "B1" for s in seen)
    assert all(a["remote_addr"] == "127.0.0.1" and a["principal"] and a["at"] for a in log)
    listed = next(a for a in log if a["action"] == "list_cases" and a["role"] == "agency")
    assert listed["detail"] == "state=RECOMMENDED"
    one = get(server, "/v1/audit", "national", subject_id="A1").json()["items"]
    assert one and all(a["subject_id"] == "A1" for a in one)


@pytest.mark.parametrize("role", ["province32", "agency", "public"])
def test_only_the_national_satgas_reads_the_log(server: MonitorServer, role: str) -> None:
    resp = get(server, "/v1/audit", role)
    assert resp.status_code == 403 and resp.json()["detail"]


def test_the_log_is_append_only(server: MonitorServer) -> None:
    get(server, "/v1/cases/A1", "national")
    with pytest.raises(DatabaseError), server.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET principal = 'someone-else'"))
    with pytest.raises(DatabaseError), server.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log"))
