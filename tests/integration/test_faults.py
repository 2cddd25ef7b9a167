"""Fault injection through the whole pipeline, on a local 3-node KRaft cluster (RF 3, min ISR 2).

The simulator's wave goes through the agencies' outboxes and relays into two stream workers of
one consumer group, the SQL sink, the SIASN adapter and the mock SIASN failing 30% of calls, the
Satgas alert service and a webhook receiver (a national and a provincial Satgas), while the
suite: kills one broker of three during production and consumption and restarts it, SIGKILLs
stream workers (the other takes over their partitions, the cases journal included), SIGKILLs the
SQL sink mid-batch and the alert service mid-stream, takes SIASN down for an outage, and mixes
poison messages in.
Then deadline ticks walk past every PPK deadline (more worker kills) and every overdue case must
be blocked at SIASN exactly once. At the end, against the ground truth: every true case once
in the SQL record with the state the stream gave it, every block effective exactly once at the
mock SIASN, every alert once at each recipient its route names, every poison message in a DLQ.
It prints the table of these counts.

``make test`` and ``make test-faults-light`` run the light form, ``make test-faults`` the full
one (``NETRAL_TEST_FAULTS=full``: more cases, >= 5 worker SIGKILLs, a 60 s SIASN outage).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from connectors.scoring import score
from connectors.sim_runner import publish_wave
from connectors.simulator import SimConfig, Simulation, iter_truth_lines, simulate
from hub.bootstrap import streams_config
from hub.broker.cluster import LocalCluster
from hub.broker.local import free_port
from hub.commands.cases import SCAN_TIME, send_ticks, ticks_for
from hub.commands.topics import topic_replication
from hub.commands.worker import create_internal_topics
from hub.kafka_admin import create_topics, read_to_end, wait_group_stable
from hub.lag import read_lag
from hub.settings import NetralSettings
from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.errors import HubError, RetriableError
from schemas.kafka import KafkaConnection
from schemas.models import Alert, CanonicalEvent, CaseState, OrderAction, SiasnOrderResult
from schemas.topics import (
    ALERTS,
    CASES,
    EVENTS,
    ORDERS_SIASN_RESULTS,
    TopicSpec,
    dlq_topic,
    raw_topic,
)
from sinks.alerts.routes import load_routes, route
from streams.rules.escalation import order_id
from tests.fixtures.kafka_tools import consume_until, produce
from tests.fixtures.national_record import latest_cases
from tests.fixtures.waiting import wait_until
from tests.fixtures.worker_process import hub_warnings
from tests.helpers import REPO, netral

pytestmark = [pytest.mark.integration, pytest.mark.faults]
FULL = os.environ.get("NETRAL_TEST_FAULTS") == "full"
CASES_N = 400 if FULL else 120
WORKER_KILLS = 6 if FULL else 2
OUTAGE_S = 60 if FULL else 5
POISON = {b"poison-json": b'{"nip": "198503152010011001"}', b"poison-bytes": bytes(range(40)),
          b"poison-truncated": b"\xc3\x01" + b"\x00" * 12}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    home = tmp_path_factory.mktemp("cluster")
    local = LocalCluster(home, size=3, heap_mb=384, dist_dir=REPO / ".netral" / "dist")
    bootstrap, _ = local.start(timeout_s=180)
    try:
        netral("topics", "create", env={"NETRAL_KAFKA_BOOTSTRAP": bootstrap,
                                        "NETRAL_TOPIC_REPLICATION": "3",
                                        "NETRAL_TOPIC_MIN_INSYNC": "2"}, check=True)
        yield local
    finally:
        local.stop()


def test_workers_starting_together_all_create_the_one_partition_topics(
        cluster: LocalCluster) -> None:
    """Two workers starting at once race to create the one-partition changelogs: the loser
    found the topic created but its partitions not yet known to the broker it asked (3
    nodes), and stopped with "has 0 partitions". Now it waits for them."""
    conn = KafkaConnection(bootstrap=cluster.bootstrap(), client_id="netral-test")

    async def together(name: str) -> list[object]:
        spec = TopicSpec(name=name, key="k", value="v", cleanup="compact", retention_ms=None,
                         writer="test", partitions=1)
        async def one(delay_s: float) -> object:
            await asyncio.sleep(delay_s)  # some list the topics after it was created
            return await create_topics(conn, [spec], partitions=4, replication=3, min_insync=2)

        return await asyncio.gather(*(one(i * 0.01) for i in range(16)),
                                    return_exceptions=True)

    for round_ in range(5):
        results = asyncio.run(together(f"netral-race-{uuid.uuid4().hex[:8]}-changelog"))
        failed = [r for r in results if isinstance(r, BaseException)]
        assert not failed, f"round {round_}: {failed}"


def test_a_worker_on_three_brokers_replicates_its_tables(cluster: LocalCluster) -> None:
    """Unset, the worker's replication is the cluster's: its tables' changelogs (the cases
    journal first) get RF 3 and min ISR 2 here. They had RF 1 while the hub's topics had 3,
    so one broker down took the journal with it."""
    conn = KafkaConnection(bootstrap=cluster.bootstrap(), client_id="netral-test")
    settings = NetralSettings(kafka_bootstrap=conn.bootstrap,
                              worker_app_id=f"netral-rf-{uuid.uuid4().hex[:6]}")
    replication, min_insync = asyncio.run(topic_replication(settings, conn, "test"))
    cfg = streams_config(settings).model_copy(update={"replication": replication})
    assert (replication, min_insync, cfg.replication) == (3, 2, 3)
    create_internal_topics(cfg, min_insync)
    journal = f"{cfg.app_id}-cases-journal-changelog"

    seen: list[tuple[list[int], str | None]] = []

    async def replicated() -> bool:  # a broker other than the creating one may not know it yet
        admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs())
        await admin.start()
        try:
            (topic,) = await admin.describe_topics([journal])
            configs = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, journal)])
        finally:
            await admin.close()
        entries = {e[0]: e[1] for e in configs[0].resources[0][4]}
        seen.append(([len(p["replicas"]) for p in topic["partitions"]],
                     entries.get("min.insync.replicas")))
        return bool(seen[-1][0]) and seen[-1][1] is not None

    asyncio.run(wait_until(replicated, 30, lambda: f"{journal} described with its partitions "
                                                   f"and min ISR (last: {seen[-1]})"))
    assert seen[-1] == ([3], "2")


@dataclass
class Services:
    """The hub's processes, as operators run them, each restartable by name."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    args: dict[str, list[str]] = field(default_factory=dict)

    extra: dict[str, dict[str, str]] = field(default_factory=dict)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.args[name] = list(args or self.args[name])
        self.extra[name] = env if env is not None else self.extra.get(name, {})
        with (self.logs / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "hub", *self.args[name]],
                                                env={**self.env, **self.extra[name]}, cwd=REPO,
                                                stdout=out, stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        assert proc.poll() is None, f"{name} died by itself:\n{self.log(name)[-3000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


