"""The sinks against plain loops, on the same broker and the same data in one run.

SQL (the national record): N cases and their transitions are produced once to ``netral.cases``
and ``netral.case-events``; each pipeline reads all of them under its own consumer group into a
freshly migrated database: a SQLite file (WAL) and, when a throwaway PostgreSQL can start (as in
tests/fixtures/postgres.py; durable: fsync and synchronous commit on), PostgreSQL.
- floor: a plain aiokafka consumer: getmany (1000), AvroCodec decode + model validation, the same
  ``persons`` / ``cases`` / ``case_transitions`` rows, one plain executemany INSERT per table with
  SQLAlchemy Core in one transaction per batch, then commit the offsets;
- the SQL sink: ``SqlSinkRunner`` (what ``netral sql-sink`` runs, batches of 1000): the same, plus
  batch dedupe, upserts with the case version guard, DLQ handling, the write off the event loop.
The data holds one version per case (its latest, with 1-4 transitions): the floor's plain INSERT
cannot take a second version of a key, so both pipelines write exactly the same rows.

SIASN: N block orders for distinct NIPs on ``netral.orders.siasn``; the mock SIASN is the real
``netral mock-siasn`` (uvicorn, its own process, loopback), reset between runs.
- floor: a plain httpx loop: both tokens once, then the same ``POST /pns/blokir/{nip}`` with the
  same body and idempotency key for every order, at the adapter's concurrency; no Kafka;
- the adapter: ``run_adapter`` with ``HttpSiasnClient``, configured from the settings defaults
  (``NETRAL_SIASN_*``), from start (group join and ``init_transactions`` included) until the N-th
  outcome is committed on a results topic (read_committed);
- the same against the mock failing 30% of calls (500/503): what the retries cost.
Every run checks its effect: N rows per table, N effective blocks at the mock.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Engine, func, insert, select

from connectors.samples import random_nip
from hub.bootstrap import siasn_config, siasn_runner_options
from hub.broker.local import free_port
from hub.commands.up import stop_process
from hub.kafka_admin import create_topics
from hub.settings import NetralSettings
from schemas import regions
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import (
    AvroRecord,
    CaseRecord,
    CaseState,
    CaseTransition,
    Election,
    EventType,
    OrderAction,
    PersonRef,
    Position,
    SiasnOrder,
    ViolationType,
)
from schemas.models.hub import SourceRef, TimelineEntry
from schemas.topics import CASE_EVENTS, CASES, ORDERS_SIASN, Agency, TopicSpec, catalogue
from sinks.siasn.client import HttpSiasnClient
from sinks.siasn.runner import AdapterTopics, run_adapter
from sinks.sql import migrate, repository
from sinks.sql.engine import create_sql_engine
from sinks.sql.runner import SqlRunnerConfig, SqlSinkRunner
from sinks.sql.sink import SqlSink
from sinks.sql.tables import case_transitions, cases, persons
from tests.fixtures.postgres import PostgresUnavailable, ThrowawayPostgres, start_postgres

from .harness import REPO, Row, bench_broker, count_until, produce_all

BATCH = 1000  # the SQL sink's default batch (netral sql-sink --batch-size)
ERROR_RATE = 0.3
BREAKER_RESET_S = 1.0
"""The adapter runs with the settings' defaults except this (default 30 s): at 30% random errors
five failures in a row happen about once per 600 calls, and one 30 s hold would be the whole
measurement instead of the retries."""

LIFECYCLE = [CaseState.REPORTED, CaseState.UNDER_VERIFICATION, CaseState.RECOMMENDED,
             CaseState.PERINGATAN]
AGENCIES = [Agency.BAWASLU, Agency.BKN, Agency.KEMENDAGRI, Agency.PPK]
SQL_MODELS: dict[str, type[AvroRecord]] = {CASES: CaseRecord, CASE_EVENTS: CaseTransition}


# -- data -----------------------------------------------------------------------------------------
def national_record(n: int, seed: int = 17) -> tuple[list[CaseRecord], list[CaseTransition]]:
    """``n`` cases as the stream publishes them (latest version), and every transition."""
    rng = random.Random(seed)
    regencies = [r.code for r in regions.regions().values() if r.level.value != "province"]
    t0 = datetime(2024, 9, 23, 2, tzinfo=UTC)
    nips: set[str] = set()
    records: list[CaseRecord] = []
    transitions: list[CaseTransition] = []
    for i in range(n):
        case_id = f"case-{i:07d}"
        region = rng.choice(regencies)
        nip: str | None = None
        if rng.random() > 0.1:  # ~10% of cases still know only a name (domain.md)
            nip = random_nip(rng)
            while nip in nips:
                nip = random_nip(rng)
            nips.add(nip)
        version = rng.choice((1, 2, 2, 3, 3, 4))
        opened = t0 + timedelta(minutes=rng.randint(0, 90 * 24 * 60))
        steps = [opened + timedelta(days=3 * v, minutes=rng.randint(0, 600))
                 for v in range(version)]
        sources = tuple(SourceRef(event_id=f"{a.value.lower()}:{case_id}-{k}", agency=a,
                                  event_type=EventType.VIOLATION_REPORTED,
                                  occurred_at=opened - timedelta(minutes=k))
                        for k, a in enumerate(rng.sample(AGENCIES, rng.randint(1, 3))))
        timeline = tuple(TimelineEntry(at=at, state=LIFECYCLE[v], rule=f"lifecycle.step{v}",
                                       cause_event_id=sources[0].event_id)
                         for v, at in enumerate(steps))
        records.append(CaseRecord(
            case_id=case_id, version=version, election=Election.PILKADA_2024,
            state=LIFECYCLE[version - 1],
            person=PersonRef(nip=nip, name=f"Drs. ASN Nomor {i}, M.Si.",
                             agency_name=f"Pemerintah {regions.name_of(region)}",
                             position=rng.choice(list(Position)), region_code=region,
                             position_title="Kepala Bagian Umum"),
            violation_type=rng.choice(list(ViolationType)), region_code=region,
            province_code=region[:2], incident_date=opened.date() - timedelta(days=2),
            opened_at=opened, updated_at=steps[-1], sources=sources, timeline=timeline,
            case_refs=(f"{i:03d}/Reg/LP/PW/Kab/{region}/XI/2024",)))
        transitions += [CaseTransition(
            transition_id=f"{case_id}:{v + 1}", case_id=case_id, version=v + 1,
            from_state=LIFECYCLE[v - 1] if v else None, to_state=LIFECYCLE[v], at=at,
            cause_event_id=sources[0].event_id, rule=f"lifecycle.step{v}")
            for v, at in enumerate(steps)]
    return records, transitions


def block_orders(n: int, seed: int = 23) -> list[SiasnOrder]:
    rng = random.Random(seed)
    nips: list[str] = []
    seen: set[str] = set()
    while len(nips) < n:
        if (nip := random_nip(rng)) not in seen:
            seen.add(nip)
            nips.append(nip)
    now = datetime.now(UTC)
    return [SiasnOrder(order_id=f"ord-bench-{i}", case_id=f"case-bench-{i}", nip=nip,
                       action=OrderAction.BLOCK,
                       reason="Tidak menindaklanjuti rekomendasi KASN dalam 14 hari",
                       issued_at=now) for i, nip in enumerate(nips)]


def _encode(codec: AvroCodec, topic: str, key: str, record: AvroRecord) -> tuple[bytes, bytes]:
    return key.encode(), codec.encode_record(record, topic=topic)


# -- SQL ------------------------------------------------------------------------------------------
def _transition_row(t: CaseTransition) -> dict[str, Any]:
    return {name: getattr(value, "value", value) for name, value in t}


async def plain_sql(conn: KafkaConnection, engine: Engine, total: int) -> float:
    """The floor: consume, decode, validate, plain INSERTs, commit; seconds for ``total``."""
    codec = AvroCodec()
    consumer = AIOKafkaConsumer(*SQL_MODELS, **conn.aiokafka_kwargs(),
                                group_id=f"bench-sql-floor-{uuid.uuid4().hex[:6]}",
                                isolation_level="read_committed", enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    done = 0
    start = time.perf_counter()
    try:
        while done < total:
            batch = await consumer.getmany(timeout_ms=500, max_records=BATCH)
            person_rows, case_rows, transition_rows = [], [], []
            for recs in batch.values():
                for rec in recs:
                    done += 1
                    model = SQL_MODELS[rec.topic]
                    record = model.from_avro(codec.decode(rec.value, expect=model.avro_name).value)
                    if isinstance(record, CaseRecord):
                        case_rows.append(repository.case_row(record))
                        if (person := repository.person_row(record)) is not None:
                            person_rows.append(person)
                    elif isinstance(record, CaseTransition):
                        transition_rows.append(_transition_row(record))
            if not batch:
                continue
            with engine.begin() as db:
                for table, rows in ((persons, person_rows), (cases, case_rows),
                                    (case_transitions, transition_rows)):
                    if rows:
                        db.execute(insert(table), rows)
            await consumer.commit()
        return time.perf_counter() - start
    finally:
        await consumer.stop()


async def sql_sink(conn: KafkaConnection, engine: Engine, total: int) -> float:
    """The real runner of ``netral sql-sink``, batch after batch until ``total`` are committed."""
    runner = SqlSinkRunner(SqlSink(engine), AvroCodec(), SqlRunnerConfig(
        kafka=conn, group_id=f"bench-sql-sink-{uuid.uuid4().hex[:6]}", batch_size=BATCH))
    await runner.start()
    start = time.perf_counter()
    try:
        while runner.stats.records < total:
            await runner.run_once()
        assert runner.stats.dead_lettered == 0, runner.stats
        return time.perf_counter() - start
    finally:
        await runner.stop()


def check_rows(engine: Engine, n_cases: int, n_transitions: int) -> None:
    with engine.connect() as db:
        got = [db.execute(select(func.count()).select_from(t)).scalar_one()
               for t in (cases, case_transitions)]
    assert got == [n_cases, n_transitions], f"rows {got}, expected {n_cases}/{n_transitions}"


def sql_rows(conn: KafkaConnection, label: str, new_url: Callable[[], str], n: int,
             n_tr: int) -> list[Row]:
    """Floor and sink into two fresh databases of one backend; ``new_url()`` makes each."""
    total = n + n_tr
    rows = []
    for name, pipeline in ((f"floor: plain aiokafka + executemany INSERT ({label})", plain_sql),
                           (f"SQL sink: netral sql-sink runner ({label})", sql_sink)):
        url = new_url()
        migrate.upgrade(url)
        engine = create_sql_engine(url)
        try:
            seconds = asyncio.run(pipeline(conn, engine, total))
            check_rows(engine, n, n_tr)
        finally:
            engine.dispose()
        rows.append(Row(name, total, seconds, f"{n} cases + {n_tr} transitions"))
    return rows


@contextmanager
def postgres() -> Iterator[ThrowawayPostgres | str]:
    """A throwaway durable PostgreSQL, or the reason it cannot start (its rows are skipped)."""
    try:
        server = start_postgres(durable=True)
    except PostgresUnavailable as err:
        print(f"bench.sinks: PostgreSQL skipped: {err}", file=sys.stderr)
        yield str(err)
        return
    try:
        yield server
    finally:
        server.stop()


# -- SIASN ----------------------------------------------------------------------------------------
class MockProcess:
    """``netral mock-siasn`` in its own process on a free loopback port."""

    def __init__(self, home: Path, error_rate: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
        with (home / f"mock-siasn-{self.port}.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "mock-siasn", "--port", str(self.port),
                 "--error-rate", str(error_rate), "--seed", "7"],
                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, f"mock SIASN exited {self.proc.returncode}"
            try:
                httpx.get(f"{self.url}/_test/effects", timeout=5).raise_for_status()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("mock SIASN did not answer within 90 s") from None
                time.sleep(0.1)

    def test_api(self, method: str, path: str) -> Any:
        response = httpx.request(method, f"{self.url}/_test/{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def effects(self) -> int:
        return len(self.test_api("GET", "effects")["effects"])

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=30)  # SIGTERM, then SIGKILL: never an orphan


async def plain_siasn(url: str, orders: list[SiasnOrder], concurrency: int) -> float:
    """The floor: tokens once, then every block POST at ``concurrency``; seconds taken."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        start = time.perf_counter()
        gateway = await http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                  auth=("netral-dev", "netral-dev-secret"))
        sso = await http.post("/sso/token", data={"grant_type": "password",
                                                  "username": "netral-operator",
                                                  "password": "netral-dev-password"})
        auth = {"Authorization": f"Bearer {gateway.raise_for_status().json()['access_token']}",
                "Auth": f"bearer {sso.raise_for_status().json()['access_token']}"}
        gate = asyncio.Semaphore(concurrency)

        async def block(o: SiasnOrder) -> None:
            body = {"lingkup": o.scope.value, "alasan": o.reason, "dasarHukum": o.legal_basis,
                    "nomorKasus": o.case_id, "nomorPerintah": o.order_id}
            async with gate:
                response = await http.post(f"/apisiasn/1.0/pns/blokir/{o.nip}", json=body,
                                           headers={**auth, "Idempotency-Key": o.order_id})
                response.raise_for_status()

        await asyncio.gather(*(block(o) for o in orders))
        return time.perf_counter() - start


