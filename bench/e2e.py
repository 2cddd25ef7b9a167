"""End to end: raw reports -> national record (SQL, API) -> SIASN, on a local 3-node cluster.

Everything runs as operators run it: ``netral worker`` (normalize + cases agents, the deadline
timer off), ``netral sql-sink --migrate`` (SQLite file), ``netral api``, ``netral mock-siasn`` and
``netral siasn-adapter``, each its own process, on a ``LocalCluster`` of three KRaft brokers
(RF 3, min ISR 2). One simulated Pilkada wave W (20% cross-agency duplicates, 10% name-only) is
produced to the five raw topics before anything reads it. Measured, in this order:

- floor: a plain aiokafka consume-decode-dedupe-produce loop over W (bench/cases.py's floor);
- scaling: 3 then 2 workers in one fresh group over W (the non-raw topics emptied before each),
  until the wave's last CaseRecord is on netral.cases; the 1-worker row is run 1's;
- run 1: one worker + the SQL sink over W until every case of netral.cases is a row in SQL
  (and, as the scaling row, until the last CaseRecord); py-spy samples the worker meanwhile;
  its RSS right after ready and after the wave gives RSS per case;
- latency: a second wave produced at a fixed rate, by default 45% of run 1's end-to-end rate (a
  load the pipeline sustains, so the figure is latency rather than queueing; a rate given on the
  command line is used as is); every 4th report that opens a case (and has no duplicate report
  close behind it) is polled on ``GET /v1/cases/{case_id}`` every 0.2 s, from its produce until
  200 or for at most 60 s; p50/p99 over the cases seen, and how many were not;
- recovery: a third wave produced in one go, the worker SIGKILLed once a third of its cases are
  out and restarted at once; seconds from the kill until every case of the wave is out, and
  until the group's lag (``hub.lag.read_lag``) is zero;
- deadline -> SIASN: the calendar walked one deadline tick at a time (``ticks_for`` /
  ``send_ticks``), from the day after the cases stage's clock (the latest case update: every
  deadline passed by then falls due on that first tick), over the days on which some
  escalation step falls due by the cases' ``next_deadline`` on netral.cases (a scan on any
  other day changes nothing). A tick is done
  when the worker's group has committed past it and netral.cases is quiet; per NIP that tick
  blocked: the mock's effect time (``/_test/effects`` ``at``) minus the tick's ack time. Steps
  predicted due that the tick did not take are counted (the cases stage stamps its own steps
  with its clock, the latest input time, so after an input of today, e.g. a SIASN result, two
  steps of one case can share an instant and fold in the wrong order: README, bench section);
- restore: the worker stopped, one new report produced, the worker restarted; seconds from spawn
  until that report is a case (the book of every case so far recovered from its snapshot and
  journal changelogs); the 1M extrapolation scales only the part after the worker joined its
  group, since start-up does not grow with the cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError

from connectors.samples import sample_reports
from connectors.simulator import SimConfig, SimEvent, simulate
from hub.api.access import Role, add_monitor_key
from hub.broker.cluster import LocalCluster
from hub.broker.local import free_port
from hub.commands.cases import SCAN_TIME, send_ticks, ticks_for
from hub.commands.up import stop_process
from hub.kafka_admin import create_topics, group_members
from hub.lag import read_lag
from hub.settings import NetralSettings
from schemas.codec import AvroCodec
from schemas.errors import ConfigError, RetriableError
from schemas.kafka import KafkaConnection
from schemas.models import CanonicalEvent, CaseRecord, EscalationStep, EventType
from schemas.topics import CASES, DEADLINE_TICKS, EVENTS, raw_topic
from streams.rules.calendar import default_calendar
from streams.rules.cases import case_id_for
from streams.rules.escalation import NEXT_STEP, due_step
from streams.rules.normalize import normalize_record
from streams.rules.policy import load_policies
from streams.rules.stage import CaseStage, InputKind, jakarta_date
from tests.fixtures.national_record import latest_cases

from .cases import RAW_TOPICS, plain_loop, restore_line, watch_cases
from .harness import REPO, Row, bench_specs, produce_all, rss_mb
from .harness import table as harness_table

SAMPLE_EVERY = 4  # latency: every 4th case-opening report is polled on the API
POLL_S = 0.2
PYSPY_S = 15
LAG_WAIT_S = 60.0
KILL_AFTER_S = 1.0  # recovery: the SIGKILL this long after the wave is produced
LATENCY_SHARE = 0.45  # latency wave rate: this share of run 1's end-to-end events/s
CASE_WAIT_S = 60.0  # latency: how long one sampled case is polled before it counts as not seen
DAY_WAIT_S = 120.0  # deadline walk: how long one tick's cases and blocks are waited for
WALK_BUDGET_S = 900.0  # deadline walk: no new tick after this long
QUIET_S = 3.0  # deadline walk: a tick is done once netral.cases has been quiet this long
IDLE_TICKS = 10  # deadline walk: stop after this many ticks in a row that moved nothing


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (what, value, how)
    profile: list[tuple[str, float]] = field(default_factory=list)  # (frame, share of samples)
    sizes: str = ""

    def add(self, *figures: tuple[str, str, str]) -> None:
        for figure in figures:
            self.figures.append(figure)
            note(" | ".join(figure))


# -- data -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Wave:
    events: list[tuple[str, bytes, bytes, SimEvent]]  # (topic, key, value, event) in sim order
    sources: dict[str, tuple[str, ...]]  # case id -> its reports' event ids (in-process rules)

    @property
    def case_ids(self) -> set[str]:
        return set(self.sources)

    def by_topic(self) -> dict[str, list[tuple[bytes, bytes]]]:
        out: dict[str, list[tuple[bytes, bytes]]] = {t: [] for t in RAW_TOPICS}
        for topic, key, value, _ in self.events:
            out[topic].append((key, value))
        return out


def make_wave(cases: int, seed: int) -> Wave:
    """A simulated wave, encoded for the raw topics, and its cases per the hub's own rules."""
    codec = AvroCodec()
    stage = CaseStage(codec, default_calendar(), load_policies())
    sim = simulate(SimConfig(cases=cases, duplicate_rate=0.2, name_only_rate=0.1, seed=seed))
    events = []
    for ev in sim.events:
        assert ev.record is not None
        topic = raw_topic(ev.agency)
        key, value = (ev.record.source_id.encode(),
                      codec.encode_record(ev.record, topic=topic))
        events.append((topic, key, value, ev))
        _, event = normalize_record(topic, key, codec.decode(value))
        stage.take(InputKind.EVENT, codec.encode(CanonicalEvent.avro_name, event, topic=EVENTS))
    return Wave(events, {cid: tuple(s.event_id for s in case.sources
                               if s.event_type is EventType.VIOLATION_REPORTED)
                         for cid, case in stage.book.cases.items()})


