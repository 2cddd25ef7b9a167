"""Monitoring API latency: ``GET /v1/cases`` and ``GET /v1/stats`` over HTTP on a national record of
N cases (default 100,000, SQLite), against the same queries run directly on the database (the
floor: what the HTTP app, auth and JSON add is the difference).

Each request is timed on its own, one client, sequentially; p50 and p99 over ``REQUESTS``.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

from connectors.ingest import IngestLimits
from connectors.keys import KeyStore
from hub.api.access import MonitorKeyStore, Role, add_monitor_key
from hub.api.app import create_app
from hub.api.deps import Monitor
from hub.broker.local import free_port
from schemas import regions
from schemas.models import CaseRecord, CaseState, Election, PersonRef, Position, ViolationType
from sinks.sql import migrate, queries, repository
from sinks.sql.engine import create_sql_engine

from .harness import bench_broker

REQUESTS = 200
BATCH = 5000
# most cases stall at the PPK (domain.md, Pilkada 2024)
STATES = [(CaseState.UNDER_VERIFICATION, 58), (CaseState.RECOMMENDED, 30),
          (CaseState.PERINGATAN, 4), (CaseState.BLOCKED, 2), (CaseState.SANCTIONED, 2),
          (CaseState.NOT_PROVEN, 2), (CaseState.REJECTED, 2)]


@dataclass(frozen=True)
class Row:
    name: str
    requests: int
    p50_ms: float
    p99_ms: float


def _cases(n: int, rng: random.Random) -> list[CaseRecord]:
    regencies = [r.code for r in regions.regions().values() if r.level.value != "province"]
    states = [s for s, w in STATES for _ in range(w)]
    t0 = datetime(2024, 9, 23, 2, tzinfo=UTC)
    out = []
    for i in range(n):
        region = rng.choice(regencies)
        opened = t0 + timedelta(minutes=rng.randint(0, 90 * 24 * 60))
        out.append(CaseRecord(
            case_id=f"case-{i:07d}", version=1, election=Election.PILKADA_2024,
            state=rng.choice(states),
            person=PersonRef(name=f"ASN {i}", agency_name=f"Pemerintah {regions.name_of(region)}",
                             position=rng.choice(list(Position)), region_code=region),
            violation_type=rng.choice(list(ViolationType)), region_code=region,
            province_code=region[:2], incident_date=opened.date() - timedelta(days=2),
            opened_at=opened, updated_at=opened + timedelta(days=rng.randint(0, 20)),
            next_deadline=date(2024, 12, 1) + timedelta(days=rng.randint(0, 40))))
    return out


def _percentiles(times: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(times, n=100, method="inclusive")
    return q[49] * 1000, q[98] * 1000


def _time(fn: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return _percentiles(times)


def run(n: int = 100_000) -> list[Row]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url = f"sqlite:///{home / 'netral.db'}"
        migrate.upgrade(url)
        engine = create_sql_engine(url)
        records = _cases(n, rng)
        for i in range(0, n, BATCH):
            with engine.begin() as conn:
                repository.upsert_cases(conn, records=records[i:i + BATCH])
        keyfile = home / "monitor-keys.yaml"
        national = add_monitor_key(keyfile, Role.NATIONAL)
        province = add_monitor_key(keyfile, Role.PROVINCE, province="32")
        rows: list[Row] = []
        scope = queries.Scope()
        filters = queries.CaseFilter(today=date(2024, 12, 20))
        with engine.connect() as conn:
            rows.append(Row("floor: list_cases() on the DB, 50 newest", REQUESTS,
                            *_time(lambda: queries.list_cases(conn, scope=scope, filters=filters),
                                   REQUESTS)))
            rows.append(Row("floor: stats() on the DB", REQUESTS // 4,
                            *_time(lambda: queries.stats(conn, scope=scope), REQUESTS // 4)))
        with bench_broker(home / "broker") as kafka:
            monitor = Monitor(engine=engine, keys=MonitorKeyStore.load(keyfile),
                              lag_refresh_s=3600)
            app = create_app(kafka, KeyStore({}), IngestLimits(), monitor=monitor,
                             session_secret="b" * 40)
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                   log_level="warning"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.05)
            try:
                base = f"http://127.0.0.1:{port}"
                with httpx.Client(base_url=base, timeout=60) as client:
                    def get(path: str, key: str, **params: str | int) -> Callable[[], object]:
                        def call() -> object:
                            resp = client.get(path, params=params, headers={"X-API-Key": key})
                            resp.raise_for_status()
                            return resp
                        return call
                    cases_rows = [
                        ("GET /v1/cases (national, 50 newest)", get("/v1/cases", national)),
                        ("GET /v1/cases (province 32, state=RECOMMENDED, by deadline)",
                         get("/v1/cases", province, state="RECOMMENDED",
                             sort="next_deadline")),
                        ("GET /v1/cases (national, overdue, offset 1000)",
                         get("/v1/cases", national, overdue="true", offset=1000)),
                    ]
                    for name, fn in cases_rows:
                        fn()  # warm
                        rows.append(Row(name, REQUESTS, *_time(fn, REQUESTS)))
                    for name, fn in [("GET /v1/stats (national)", get("/v1/stats", national)),
                                     ("GET /v1/stats (province 32)",
                                      get("/v1/stats", province))]:
                        fn()
                        rows.append(Row(name, REQUESTS // 4, *_time(fn, REQUESTS // 4)))
            finally:
                server.should_exit = True
                thread.join(timeout=30)
        engine.dispose()
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| request | requests | p50 ms | p99 ms |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.requests} | {r.p50_ms:.1f} | {r.p99_ms:.1f} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