@dataclass(frozen=True)
class AdapterRun:
    seconds: float
    first_s: float
    retries: int
    breaker_opened: int


async def adapter(conn: KafkaConnection, url: str, n: int, results: str) -> AdapterRun:
    """``run_adapter`` from start until ``n`` outcomes are committed on ``results``."""
    settings = NetralSettings(siasn_url=url, siasn_breaker_reset_s=BREAKER_RESET_S)
    options = siasn_runner_options(settings, AdapterTopics(results=results))
    stop = asyncio.Event()
    async with HttpSiasnClient(siasn_config(settings)) as client:
        start = time.perf_counter()
        task = asyncio.create_task(run_adapter(
            conn, client, AvroCodec(), f"bench-siasn-{uuid.uuid4().hex[:6]}", stop,
            options=options))
        counting = asyncio.create_task(count_until(conn, results, n, timeout_s=900))
        try:
            await asyncio.wait({task, counting}, return_when=asyncio.FIRST_COMPLETED)
            if not counting.done():  # the adapter stopped first: its error is the story
                counting.cancel()
                task.result()
                raise RuntimeError("the SIASN adapter stopped before its last outcome")
            first, _ = counting.result()
            seconds = time.perf_counter() - start
        finally:
            stop.set()
            stats = await task
    assert stats.confirmed == n and stats.failed == 0, stats
    return AdapterRun(seconds, first, client.stats.retries, client.stats.breaker_opened)