# -- processes ------------------------------------------------------------------------------------
class Hub:
    """The hub's processes by name; workers get their app id (consumer group) from ``start``."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "hub", *args],
                                    env={**self.env, **extra}, cwd=REPO, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def worker(self, name: str, app_id: str, **extra: str) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", NETRAL_WORKER_APP_ID=app_id, **extra)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Signal one process and wait; SIGKILL it if it has not exited within 60 s."""
        proc = self.procs.pop(name)
        if sig == signal.SIGTERM:
            stop_process(proc, timeout_s=60)
        elif proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=60)

    def stop_all(self) -> None:
        """Every process still running, each one stopped whatever happens to the others."""
        for name in list(self.procs):
            try:
                self.stop(name)
            finally:
                self.procs.pop(name, None)

    def grep(self, name: str, words: tuple[str, ...]) -> None:
        """The lines of a process's log that hold any of ``words``, on stderr."""
        found = _grep(self.logs / f"{name}.log", words)
        note(f"--- {len(found)} lines of {name}.log with {' / '.join(words)} ---\n"
             + "\n".join(found[-60:]))

    def tail(self, *names: str, lines: int = 15) -> None:
        """The last lines of some processes' logs, on stderr (why a figure is missing)."""
        for name in names:
            path = self.logs / f"{name}.log"
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            note(f"--- last {len(text)} lines of {name}.log ---\n" + "\n".join(text))


def _grep(path: Path, words: tuple[str, ...]) -> list[str]:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return [line for line in text if any(w in line for w in words)]


SNAPSHOT_LOAD = re.compile(r"from snapshot at entry \d+ \((?P<cases>\d+) cases, "
                           r"(?P<seconds>[\d.]+)s\)")


async def wait_members(conn: KafkaConnection, group: str, members: int,
                       timeout_s: float = 300) -> None:
    """Until ``group`` is Stable with ``members`` members."""
    deadline = time.monotonic() + timeout_s
    last: tuple[str, int] = ("unknown", 0)
    while time.monotonic() < deadline:
        try:
            last = await group_members(conn, group)
        except (KafkaError, OSError) as err:  # the coordinator moves while the cluster settles
            last = (f"unreachable ({err})", 0)
        if last == ("Stable", members):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"group {group}: {last} after {timeout_s:.0f}s, wanted {members} members")


async def lag_of(conn: KafkaConnection, group: str) -> int | None:
    """A group's lag, counting a partition only when it is more than 1 behind; None while the
    group has committed nothing. (A transactional producer's commit marker takes the last offset
    of a partition: a consumer that has read everything stays 1 behind it, as
    ``kafka-consumer-groups`` shows.)"""
    snap = await read_lag(conn, groups=[group], timeout_s=20)
    parts = [p for p in snap.partitions if p.group == group]
    return sum(p.lag for p in parts if p.lag > 1) if parts else None


async def lagging(conn: KafkaConnection, group: str) -> str:
    """The partitions behind (as ``lag_of`` counts them): topic[partition] committed/end."""
    snap = await read_lag(conn, groups=[group], timeout_s=20)
    return ", ".join(f"{p.topic}[{p.partition}] {p.committed}/{p.end}"
                     for p in snap.partitions if p.group == group and p.lag > 1) or "none"