def wait_stable(conn: KafkaConnection, group: str) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            asyncio.run(wait_group_stable(conn, group, timeout_s=5))
            return
        except RetriableError:
            assert time.monotonic() < deadline, f"group {group} never Stable"


@pytest.mark.timeout(1500 if FULL else 900)  # its own deadlines report what is missing first
def test_the_pipeline_loses_and_duplicates_nothing_under_faults(cluster: LocalCluster,
                                                                tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("NETRAL_TEST_SEED", "9")))
    conn = KafkaConnection(bootstrap=cluster.bootstrap(), client_id="netral-faults")
    siasn_port = free_port()
    db = f"sqlite:///{tmp_path / 'netral.db'}"
    app_id = f"netral-faults-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=conn.bootstrap, NETRAL_HOME=str(tmp_path),
               NETRAL_WORKER_APP_ID=app_id, NETRAL_DEADLINE_SCAN_INTERVAL_S="0",
               NETRAL_DATABASE_URL=db, NETRAL_SIASN_URL=f"http://127.0.0.1:{siasn_port}",
               NETRAL_SIASN_BACKOFF_MAX_S="2", NETRAL_SIASN_MAX_ATTEMPTS="100",
               NETRAL_SIASN_BREAKER_RESET_S="2", NETRAL_LOG_LEVEL="INFO")
    svc = Services(env, tmp_path)
    counts: dict[str, str] = {}
    passed = False
    try:
        svc.start("mock-siasn", "mock-siasn", "--port", str(siasn_port), "--error-rate", "0.3",
                  "--seed", "3")
        asyncio.run(wait_until(lambda: _answers(f"http://127.0.0.1:{siasn_port}/_test/effects"),
                               60, "mock SIASN up"))
        svc.start("worker-1", "worker")
        svc.start("worker-2", "worker")
        wait_stable(conn, app_id)
        svc.start("sql-sink", "sql-sink", "--migrate")
        svc.start("siasn-adapter", "siasn-adapter")
        received = _start_alert_channels(svc, tmp_path)

        # 1. The wave through the outboxes, a broker killed and restarted while it flows.
        sim = simulate(SimConfig(cases=CASES_N, duplicate_rate=0.2, name_only_rate=0.1, seed=13))
        truth = list(iter_truth_lines(sim))
        wave: list[object] = []
        sender = threading.Thread(target=lambda: wave.append(asyncio.run(publish_wave(
            sim, conn, tmp_path / "outboxes", rate=400.0))))
        sender.start()
        time.sleep(rng.uniform(0.5, 1.5))  # a random moment of the production
        cluster.node(2).kill()
        asyncio.run(produce(conn, raw_topic("bawaslu"), [(k, v, None) for k, v in POISON.items()]))
        svc.kill("worker-1")  # the other worker takes its partitions over
        sender.join(timeout=600)
        assert wave and wave[0].sent == len(sim.events), "the wave did not get through"  # type: ignore[attr-defined]
        cluster.restart_node(2)
        svc.start("worker-1")
        svc.kill("sql-sink")  # mid-batch, while the record flows in
        svc.start("sql-sink")
        svc.kill("alerts")  # while the wave's alerts go out
        svc.start("alerts")
        for _ in range(WORKER_KILLS - 1):
            time.sleep(rng.uniform(1.0, 4.0))
            victim = rng.choice(["worker-1", "worker-2"])
            svc.kill(victim)
            svc.start(victim)

        def complete(rs: list[ConsumerRecord]) -> bool:
            result = score(truth, latest_cases(rs).values())
            return result.events_missing == 0 and result.cases_found == len(truth)

        try:
            cases = latest_cases(asyncio.run(consume_until(conn, [CASES], complete,
                                                           timeout_s=400)))
        except AssertionError:
            print(asyncio.run(_where_lost(conn, sim, app_id)))
            raise
        merge = score(truth, cases.values())
        assert merge.precision >= 0.99 and merge.recall >= 0.98, merge.line()
        assert merge.wrong_state == 0 and merge.split_cases == 0, merge.line()

        # 2. Deadlines pass: SIASN fails 30% of calls and goes down; a worker is killed again.
        overdue = {c.case_id: c for c in cases.values()
                   if c.state is CaseState.RECOMMENDED and c.person.nip}
        first = min(c.next_deadline for c in overdue.values() if c.next_deadline)
        ticks = ticks_for(datetime.combine(first, SCAN_TIME), first + timedelta(days=120),
                          "faults")
        httpx.post(f"http://127.0.0.1:{siasn_port}/_test/outage", params={"seconds": OUTAGE_S},
                   timeout=10).raise_for_status()
        asyncio.run(send_ticks(conn, AvroCodec(), ticks))
        victim = rng.choice(["worker-1", "worker-2"])
        svc.kill(victim)
        svc.start(victim)
        wanted = {order_id(c, OrderAction.BLOCK) for c in overdue}
        results = asyncio.run(consume_until(conn, [ORDERS_SIASN_RESULTS], lambda rs: wanted <= {
            _result(r).order_id for r in rs}, timeout_s=300 + OUTAGE_S * 3))
        effects = httpx.get(f"http://127.0.0.1:{siasn_port}/_test/effects", timeout=10).json()
        blocks = Counter(e["nip"] for e in effects["effects"] if e["action"] == "BLOCK")
        assert set(blocks) == {c.person.nip for c in overdue.values()}
        assert max(blocks.values()) == 1, "an ASN blocked twice at SIASN"

        # 3. The SQL record: every true case once, in the state the stream gave it.
        def all_blocked(rs: list[ConsumerRecord]) -> bool:
            now = latest_cases(rs)
            return all(c in now and now[c].state is CaseState.BLOCKED for c in overdue)

        final = latest_cases(asyncio.run(consume_until(conn, [CASES], all_blocked,
                                                       timeout_s=120)))
        engine = sa.create_engine(db)

        async def sql_caught_up() -> bool:
            with engine.connect() as c:
                rows: dict[str, str] = dict(
                    c.execute(sa.text("SELECT case_id, state FROM cases")).all())
            return all(rows.get(k) == v.state.value for k, v in final.items())

        asyncio.run(wait_until(sql_caught_up, 180, "SQL record matching netral.cases"))
        with engine.connect() as c:
            sql_cases = c.execute(sa.text("SELECT count(*) FROM cases")).scalar_one()
        engine.dispose()

        # 4. Every alert once per recipient its route names (one ledger key: the dedupe key).
        sent = _alerts_on_topic(conn)
        routes = load_routes(tmp_path / "routes.yaml")
        wanted_deliveries = {(r.id, a.dedupe_key) for a in sent.values() for r in route(routes, a)}

        async def delivered() -> bool:
            return wanted_deliveries <= set(_deliveries(received, sent))

        asyncio.run(wait_until(delivered, 180, "every alert at each of its recipients"))
        deliveries = Counter(_deliveries(received, sent))
        assert set(deliveries) == wanted_deliveries, "an alert reached a recipient not routed to"
        assert max(deliveries.values()) == 1, "an alert delivered twice to one recipient"

        # 5. Every poison message in the DLQ, with its reason.
        letters = asyncio.run(consume_until(conn, [dlq_topic("normalize")], lambda rs: set(
            POISON) <= {r.key for r in rs}, timeout_s=120))
        reasons = {r.key: DeadLetter.from_headers(r.headers).reason for r in letters
                   if r.key in POISON}
        counts.update({
            "true cases": str(len(truth)), "cases on netral.cases": str(len(final)),
            "cases in SQL": str(sql_cases), "merge": merge.line(),
            "overdue cases": str(len(overdue)), "block order ids confirmed": str(len(wanted)),
            "effective blocks at SIASN": str(sum(blocks.values())),
            "NIPs blocked twice": str(sum(n > 1 for n in blocks.values())),
            "adapter results (incl. re-emissions)": str(Counter(
                _result(r).outcome.value for r in results)),
            "alerts on netral.alerts (distinct dedupe keys)":
                f"{len(sent)} ({len({a.dedupe_key for a in sent.values()})})",
            "alert deliveries (recipient x dedupe key)": f"{sum(deliveries.values())} of "
                                                         f"{len(wanted_deliveries)} routed, "
                                                         f"{max(deliveries.values())} at most",
            "poison messages in DLQ": f"{len(reasons)}/{len(POISON)}",
            "worker SIGKILLs": str(WORKER_KILLS + 1), "broker kills": "1 (node 2, restarted)",
            "SQL sink SIGKILLs": "1", "alert service SIGKILLs": "1",
            "SIASN": f"30% errors, {OUTAGE_S}s outage",
        })
        assert len(final) == len(truth) == sql_cases
        assert len(reasons) == len(POISON)
        passed = True
    finally:
        svc.stop_all()
        print("\n--- fault injection: counts against the ground truth ---")
        for key, value in counts.items():
            print(f"{key:>40} | {value}")
        for name in svc.procs:
            text = svc.log(name)
            if "Traceback" in text:
                print(f"--- {name} log (tail) ---\n{text[-3000:]}")
            elif not passed and name.startswith("worker"):  # CI's output is all there is
                print(f"--- {name} log: what the worker warned of ---\n{hub_warnings(text)}")