def siasn_rows(conn: KafkaConnection, home: Path, n: int) -> list[Row]:
    orders = block_orders(n)
    codec = AvroCodec()
    asyncio.run(produce_all(conn, ORDERS_SIASN, [
        _encode(codec, ORDERS_SIASN, o.nip, o) for o in orders]))
    concurrency = NetralSettings().siasn_concurrency
    rows = []
    mock = MockProcess(home, 0.0)
    try:
        floor = asyncio.run(plain_siasn(mock.url, orders, concurrency))
        assert mock.effects() == n
        rows.append(Row(f"floor: plain httpx loop, {concurrency} concurrent POSTs (0% errors)",
                        n, floor, "no Kafka"))
        mock.test_api("POST", "reset")
        run = asyncio.run(adapter(conn, mock.url, n, "bench.siasn.results.0"))
        assert mock.effects() == n
        rows.append(Row("SIASN adapter: orders topic -> mock SIASN -> results (0% errors)", n,
                        run.seconds, f"first outcome after {run.first_s:.1f}s; {run.retries} "
                        f"retries; {n} effects"))
    finally:
        mock.stop()
    mock = MockProcess(home, ERROR_RATE)
    try:
        run = asyncio.run(adapter(conn, mock.url, n, "bench.siasn.results.30"))
        stats = mock.test_api("GET", "stats")
        assert mock.effects() == n
        rows.append(Row(f"SIASN adapter, mock failing {ERROR_RATE:.0%} of calls", n,
                        run.seconds, f"{run.retries} retries ({stats['injected_errors']} "
                        f"injected errors), breaker opened {run.breaker_opened}x "
                        f"(reset {BREAKER_RESET_S:.0f}s); {n} effects, 0 duplicates"))
    finally:
        mock.stop()
    return rows