async def wait_lag_zero(conn: KafkaConnection, group: str, timeout_s: float = 300) -> float:
    """Epoch seconds when the group's lag (as ``lag_of``) was first seen at zero (every 0.5 s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await lag_of(conn, group) == 0:
            return time.time()
        await asyncio.sleep(0.5)
    raise TimeoutError(f"group {group}: lag not zero after {timeout_s:.0f}s")


# -- topics ---------------------------------------------------------------------------------------
SPECS = bench_specs()


async def make_topics(conn: KafkaConnection, *, keep_raw: bool) -> None:
    """(Re)create the hub's topics with RF 3 and min ISR 2; the non-raw ones start empty.

    Brokers learn of a deletion one after the other: until all three agree, one of them may
    still list a deleted topic (with no partitions), so creating is retried until every topic
    is there with its partitions.
    """
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs(), request_timeout_ms=30000)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics()
                  if t.startswith("netral.") and not (keep_raw and t in RAW_TOPICS)]
        if doomed:
            await admin.delete_topics(doomed)
        deadline = time.monotonic() + 120
        while True:
            try:
                await create_topics(conn, SPECS, partitions=4, replication=3, min_insync=2)
                agreed = 0
                while agreed < 3 and await _complete(conn):  # three answers in a row, 1 s apart
                    agreed += 1
                    await asyncio.sleep(1)
                if agreed == 3:
                    return
                last = "not every topic has its partitions yet"
            except (ConfigError, RetriableError) as err:  # a deleted topic still listed by a broker
                last = str(err)
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not recreated within 120s: {last}")
            await asyncio.sleep(1)
    finally:
        await admin.close()


async def _complete(conn: KafkaConnection) -> bool:
    """Every topic of SPECS described with all its partitions."""
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs(), request_timeout_ms=30000)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in SPECS])}
        return all(s.name in described and described[s.name]["error_code"] == 0
                   and len(described[s.name]["partitions"]) == s.partition_count(4)
                   for s in SPECS)
    finally:
        await admin.close()


async def changelog(conn: KafkaConnection, app_id: str) -> None:
    """Create the worker's journal changelog before it starts (1 partition, compacted, RF 3).

    Left to Faust, a new app id creates it at start-up, and on this loaded cluster a broker can
    still answer "unknown topic" for it long after: the worker then stalls on its journal.
    """
    name = f"{app_id}-cases-journal-changelog"
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs(), request_timeout_ms=30000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 3, topic_configs={
            "cleanup.policy": "compact", "min.insync.replicas": "2"})])
        agreed, deadline = 0, time.monotonic() + 120
        while agreed < 3:
            (t,) = await admin.describe_topics([name])
            agreed = agreed + 1 if t["error_code"] == 0 and t["partitions"] else 0
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not described by the brokers within 120s")
            await asyncio.sleep(1)
    finally:
        await admin.close()


# -- measurements ---
async def watch(conn: KafkaConnection, expected: int, timeout_s: float = 900) -> tuple[float, int]:
    """(broker time, epoch s, of the last netral.cases record, distinct case ids) once
    ``expected`` cases are there and nothing new came for 3 s, or 90% of them and nothing new
    for 20 s (the stream may merge a little differently from the in-process rules, which read
    in another order: the count is reported)."""
    deadline = time.monotonic() + timeout_s
    while True:  # a just recreated topic: the broker asked may not know it yet
        consumer = AIOKafkaConsumer(CASES, **conn.aiokafka_kwargs(),
                                    group_id=f"bench-watch-{uuid.uuid4().hex[:6]}",
                                    auto_offset_reset="earliest",
                                    isolation_level="read_committed")
        try:
            await consumer.start()
            break
        except UnknownTopicOrPartitionError:
            await consumer.stop()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
    ids: set[bytes] = set()
    last_ts, quiet_since = 0.0, time.monotonic()
    try:
        while time.monotonic() < deadline:
            for recs in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for rec in recs:
                    ids.add(rec.key)
                    last_ts, quiet_since = rec.timestamp / 1000, time.monotonic()
            quiet = time.monotonic() - quiet_since
            if ids and len(ids) >= 0.9 * expected and quiet > (3 if len(ids) >= expected else 20):
                return last_ts, len(ids)
        raise TimeoutError(f"netral.cases: {len(ids)}/{expected} cases within {timeout_s:.0f}s")
    finally:
        await consumer.stop()


async def sql_count_times(url: str, stop: asyncio.Event) -> list[tuple[float, int]]:
    """(epoch s, rows in ``cases``) every 0.25 s until ``stop``."""
    engine = sa.create_engine(url)
    seen: list[tuple[float, int]] = []
    try:
        while not stop.is_set():
            try:
                with engine.connect() as c:
                    n = c.execute(sa.text("SELECT count(*) FROM cases")).scalar_one()
                seen.append((time.time(), int(n)))
            except sa.exc.OperationalError:  # not migrated yet / locked for a moment
                pass
            await asyncio.sleep(0.25)
        return seen
    finally:
        engine.dispose()


async def run1(conn: KafkaConnection, url: str, expected: int) -> tuple[float, float, int]:
    """(epoch s of the last CaseRecord, epoch s SQL held every case, cases)."""
    stop = asyncio.Event()
    poller = asyncio.create_task(sql_count_times(url, stop))
    last, _ = await watch(conn, expected)
    n = len(await read_cases(conn))
    while True:
        stop.set()
        seen = await poller
        done = [t for t, c in seen if c >= n]
        if done:
            return last, done[0], n
        stop = asyncio.Event()
        poller = asyncio.create_task(sql_count_times(url, stop))
        await asyncio.sleep(1)


async def read_cases(conn: KafkaConnection) -> dict[str, CaseRecord]:
    """Every case on netral.cases (latest version), read up to the current end offsets."""
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), isolation_level="read_committed",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        spec = next(s for s in SPECS if s.name == CASES)
        parts = [TopicPartition(CASES, p) for p in range(spec.partition_count(4))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            for recs in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                records += recs
        return latest_cases(records)
    finally:
        await consumer.stop()


@dataclass
class Seen:
    """Latencies (s) of the sampled cases seen, and the last answer of each one never seen."""

    latencies: list[float] = field(default_factory=list)
    unseen: dict[str, int] = field(default_factory=dict)  # case id -> last HTTP status

    @property
    def sampled(self) -> int:
        return len(self.latencies) + len(self.unseen)


async def latency(conn: KafkaConnection, wave: Wave, rate: float, api: str, key: str) -> Seen:
    """Produce ``wave`` at ``rate``/s; latencies of the sampled case openers via the API, each
    polled from its produce until 200 or for ``CASE_WAIT_S``.

    A sampled opener is a report whose case has no other report within 2 s of production after
    it: the stream reads five topics, and a duplicate close behind could overtake it and open
    the case under its own id.
    """
    index = {ev.event_id: i for i, (_, _, _, ev) in enumerate(wave.events)}
    openers: dict[int, str] = {}
    eligible = 0
    for i, (_, _, _, ev) in enumerate(wave.events):
        cid = case_id_for(ev.event_id)
        if cid in wave.sources and all(index.get(e, i) == i or index.get(e, i) - i > 2 * rate
                                       for e in wave.sources[cid]):
            eligible += 1
            if eligible % SAMPLE_EVERY == 0:
                openers[i] = cid
    pending: dict[str, float] = {}  # case id -> epoch s of its produce
    seen = Seen()
    last: dict[str, int] = {}
    producing = True

    async def poll() -> None:
        async with httpx.AsyncClient(base_url=api, headers={"X-API-Key": key},
                                     timeout=10) as client:
            while producing or pending:
                for cid, at in list(pending.items()):
                    try:
                        r = await client.get(f"/v1/cases/{cid}")
                    except httpx.TimeoutException:
                        last[cid] = 0  # no answer within 10 s
                    else:
                        if r.status_code in (401, 403):
                            raise RuntimeError(f"the API refused the bench's key: {r.text}")
                        last[cid] = r.status_code
                        if r.status_code == 200:
                            seen.latencies.append(time.time() - at)
                            del pending[cid]
                            continue
                    if time.time() - at > CASE_WAIT_S:
                        seen.unseen[cid] = last[cid]
                        del pending[cid]
                await asyncio.sleep(POLL_S)

    poller = asyncio.create_task(poll())
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all", enable_idempotence=True,
                                linger_ms=1)
    await producer.start()
    try:
        t0 = time.monotonic()
        for i, (topic, k, value, _) in enumerate(wave.events):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            at = time.time()
            await producer.send(topic, value=value, key=k)
            if i in openers:
                pending[openers[i]] = at
        await producer.flush()
    finally:
        await producer.stop()
        producing = False
    await poller
    return seen


def spread(values: list[float], unit: str = "s") -> str:
    """``p50 X, p99 Y`` over what was measured, or a sentence saying nothing was."""
    if not values:
        return "none measured"
    return f"p50 {pct(values, 50):.2f} {unit}, p99 {pct(values, 99):.2f} {unit}"


def pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def pyspy_top(path: Path, n: int = 5) -> list[tuple[str, float]]:
    """Leaf functions (own time) of a py-spy ``--format raw`` profile, as shares of all samples.

    py-spy names a frame ``func (file:line)``; the line is dropped so a function's lines add up.
    """
    own: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            own[re.sub(r":\d+\)$", ")", stack.split(";")[-1])] += int(count)
    total = sum(own.values()) or 1
    return [(frame, c / total) for frame, c in own.most_common(n)]


# -- the run --------------------------------------------------------------------------------------
def note(text: str) -> None:
    print(f"{datetime.now():%H:%M:%S} bench.e2e: {text}", file=sys.stderr, flush=True)


def run(cases: int = 600, rate: float | None = None) -> Results:
    res = Results()
    with tempfile.TemporaryDirectory(prefix="netral-bench-e2e-") as tmp:
        home = Path(tmp)
        cluster = LocalCluster(home / "cluster", size=3, heap_mb=384,
                               dist_dir=REPO / ".netral" / "dist")
        bootstrap, _ = cluster.start(timeout_s=240)
        conn = KafkaConnection(bootstrap=bootstrap, client_id="netral-bench-e2e")
        db = f"sqlite:///{home / 'netral.db'}"
        siasn_port, api_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
        env.update(NETRAL_KAFKA_BOOTSTRAP=bootstrap, NETRAL_HOME=str(home),
                   NETRAL_DEADLINE_SCAN_INTERVAL_S="0", NETRAL_DATABASE_URL=db,
                   NETRAL_SIASN_URL=f"http://127.0.0.1:{siasn_port}",
                   NETRAL_API_PORT=str(api_port), NETRAL_LOG_LEVEL="WARNING")
        hub = Hub(env, home)
        try:
            _run(res, conn, hub, home, db, cases, rate, siasn_port, api_port)
        finally:
            hub.stop_all()
            cluster.stop()
    return res


def _run(res: Results, conn: KafkaConnection, hub: Hub, home: Path, db: str, cases: int,
         rate: float | None, siasn_port: int, api_port: int) -> None:
    asyncio.run(make_topics(conn, keep_raw=False))
    wave = make_wave(cases, seed=5)
    total, made = len(wave.events), len(wave.case_ids)
    for topic, records in wave.by_topic().items():
        asyncio.run(produce_all(conn, topic, records))
    floor, _ = asyncio.run(plain_loop(conn, total, rules=False))
    note(f"floor done: {total} events in {floor:.1f}s")
    res.rows.append(Row("floor: plain aiokafka consume-decode-dedupe-produce (5 raw topics, "
                        "same cluster)", total, floor))

    # scaling: 3 and 2 workers, fresh group and empty non-raw topics each time
    scaling: dict[int, Row] = {}
    for n in (3, 2):
        asyncio.run(make_topics(conn, keep_raw=True))
        app = f"bench-e2e-x{n}-{uuid.uuid4().hex[:4]}"
        asyncio.run(changelog(conn, app))
        for i in range(n):
            hub.worker(f"w{n}-{i}", app)
        asyncio.run(wait_members(conn, app, n))
        ready = time.time()
        last, got = asyncio.run(watch(conn, made))
        scaling[n] = Row(f"scaling: {n} workers, one group (normalize + cases, to netral.cases)",
                         total, last - ready, f"{got} cases")
        note(f"{scaling[n].name}: {scaling[n].seconds:.1f}s, {got} cases")
        for i in range(n):
            hub.stop(f"w{n}-{i}")

    # run 1: one worker + the SQL sink, the rest of the hub up for what follows
    asyncio.run(make_topics(conn, keep_raw=True))
    hub.start("mock-siasn", "mock-siasn", "--port", str(siasn_port))
    hub.start("sql-sink", "sql-sink", "--migrate")
    hub.start("siasn-adapter", "siasn-adapter")
    settings = NetralSettings(home=home)  # the API reads its keys when it starts
    key = add_monitor_key(settings.resolved_monitor_keys_file(), Role.NATIONAL, label="bench")
    hub.start("api", "api")
    api = f"http://127.0.0.1:{api_port}"
    asyncio.run(wait_members(conn, "netral-sql-sink", 1))
    app = f"bench-e2e-{uuid.uuid4().hex[:4]}"
    asyncio.run(changelog(conn, app))
    spawned = time.time()
    worker = hub.worker("worker", app)
    asyncio.run(wait_members(conn, app, 1))
    ready = time.time()
    rss0 = rss_mb(worker.pid)
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(worker.pid),
         "--duration", str(PYSPY_S), "--rate", "100", "--nonblocking", "--format", "raw",
         "--output", str(home / "pyspy.txt")], stdout=subprocess.DEVNULL,
        stderr=(home / "pyspy.log").open("wb"))
    try:
        last, in_sql, n_cases = asyncio.run(run1(conn, db, made))
        rss1 = rss_mb(worker.pid)
        spy.wait(timeout=PYSPY_S + 60)
    finally:
        stop_process(spy, timeout_s=10)  # ends on its own after PYSPY_S; not on a failure path
    if (home / "pyspy.txt").exists():
        res.profile = pyspy_top(home / "pyspy.txt")
    else:
        res.profile = [("py-spy failed: " + (home / "pyspy.log").read_text()[-300:], 0.0)]
    e2e = Row("hub end to end: netral worker + netral sql-sink (raw -> rows in SQL)", total,
              in_sql - ready, f"{n_cases} cases; worker ready in {ready - spawned:.1f}s; "
              f"py-spy sampling {PYSPY_S}s (non-blocking)")
    res.rows.append(e2e)
    note(f"run 1: {e2e.seconds:.1f}s to SQL, {last - ready:.1f}s to netral.cases")
    scaling[1] = Row("scaling: 1 worker (run 1, to netral.cases)", total, last - ready)
    res.rows += [scaling[1], scaling[2], scaling[3]]
    per_case_kb = (rss1 - rss0) * 1024 / max(n_cases, 1)
    res.add(
        ("worker start to ready (spawn to group Stable)", f"{ready - spawned:.1f} s", "run 1"),
        ("worker RSS right after ready / after the wave", f"{rss0:.0f} MiB / {rss1:.0f} MiB",
         "/proc/<pid>/status VmRSS"),
        ("RSS per case while streaming run 1", f"{per_case_kb:.1f} KiB",
         f"({rss1:.0f}-{rss0:.0f}) MiB / {n_cases}: buffers and the memo of the last 4,096 "
         "events decoded included, so an upper bound at this size; the restored worker's row "
         "below is the book's own"),
        ("RSS for 1M cases from run 1 (EXTRAPOLATION, linear)",
         f"{(rss0 + per_case_kb * 1_000_000 / 1024) / 1024:.1f} GiB",
         "start RSS + per-case x 1,000,000"))

    # latency at a fixed rate, then deadline -> SIASN
    wave2 = make_wave(max(cases // 2, 50), seed=21)
    if rate is None:
        rate = LATENCY_SHARE * e2e.rate
        why = (f"{LATENCY_SHARE:.0%} of run 1's {e2e.rate:.0f} events/s end to end: a load the "
               "pipeline sustains")
    else:
        why = f"given on the command line; run 1 sustained {e2e.rate:.0f} events/s"
    seen = asyncio.run(latency(conn, wave2, rate, api, key))
    answers = Counter(seen.unseen.values())
    res.add((f"produce -> case visible on GET /v1/cases/{{id}} at {rate:.0f} events/s ({why}; "
             f"{len(wave2.events)} events)",
             spread(seen.latencies) if seen.latencies
             else f"none of {seen.sampled} seen within {CASE_WAIT_S:.0f} s",
             f"{len(seen.latencies)} of {seen.sampled} sampled case openers (every "
             f"{SAMPLE_EVERY}th) seen, polled every {POLL_S} s for up to {CASE_WAIT_S:.0f} s "
             f"each; {len(seen.unseen)} not seen"
             + (" (last answers: " + ", ".join(f"{c or 'timeout'} x{n}"
                                              for c, n in answers.most_common()) + ")"
                if answers else "")))
    if seen.unseen:
        hub.tail("api", "sql-sink", "worker")
    asyncio.run(watch(conn, n_cases + len(wave2.case_ids)))
    now = asyncio.run(read_cases(conn))

    # recovery: SIGKILL mid-stream, restart at once
    wave3 = make_wave(max(cases // 2, 50), seed=33)
    before = len(now)
    for topic, records in wave3.by_topic().items():
        asyncio.run(produce_all(conn, topic, records))
    produced = time.monotonic()
    # Killed a fixed moment after the wave is in (counting its cases out takes seconds, in
    # which the worker could finish the whole wave: the kill would come after it).
    time.sleep(KILL_AFTER_S)
    killed, killed_mono = time.time(), time.monotonic()
    hub.stop("worker", signal.SIGKILL)
    hub.worker("worker", app)
    # Read after the kill: the restarted worker commits nothing for seconds yet.
    behind = asyncio.run(lag_of(conn, app))
    out_at_kill = len(asyncio.run(read_cases(conn))) - before  # an upper bound: read after
    try:
        out_last, out_n = asyncio.run(watch(conn, before + len(wave3.case_ids), timeout_s=240))
        res.add(("recovery: SIGKILL mid-stream + immediate restart -> every case of the wave out",
                 f"{out_last - killed:.1f} s" if out_last > killed
                 else "every case was out before the kill",
                 f"{out_n - before} of {len(wave3.case_ids)} cases of a {len(wave3.events)}-event "
                 f"wave on netral.cases; killed {killed_mono - produced:.1f} s after it was "
                 f"produced, at most {out_at_kill} out then"))
    except TimeoutError as err:
        res.add(("recovery: SIGKILL mid-stream + immediate restart -> every case of the wave out",
                 "not within 240 s", str(err)))
    try:
        zero = asyncio.run(wait_lag_zero(conn, app, timeout_s=LAG_WAIT_S))
        res.add(("recovery: SIGKILL -> the group's lag back to 0", f"{zero - killed:.1f} s",
                 f"hub.lag.read_lag every 0.5 s; lag at the kill: {behind}"))
    except TimeoutError:
        res.add(("recovery: SIGKILL -> the group's lag back to 0",
                 f"not within {LAG_WAIT_S:.0f} s after the wave was out",
                 f"lag at the kill {behind}, still {asyncio.run(lag_of(conn, app))} on "
                 f"{asyncio.run(lagging(conn, app))}"))
        hub.grep("worker", ("stuck at", "handed to no stream", "not fetched for",
                            "no stream taken", "ERROR", "Traceback"))

    res.sizes = (f"wave W: {cases} simulated cases = {total} raw events ({made} cases by the "
                 f"rules); latency wave: {len(wave2.events)} events at {rate:.0f}/s; recovery "
                 f"wave: {len(wave3.events)} events; 3 brokers (384 MiB heap each), RF 3, "
                 f"min ISR 2, 4 partitions")

    # deadline -> SIASN, before the restore's probe: a report of today would move the cases
    # stage's clock past the walked calendar (see walk_deadlines)
    deadlines(res, conn, siasn_port, app)

    # restore: stop, one new report, restart until it is a case
    n_all = len(asyncio.run(read_cases(conn)))
    hub.stop("worker")
    (probe,) = sample_reports(1, seed=99)
    codec = AvroCodec()
    asyncio.run(produce_all(conn, raw_topic("bawaslu"), [(
        probe.source_id.encode(), codec.encode_record(probe))]))
    spawned = time.time()
    # INFO: the cases stage logs how it restored (snapshot load and journal tail, timed)
    restarted = hub.worker("worker", app, NETRAL_LOG_LEVEL="INFO")
    try:
        asyncio.run(wait_members(conn, app, 1))
        ready = time.time()
        visible = asyncio.run(watch_cases(conn, 0, timeout_s=300, probe=probe.event_id()))
    except (RuntimeError, TimeoutError) as err:
        res.add(("restore: restart until a new report is a case", "not within 300 s", str(err)))
        return
    restore, after_ready = visible - spawned, visible - ready
    how = restore_line(hub.logs / "worker.log")
    # Start-up (spawn to a member of the group) does not grow with the cases: only what
    # follows it (reading the snapshot and journal tail, then the probe) is extrapolated.
    res.add(
        (f"restore: restart until a new report is a case ({n_all} cases in the journal)",
         f"{restore:.1f} s", f"start-up {ready - spawned:.1f} s, then {after_ready:.1f} s "
         f"= {after_ready / n_all * 1000:.2f} s per 1,000 cases; the cases stage: {how}"),
        ("restore of 1M cases (EXTRAPOLATION, linear, after start-up: an upper bound)",
         f"{after_ready / n_all * 1_000_000 / 60:.0f} min",
         "per-1,000 figure after start-up x 1,000; at this size it is mostly what does not "
         "grow with the book (the changelogs' recovery, the probe's trip through both "
         "stages), so it overstates; the snapshot load's own rate is the next row and "
         "bench.restore's"))
    loaded = SNAPSHOT_LOAD.search(how)
    if loaded:
        n, secs = int(loaded["cases"]), float(loaded["seconds"])
        res.add(("snapshot load of 1M cases (EXTRAPOLATION, linear)",
                 f"{secs / max(n, 1) * 1_000_000 / 60:.1f} min",
                 f"the cases stage's own timing: {n} cases in {secs:.1f} s"))
    # The restarted worker holds its restored tables and nothing of the waves' traffic (its
    # decoded-events memo starts empty): what the state costs per case.
    held = rss_mb(restarted.pid)
    per_case = (held - rss0) * 1024 / max(n_all, 1)
    res.add(
        ("RSS of the restarted worker (its restored tables: the book, journal, snapshot and "
         "early-warning states)", f"{held:.0f} MiB",
         f"{n_all} cases: {per_case:.1f} KiB per case over run 1's {rss0:.0f} MiB at ready"),
        ("RSS for 1M restored cases (EXTRAPOLATION, linear: an upper bound)",
         f"{(rss0 + per_case * 1_000_000 / 1024) / 1024:.1f} GiB",
         "start RSS + per-case x 1,000,000; the per-case figure at this size includes what "
         "does not grow with the book (allocator arenas, the tables' first chunks): the "
         "book's own memory per case is bench.restore's (tracemalloc)"))


@dataclass
class Walk:
    """What the deadline walk saw: seconds from a tick's ack to each BLOCK effect, and counts."""

    waits: list[float] = field(default_factory=list)
    ticks: int = 0
    block_days: int = 0
    blocks_due: int = 0
    not_seen: int = 0  # BLOCKs due whose effect did not come within DAY_WAIT_S
    stalled_days: int = 0  # ticks that moved none of their due cases within DAY_WAIT_S
    unmoved: int = 0  # cases predicted due that the tick did not move on
    unmoved_blocks: int = 0  # of which due for a BLOCK (not blocked after their tick)
    first: date | None = None
    last: date | None = None
    clock: date | None = None  # the day of the cases stage's clock when the walk began
    stopped: str = "no step left to fall due"


