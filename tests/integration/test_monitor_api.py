"""The monitoring API on a real uvicorn server, a seeded SQLite (and PostgreSQL) national record
and the real broker: the role matrix, provincial and public leak checks, filters and paging,
M&E numbers, review commands on netral.commands, /health, /metrics, and schemathesis (no 5xx)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from connectors.ingest import IngestLimits
from connectors.keys import KeyStore
from hub.api.access import MonitorKeyStore, Role, add_monitor_key
from hub.api.app import create_app
from hub.api.deps import Monitor
from hub.broker.local import free_port
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import ReviewDecision
from schemas.topics import COMMANDS
from sinks.sql.engine import create_sql_engine
from tests.fixtures.kafka_tools import consume_until
from tests.fixtures.monitor_data import NIP_A1, NIP_A2
from tests.fixtures.monitor_server import ROLES, MonitorServer, serve_app, serve_monitor
from tests.fixtures.waiting import wait_until
from tests.helpers import REPO, netral

if TYPE_CHECKING:
    from requests.structures import CaseInsensitiveDict
    from schemathesis.core.result import Ok
    from schemathesis.schemas import APIOperation

pytestmark = pytest.mark.integration

MERGE = {"action": "MERGE", "target_case_id": "B3", "reason": "Orang yang sama."}


@pytest.fixture(scope="module")
def server(topics: KafkaConnection, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[MonitorServer]:
    home = tmp_path_factory.mktemp("monitor")
    yield from serve_monitor(topics, home, f"sqlite:///{home / 'netral.db'}")


def call(server: MonitorServer, method: str, path: str, role: str | None,
         body: Any = None, **params: Any) -> httpx.Response:
    headers = {"X-API-Key": server.keys[role]} if role else {}
    return httpx.request(method, f"{server.url}{path}", headers=headers, json=body,
                         params=params, timeout=30)


ENDPOINTS = [
    ("GET", "/v1/cases", None),
    ("GET", "/v1/cases/A1", None),
    ("GET", "/v1/cases/B1", None),
    ("GET", f"/v1/asn/{NIP_A1}", None),
    ("GET", "/v1/stats", None),
    ("GET", "/v1/alerts", None),
    ("GET", "/v1/me", None),
    ("POST", "/v1/review/B2", MERGE),
]
EXPECTED = {  # one status per ENDPOINTS entry
    "national": [200, 200, 200, 200, 200, 200, 200, 202],
    "province32": [200, 200, 403, 200, 200, 200, 200, 403],
    "province31": [200, 403, 200, 404, 200, 200, 200, 202],
    "agency": [200, 200, 403, 200, 200, 200, 200, 403],
    "public": [403, 403, 403, 403, 200, 403, 403, 403],
    None: [401] * 8,
}


@pytest.mark.parametrize("role", [*ROLES, None])
def test_role_matrix(server: MonitorServer, role: str | None) -> None:
    got = []
    for method, path, body in ENDPOINTS:
        resp = call(server, method, path, role, body)
        got.append(resp.status_code)
        if resp.status_code >= 400:
            assert resp.json()["detail"], f"{method} {path}: a 4xx without a message"
    assert got == EXPECTED[role]


def test_an_ingest_key_is_not_a_monitoring_key(server: MonitorServer) -> None:
    resp = call(server, "GET", "/v1/stats", "ingest")
    assert resp.status_code == 401
    assert resp.json()["detail"] == "unknown API key"


def test_provincial_key_sees_only_its_province(server: MonitorServer) -> None:
    cases = call(server, "GET", "/v1/cases", "province32", limit=100).json()
    assert cases["total"] == 3
    assert {c["case_id"] for c in cases["items"]} == {"A1", "A2", "A3"}
    stats = call(server, "GET", "/v1/stats", "province32").json()
    assert stats["total"] == 3
    assert stats["by"]["province"] == {"32": 3}
    assert sum(stats["by"]["state"].values()) == 3
    assert sum(w["count"] for w in stats["weekly"]) == 3
    # the same person has a case in Jawa Timur (C1): the Jawa Barat key sees only A1
    person = call(server, "GET", f"/v1/asn/{NIP_A1}", "province32").json()
    assert [c["case_id"] for c in person["cases"]] == ["A1"]
    alerts = call(server, "GET", "/v1/alerts", "province32").json()
    assert [a["alert_id"] for a in alerts["items"]] == ["AL-32"]
    me = call(server, "GET", "/v1/me", "province32").json()
    assert [p["group"] for p in me["provinces"]] == ["32"]
    assert me["overall"]["cases"] == 3


@pytest.mark.parametrize(("path", "params"), [
    ("/v1/cases", {"province": "31"}),
    ("/v1/cases", {"regency": "31.71"}),
    ("/v1/stats", {"province": "35"}),
    ("/v1/stats", {"regency": "35.78"}),
])
def test_filters_cannot_reach_another_province(server: MonitorServer, path: str,
                                               params: dict[str, str]) -> None:
    resp = call(server, "GET", path, "province32", **params)
    assert resp.status_code == 403
    assert "province 32 only" in resp.json()["detail"]


def test_agency_key_sees_only_its_cases(server: MonitorServer) -> None:
    cases = call(server, "GET", "/v1/cases", "agency").json()
    assert {c["case_id"] for c in cases["items"]} == {"A1", "A2"}
    assert call(server, "GET", "/v1/stats", "agency").json()["total"] == 2
    other = call(server, "GET", "/v1/cases", "agency", agency="Pemerintah Kota Bandung")
    assert other.status_code == 403


def test_public_gets_aggregates_without_personal_data(server: MonitorServer) -> None:
    resp = call(server, "GET", "/v1/stats", "public")
    assert resp.status_code == 200
    text = resp.text
    assert resp.json()["total"] == 7
    for personal in (NIP_A1, NIP_A2, "Asep", "Euis", "A1"):
        assert personal not in text
    assert "aggregate statistics only" in call(server, "GET", "/v1/cases", "public").json()[
        "detail"]


@pytest.mark.parametrize(("params", "ids"), [
    ({"state": "BLOCKED"}, {"A2"}),
    ({"state": ["SANCTIONED", "CLOSED"]}, {"A1", "B1"}),
    ({"overdue": "true"}, {"A2"}),
    ({"needs_review": "true"}, {"B2"}),
    ({"election": "PEMILU_2024"}, {"B1"}),
    ({"province": "35"}, {"C1"}),
    ({"regency": "32.73"}, {"A3"}),
    ({"agency": "Pemerintah Kabupaten Garut", "blocked": "true"}, {"A2"}),
    ({"violation_type": "MOBILISATION"}, {"A2"}),
    ({"level": "SEDANG", "province": "31"}, {"B1", "B3"}),
    ({"position": "JPT"}, {"A2"}),
])
def test_filters(server: MonitorServer, params: dict[str, Any], ids: set[str]) -> None:
    body = call(server, "GET", "/v1/cases", "national", **params).json()
    assert {c["case_id"] for c in body["items"]} == ids
    assert body["total"] == len(ids)


def test_paging_and_sorting(server: MonitorServer) -> None:
    first = call(server, "GET", "/v1/cases", "national", limit=3, sort="opened_at").json()
    assert first["total"] == 7 and len(first["items"]) == 3 and first["next_offset"] == 3
    rest = call(server, "GET", "/v1/cases", "national", limit=10, offset=3,
                sort="opened_at").json()
    assert rest["next_offset"] is None
    order = [c["opened_at"] for c in first["items"] + rest["items"]]
    assert order == sorted(order)
    assert len({c["case_id"] for c in first["items"] + rest["items"]}) == 7
    by_deadline = call(server, "GET", "/v1/cases", "national", sort="next_deadline").json()
    deadlines = [c["next_deadline"] for c in by_deadline["items"]]
    known = [d for d in deadlines if d is not None]
    assert known == sorted(known) and deadlines[:len(known)] == known
    too_big = call(server, "GET", "/v1/cases", "national", limit=600)
    assert too_big.status_code == 422 and "largest page" in too_big.json()["detail"]


def test_case_detail_has_timeline_sources_and_orders(server: MonitorServer) -> None:
    body = call(server, "GET", "/v1/cases/B1", "national").json()
    assert body["case"]["state"] == "CLOSED"
    assert [t["to_state"] for t in body["timeline"]][-3:] == ["BLOCKED", "SANCTIONED", "CLOSED"]
    assert body["sources"][0]["event_id"] == "bawaslu:B1"
    assert [(o["action"], o["outcome"]) for o in body["orders"]] == [
        ("BLOCK", "CONFIRMED"), ("UNBLOCK", "CONFIRMED")]
    missing = call(server, "GET", "/v1/cases/nope", "national")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_person_block_status(server: MonitorServer) -> None:
    blocked = call(server, "GET", f"/v1/asn/{NIP_A2}", "national").json()
    assert blocked["blocked"] is True and blocked["position"] == "JPT"
    repeat = call(server, "GET", f"/v1/asn/{NIP_A1}", "national").json()
    assert [c["case_id"] for c in repeat["cases"]] == ["A1", "C1"]
    assert repeat["blocked"] is False
    bad = call(server, "GET", "/v1/asn/123", "national")
    assert bad.status_code == 422 and bad.json()["detail"]


def test_me_in_the_api(server: MonitorServer) -> None:
    body = call(server, "GET", "/v1/me", "national").json()
    assert body["today"] == "2024-12-20"
    ranking = [(p["group"], p["rank"], p["ppk_within_share"]) for p in body["provinces"]]
    assert ranking == [("32", 1, 0.5), ("31", 2, 0.0), ("35", 3, None)]
    dki = body["provinces"][1]
    assert (dki["sanction_median"], dki["unblock_median"], dki["blocks"]) == (27.0, 4.0, 1)


def test_review_lands_on_the_commands_topic(server: MonitorServer,
                                            topics: KafkaConnection) -> None:
    resp = call(server, "POST", "/v1/review/A3", "province32",
                {"action": "SPLIT", "event_ids": ["ev:A3:1"], "reason": "Dua orang berbeda."})
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert accepted["topic"] == COMMANDS
    codec = AvroCodec()

    def found(records: list[Any]) -> bool:
        return any(r.partition == accepted["partition"] and r.offset == accepted["offset"]
                   for r in records)

    records = asyncio.run(consume_until(topics, [COMMANDS], found, timeout_s=60))
    record = next(r for r in records if r.offset == accepted["offset"]
                  and r.partition == accepted["partition"])
    assert record.key == b"A3"
    decoded = codec.decode(record.value)
    assert decoded.schema == ReviewDecision.avro_name
    decision = ReviewDecision.from_avro(decoded.value)
    assert (decision.command_id, decision.case_id, decision.action.value) == (
        accepted["command_id"], "A3", "SPLIT")
    assert decision.event_ids == ("ev:A3:1",) and decision.decided_by == "satgas-32"


@pytest.mark.parametrize(("body", "status", "phrase"), [
    ({"action": "MERGE", "reason": "x"}, 422, "MERGE needs a target_case_id"),
    ({"action": "SPLIT", "reason": "x"}, 422, "SPLIT needs the event_ids"),
    ({"action": "MERGE", "target_case_id": "nope", "reason": "x"}, 404, "no case 'nope'"),
    ({"action": "MERGE", "target_case_id": "A1", "reason": "x"}, 403, "outside"),
    ({"action": "JOIN", "reason": "x"}, 422, "action"),
])
def test_review_errors(server: MonitorServer, body: dict[str, Any], status: int,
                       phrase: str) -> None:
    resp = call(server, "POST", "/v1/review/B2", "province31", body)
    assert resp.status_code == status, resp.text
    assert phrase in resp.json()["detail"]


def test_health_and_metrics(server: MonitorServer) -> None:
    health = httpx.get(f"{server.url}/health", timeout=30)
    assert health.status_code == 200, health.text
    assert health.json()["database"] == "ok" and health.json()["broker"].startswith("ok")
    call(server, "GET", "/v1/stats", "national")

    async def lag_read() -> bool:
        return server.monitor.lag.snapshot is not None
    asyncio.run(wait_until(lag_read, 60, "the API's first lag read"))
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert 'netral_api_requests_total{method="GET",route="/v1/stats",status="200"}' in text
    assert "netral_lag_read_up 1.0" in text
    assert "netral_dlq_messages" in text


def test_no_input_gets_a_500(server: MonitorServer) -> None:
    """schemathesis over the monitoring operations, as a national and as a provincial key."""
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [cast("Ok[APIOperation]", r).ok() for r in api.get_all_operations()]
    operations = [op for op in operations if not op.path.startswith("/v1/ingest")]
    assert {op.path for op in operations} >= {"/v1/cases", "/v1/cases/{case_id}",
                                              "/v1/asn/{nip}", "/v1/stats", "/v1/alerts",
                                              "/v1/me", "/v1/review/{case_id}", "/health"}
    failures: list[str] = []
    for role in ("national", "province32"):
        for operation in operations:
            _fuzz(server, operation, server.keys[role], failures)
    assert not failures, failures[:5]


def _fuzz(server: MonitorServer, operation: Any, key: str, failures: list[str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        # generated keys (usually invalid) stay: they must get a 401, never a 500
        headers: Mapping[str, Any] = case.headers or {}
        if not headers.get("X-API-Key"):
            # a plain dict, as before: Case.headers is typed as requests' CaseInsensitiveDict
            case.headers = cast("CaseInsensitiveDict[Any]", {**headers, "X-API-Key": key})
        response = case.call()
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path}: "
                            f"{response.status_code} {response.text[:200]}")
        elif response.status_code >= 400:
            detail = response.json().get("detail")
            if not detail:
                failures.append(f"{case.method} {case.formatted_path}: "
                                f"{response.status_code} without a detail")

    run()


def test_scoped_reads_on_each_database(database_url: str, topics: KafkaConnection,
                                       tmp_path: Path) -> None:
    """The same leak checks on SQLite and on PostgreSQL (JSON paths and dates differ)."""
    for srv in serve_monitor(topics, tmp_path, database_url):
        assert call(srv, "GET", "/v1/cases", "province31", limit=10).json()["total"] == 3
        assert call(srv, "GET", "/v1/cases", "national", position="JPT").json()["total"] == 1
        assert call(srv, "GET", "/v1/cases", "national", overdue="true").json()["total"] == 1
        stats = call(srv, "GET", "/v1/stats", "province31").json()
        assert stats["by"]["province"] == {"31": 3}
        assert stats["by"]["position"] == {"FUNGSIONAL": 1, "PELAKSANA": 2}
        me = call(srv, "GET", "/v1/me", "national").json()
        assert [p["group"] for p in me["provinces"]] == ["32", "31", "35"]
        assert call(srv, "GET", "/v1/cases/A1", "province31").status_code == 403


def test_database_down_is_a_503_not_a_500(topics: KafkaConnection, tmp_path: Path) -> None:
    keyfile = tmp_path / "monitor-keys.yaml"
    key = add_monitor_key(keyfile, Role.NATIONAL)
    dead = create_sql_engine(f"postgresql://netral:x@127.0.0.1:{free_port()}/netral")
    monitor = Monitor(engine=dead, keys=MonitorKeyStore.load(keyfile), lag_refresh_s=3600)
    app = create_app(topics, KeyStore({}), IngestLimits(), monitor=monitor)
    for url in serve_app(app):
        health = httpx.get(f"{url}/health", timeout=60)
        assert health.status_code == 503
        assert health.json()["database"].startswith("unreachable")
        assert health.json()["broker"].startswith("ok")
        assert "database unreachable" in health.json()["detail"]
        cases = httpx.get(f"{url}/v1/cases", headers={"X-API-Key": key}, timeout=60)
        assert cases.status_code == 503
        assert "database is unavailable" in cases.json()["detail"]


def test_netral_api_serves_the_monitoring_api(topics: KafkaConnection, tmp_path: Path) -> None:
    """The real command: settings, bootstrap, a migrated SQLite record, a key from the CLI."""
    env = {"NETRAL_HOME": str(tmp_path), "NETRAL_KAFKA_BOOTSTRAP": topics.bootstrap}
    netral("db", "upgrade", env=env, check=True)
    key = re.search(r"(ntrlm_[\w-]+)", netral("api-key", "add", "--role", "public", env=env,
                                              check=True).stdout)
    assert key
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    full_env.update(env, NETRAL_API_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "hub", "api"], env=full_env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        async def up() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    return (await client.get(f"http://127.0.0.1:{port}/health")).status_code \
                        == 200
            except httpx.TransportError:
                return False
        asyncio.run(wait_until(up, 90, "netral api answering /health", poll_s=0.3))
        stats = httpx.get(f"http://127.0.0.1:{port}/v1/stats",
                          headers={"X-API-Key": key.group(1)}, timeout=30)
        assert stats.status_code == 200 and stats.json()["total"] == 0
        assert httpx.get(f"http://127.0.0.1:{port}/dashboard/login", timeout=30).status_code \
            == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