async def _answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            await client.get(url, timeout=2)
        return True
    except httpx.TransportError:
        return False


ROUTES = """version: 1
recipients:
  - id: nasional
    name: Satgas Netralitas ASN Nasional
    scope: national
    channels:
      - {{type: webhook, url: "http://127.0.0.1:{port}/webhook/nasional",
         secret: fault-suite-secret-nasional}}
  - id: jabar
    name: Satgas Netralitas ASN Provinsi Jawa Barat
    scope: province
    province: "32"
    channels:
      - {{type: webhook, url: "http://127.0.0.1:{port}/webhook/jabar",
         secret: fault-suite-secret-jabar}}
"""


def _start_alert_channels(svc: Services, home: Path) -> Path:
    """The Satgas alert service (its ledger in its own SQLite file) and a webhook receiver."""
    port, routes, received = free_port(), home / "routes.yaml", home / "received.jsonl"
    routes.write_text(ROUTES.format(port=port))
    env = {"NETRAL_ALERTS_ROUTES_FILE": str(routes), "NETRAL_ALERTS_RECEIVER_FILE": str(received),
           "NETRAL_ALERTS_DIGEST_THRESHOLD": "1000000",  # every alert singly, none in digests
           "NETRAL_DATABASE_URL": f"sqlite:///{home / 'alerts.db'}"}
    svc.start("alerts-receiver", "alerts", "receiver", "--port", str(port), env=env)
    asyncio.run(wait_until(lambda: _answers(f"http://127.0.0.1:{port}/_received"), 60,
                           "alert receiver up"))
    svc.start("alerts", "alerts", "run", "--migrate", env=env)
    return received