class CaseView:
    """netral.cases as it is now: a consumer from the beginning that keeps each case's latest
    version (read_committed), for the walk to see the worker's answer to each tick."""

    def __init__(self, conn: KafkaConnection) -> None:
        self.consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), enable_auto_commit=False,
                                         isolation_level="read_committed", group_id=None)
        self.cases: dict[str, CaseRecord] = {}
        self.changed_at = time.monotonic()  # when a record last came
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        spec = next(s for s in SPECS if s.name == CASES)
        parts = [TopicPartition(CASES, p) for p in range(spec.partition_count(4))]
        self.consumer.assign(parts)
        await self.consumer.seek_to_beginning(*parts)
        ends = await self.consumer.end_offsets(parts)
        while [tp for tp in parts if await self.consumer.position(tp) < ends[tp]]:
            await self._take(500)
        self._task = asyncio.create_task(self._follow())

    async def _take(self, timeout_ms: int) -> None:
        for recs in (await self.consumer.getmany(timeout_ms=timeout_ms,
                                                 max_records=10_000)).values():
            self.changed_at = time.monotonic()
            for rec in recs:  # in offset order: a tombstone (a case merged away) removes it
                cid = rec.key.decode() if rec.key else ""
                if rec.value is None:
                    self.cases.pop(cid, None)
                    continue
                for case in latest_cases([rec]).values():
                    if cid not in self.cases or case.version >= self.cases[cid].version:
                        self.cases[cid] = case

    async def _follow(self) -> None:
        while True:
            await self._take(100)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