async def warm_up(conn: KafkaConnection, topic: str) -> None:
    """Before anything is timed: leaders elected, and the broker's offsets and transaction
    topics created (the first group and the first transactional producer would pay for them)."""
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), transactional_id="bench-warm-up",
                                enable_idempotence=True, acks="all")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"warm-up", key=b"warm-up")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, **conn.aiokafka_kwargs(), group_id="bench-warm-up",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    await consumer.start()
    try:
        while not await consumer.getmany(timeout_ms=1000):
            pass
        await consumer.commit()
    finally:
        await consumer.stop()


# -- the section ----------------------------------------------------------------------------------
def run(n_cases: int = 3000, n_orders: int = 500) -> list[Row]:
    records, transitions = national_record(n_cases)
    codec = AvroCodec()
    encoded_cases = [_encode(codec, CASES, r.case_id, r) for r in records]
    encoded_transitions = [_encode(codec, CASE_EVENTS, t.case_id, t) for t in transitions]
    with tempfile.TemporaryDirectory(prefix="netral-bench-sinks-") as tmp:
        home = Path(tmp)
        with bench_broker(home) as conn:
            specs = [*catalogue(), *(TopicSpec(name=f"bench.siasn.results.{r}", key="NIP",
                                               value="SiasnOrderResult", cleanup="delete",
                                               retention_ms=86_400_000, writer="bench")
                                     for r in (0, 30)),
                     TopicSpec(name="bench.warm-up", key="-", value="-", cleanup="delete",
                               retention_ms=86_400_000, writer="bench")]
            asyncio.run(create_topics(conn, specs, partitions=4, replication=1, min_insync=1))
            asyncio.run(warm_up(conn, "bench.warm-up"))
            asyncio.run(produce_all(conn, CASES, encoded_cases))
            asyncio.run(produce_all(conn, CASE_EVENTS, encoded_transitions))
            counter = iter(range(1000))
            rows = sql_rows(conn, "SQLite WAL", lambda: f"sqlite:///{home}/n{next(counter)}.db",
                            n_cases, len(transitions))
            with postgres() as server:
                if isinstance(server, str):
                    rows.append(Row("PostgreSQL: skipped", 0, 0.0, server[:300]))
                else:
                    version = server.bindir.parent.name if server.bindir else "(external)"
                    rows += sql_rows(conn, f"PostgreSQL {version}, durable",
                                     server.new_database, n_cases, len(transitions))
            rows += siasn_rows(conn, home, n_orders)
    return rows


def table(rows: list[Row]) -> str:
    """Like harness.table, but each rate is a ratio to the floor row above it (three floors)."""
    lines = ["| pipeline | records | seconds | records/s | ratio to floor | note |",
             "|---|---|---|---|---|---|"]
    floor = 0.0
    for r in rows:
        if not r.records:
            lines.append(f"| {r.name} | - | - | - | - | {r.note} |")
            continue
        if r.name.startswith("floor"):
            floor = r.rate
        lines.append(f"| {r.name} | {r.records} | {r.seconds:.2f} | {r.rate:,.0f} | "
                     f"{r.rate / floor:.2f} | {r.note} |")
    return "\n".join(lines)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(table(run(*args)))