def _alerts_on_topic(conn: KafkaConnection) -> dict[str, Alert]:
    codec = AvroCodec()
    return {a.alert_id: a for a in (Alert.from_fastavro(codec.decode(r.value).value)
                                    for r in asyncio.run(read_to_end(conn, ALERTS)))}


def _deliveries(received: Path, sent: dict[str, Alert]) -> list[tuple[str, str]]:
    """(recipient, dedupe key) of every verified webhook delivery the receiver logged."""
    lines = [json.loads(x) for x in received.read_text().splitlines()] if received.exists() else []
    return [(x["recipient"], sent[x["body"]["alert"]["alert_id"]].dedupe_key) for x in lines
            if x["kind"] == "webhook" and x["verified"] and x["body"]["type"] == "netral.alert"
            and x["body"]["alert"]["alert_id"] in sent]


async def _where_lost(conn: KafkaConnection, sim: Simulation, group: str) -> str:
    """For a failed run: where each missing event stopped (raw topic, netral.events, a case),
    and the group's committed offset on each partition it stopped at (past it: committed over;
    behind it: not taken)."""
    codec = AvroCodec()
    raw: dict[tuple[str, bytes], ConsumerRecord] = {}
    for agency in {e.agency for e in sim.events}:
        for r in await read_to_end(conn, raw_topic(agency)):
            raw[(agency, r.key)] = r
    events: dict[str, ConsumerRecord] = {}
    for r in await read_to_end(conn, EVENTS):
        try:
            events[CanonicalEvent.from_avro(codec.decode(r.value).value).event_id] = r
        except (HubError, ValueError):
            continue
    in_cases = {s.event_id for c in latest_cases(await read_to_end(conn, CASES)).values()
                for s in c.sources}
    committed = {(p.topic, p.partition): (p.committed, p.end)
                 for p in (await read_lag(conn, groups=[group], timeout_s=20)).partitions}
    lines = []
    stopped: set[tuple[str, int]] = set()
    for ev in sim.events:
        if ev.record is None or ev.event_id in in_cases:
            continue
        r = raw.get((ev.agency, ev.record.source_id.encode()))
        e = events.get(ev.event_id)
        where = ("not on its raw topic" if r is None else
                 f"raw {r.topic}[{r.partition}]@{r.offset}, " + (
                     f"on netral.events[{e.partition}]@{e.offset}, in no case"
                     if e is not None else "not on netral.events"))
        stopped.add((e.topic, e.partition) if e is not None else (r.topic, r.partition)
                    if r is not None else ("", -1))
        lines.append(f"  {ev.event_id}: {where}")
    offsets = ", ".join(f"{t}[{p}] {committed.get((t, p), ('none', '?'))[0]} of "
                        f"{committed.get((t, p), ('none', '?'))[1]}"
                        for t, p in sorted(stopped) if t)
    return (f"{len(lines)} events of the wave in no case:\n" + "\n".join(lines[:60])
            + f"\ngroup {group} committed offsets where they stopped: {offsets}")


def _result(rec: ConsumerRecord) -> SiasnOrderResult:
    return SiasnOrderResult.from_avro(AvroCodec().decode(rec.value).value)