def escalating(cases: dict[str, CaseRecord]) -> list[CaseRecord]:
    """Cases with an escalation step still to fall due (a BLOCK needs a NIP to be taken)."""
    return [c for c in cases.values()
            if c.next_deadline is not None and due_step(c, date.max) is not None
            and not (NEXT_STEP[c.state] is EscalationStep.BLOCK and c.person.nip is None)]


async def block_effects(client: httpx.AsyncClient) -> dict[str, float]:
    """Epoch s of each NIP's first BLOCK effect at the mock SIASN."""
    at: dict[str, float] = {}
    for e in (await client.get("/_test/effects")).json()["effects"]:
        if e["action"] == "BLOCK":
            at.setdefault(e["nip"], datetime.fromisoformat(e["at"]).timestamp())
    return at


async def committed(admin: AIOKafkaAdminClient, group: str, tp: TopicPartition) -> int:
    """The group's committed offset on ``tp`` (-1 when none)."""
    offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    meta = offsets.get(tp)
    return meta.offset if meta is not None else -1


async def walk_deadlines(conn: KafkaConnection, siasn: str, group: str) -> Walk:
    """Tick day by day through the days on which a step falls due; time each BLOCK.

    A tick is done once the worker's group has committed past it (its outputs are acked by
    then) and netral.cases has been quiet for ``QUIET_S``; the BLOCKs it caused (cases due for
    a BLOCK that are now blocked) are then waited for at the mock, at most ``DAY_WAIT_S``.
    """
    walk, codec = Walk(), AvroCodec()
    view = CaseView(conn)
    await view.start()
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs(), request_timeout_ms=30000)
    await admin.start()
    ticks_tp = TopicPartition(DEADLINE_TICKS, 0)
    began, idle = time.monotonic(), 0
    # The stage's clock (its latest input time) is at least every case's updated_at. A tick
    # before it runs at the clock's instant, not its own, and two steps of one case at one
    # instant fold in the wrong order (module docstring): the walk starts the day after.
    clock = max((c.updated_at for c in view.cases.values()), default=None)
    walk.clock = jakarta_date(clock) if clock else None
    try:
        async with httpx.AsyncClient(base_url=siasn, timeout=10) as client:
            day: date | None = walk.clock
            while todo := escalating(view.cases):
                if time.monotonic() - began > WALK_BUDGET_S:
                    walk.stopped = f"budget of {WALK_BUDGET_S:.0f} s spent"
                    break
                if idle >= IDLE_TICKS:
                    walk.stopped = (f"{IDLE_TICKS} ticks in a row moved no case on, "
                                    f"{len(todo)} cases still due")
                    break
                nxt = min(c.next_deadline for c in todo if c.next_deadline)
                day = nxt if day is None else max(day + timedelta(days=1), nxt)
                due = {c.case_id: c.version for c in todo if due_step(c, day) is not None}
                blocked = await block_effects(client)
                to_block = {c.case_id: c.person.nip for c in todo
                            if c.case_id in due and c.person.nip
                            and NEXT_STEP[c.state] is EscalationStep.BLOCK
                            and c.person.nip not in blocked}
                ticks = ticks_for(datetime.combine(day, SCAN_TIME), day, "bench")
                offset = (await view.consumer.end_offsets([ticks_tp]))[ticks_tp]
                await send_ticks(conn, codec, ticks)
                sent = time.time()
                walk.ticks += len(ticks)
                walk.first, walk.last = walk.first or day, day
                deadline = time.monotonic() + DAY_WAIT_S
                while await committed(admin, group, ticks_tp) <= offset:
                    if time.monotonic() > deadline:
                        walk.stalled_days += 1
                        break
                    await asyncio.sleep(0.2)
                while time.monotonic() - view.changed_at < QUIET_S and \
                        time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                moved = {cid for cid, v in due.items()
                         if cid not in view.cases or view.cases[cid].version > v}
                walk.unmoved += len(due) - len(moved)
                idle = 0 if moved else idle + 1
                nips = {nip for cid, nip in to_block.items()
                        if cid in view.cases and view.cases[cid].blocked}
                walk.blocks_due += len(nips)
                walk.block_days += bool(nips)
                walk.unmoved_blocks += len(set(to_block.values()) - nips)
                while nips - set(blocked) and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    blocked = await block_effects(client)
                walk.waits += [blocked[n] - sent for n in nips if n in blocked]
                walk.not_seen += len(nips - set(blocked))
                if walk.ticks % 10 == 0 or nips:
                    note(f"deadline walk: tick {walk.ticks} ({day}): {len(moved)}/{len(due)} "
                         f"cases moved on, {len(nips & set(blocked))}/{len(nips)} BLOCKs "
                         f"({len(to_block)} predicted), {time.time() - sent:.1f} s")
    finally:
        await admin.close()
        await view.stop()
    return walk


def deadlines(res: Results, conn: KafkaConnection, siasn_port: int, group: str) -> None:
    """The deadline walk's figure: passed deadline (tick) -> BLOCK effective at SIASN."""
    walk = asyncio.run(walk_deadlines(conn, f"http://127.0.0.1:{siasn_port}", group))
    span = f"{walk.first} .. {walk.last}" if walk.first else "no day"
    res.add(("passed deadline (tick acked) -> BLOCK effective at the mock SIASN",
             spread(walk.waits) if walk.waits else
             f"none measured ({walk.blocks_due} blocked by their tick, {walk.not_seen} not "
             "seen at SIASN)",
             f"{len(walk.waits)} of the {walk.blocks_due} NIPs their tick blocked seen at SIASN "
             f"within {DAY_WAIT_S:.0f} s ({walk.not_seen} not); {walk.ticks} ticks one at a "
             f"time ({span}, from the day after the stage's clock, {walk.clock}), "
             f"{walk.block_days} with a BLOCK; {walk.unmoved} steps predicted "
             f"due (next_deadline on netral.cases) that their tick did not take, "
             f"{walk.unmoved_blocks} of them BLOCKs; {walk.stalled_days} ticks not committed "
             f"within {DAY_WAIT_S:.0f} s; stopped: {walk.stopped}"))


def table(res: Results) -> str:
    lines = [f"Sizes: {res.sizes}.", "", harness_table(res.rows), "",
             "| figure | value | how |", "|---|---|---|"]
    lines += [f"| {what} | {value} | {how} |" for what, value, how in res.figures]
    lines += ["", f"py-spy on the worker during run 1 ({PYSPY_S} s, top 5 frames by own time):",
              "", "| frame | share of samples |", "|---|---|"]
    lines += [f"| `{frame}` | {share:.1%} |" for frame, share in res.profile]
    return "\n".join(lines)


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    rate_arg = float(sys.argv[2]) if len(sys.argv) > 2 else None  # default: from run 1
    print(table(run(size, rate_arg)))
