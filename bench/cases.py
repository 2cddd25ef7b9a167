"""The whole stream side (normalize + cases) against plain aiokafka loops, same broker and data.

One simulated Pilkada wave (20% cross-agency duplicates, 10% name-only reports), produced to the
five raw topics before anything reads them. Pipelines, each reading every raw record once:
- floor: a plain aiokafka loop: getmany, decode (cached schemas), dedupe by key in a set,
  re-encode, send, commit per batch (the issue's "consume-decode-dedupe-produce" baseline);
- rules: the same loop running the hub's real rules in-process (normalize, then the cases stage:
  dedupe, matching, merge, lifecycle) and producing what the worker produces per batch (every
  transition, order and alert; of each case its last version in the batch);
- faust: the real ``netral worker`` (normalize and cases agents, the cases journal, one partition
  for the case stage), from ready until the last CaseRecord of the wave is on netral.cases.
Then: the worker restarted on the same state until a new report becomes a case: the restore
time for the wave's cases. With the default NETRAL_CASES_SNAPSHOT_EVERY the first run has
snapshotted its book and dropped the journal entries below it, so the restart loads the newest
snapshot and replays only the journal after it. A restart cannot be made to replay in full once
the journal is truncated (the setting changes what is written, not how it restores), so the
full replay and the snapshot are compared in-process too, on the rules loop's own stage and a
journal of its batches (the worker's journal holds the same inputs, batched differently).
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from connectors.samples import sample_reports
from connectors.simulator import SimConfig, simulate
from hub.commands.up import stop_process
from hub.commands.worker import tune_gc
from hub.kafka_admin import wait_group_stable
from hub.settings import NetralSettings
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import CanonicalEvent
from schemas.topics import CASES, EVENTS, Agency, raw_topic
from streams.heap import restoring
from streams.rules.calendar import default_calendar
from streams.rules.cases import Outputs, batch_outputs
from streams.rules.normalize import normalize_record
from streams.rules.policy import load_policies
from streams.rules.snapshot import Manifest, dump, load
from streams.rules.stage import CaseStage, InputKind, pack

from .harness import OUT, REPO, Row, baseline_clients, bench_broker, make_topics, produce_all
from .harness import table as harness_table

RAW_TOPICS = [raw_topic(a) for a in Agency]


def prepare(cases: int) -> dict[str, list[tuple[bytes, bytes]]]:
    codec = AvroCodec()
    sim = simulate(SimConfig(cases=cases, duplicate_rate=0.2, name_only_rate=0.1, seed=5))
    data: dict[str, list[tuple[bytes, bytes]]] = {t: [] for t in RAW_TOPICS}
    for ev in sim.events:
        assert ev.record is not None
        topic = raw_topic(ev.agency)
        data[topic].append((ev.record.source_id.encode(),
                            codec.encode_record(ev.record, topic=topic)))
    return data


def canonical(codec: AvroCodec, topic: str, key: bytes | None, value: bytes) -> bytes:
    """A raw record through the normalize rule, encoded as the cases stage reads it."""
    _, event = normalize_record(topic, key, codec.decode(value))
    return codec.encode(CanonicalEvent.avro_name, event, topic=EVENTS)


def _encoded(codec: AvroCodec, out: Outputs) -> list[tuple[bytes, bytes]]:
    records = [*out.cases, *out.transitions, *out.orders, *out.alerts]
    return [(b"out", codec.encode_record(r)) for r in records]


async def plain_loop(conn: KafkaConnection, total: int, *, rules: bool,
                     journal: list[bytes] | None = None) -> tuple[float, CaseStage]:
    """Seconds to consume every raw record, transform and produce; and the stage (its cases);
    with ``journal``, each batch's inputs are appended to it as the worker journals them."""
    codec = AvroCodec()
    stage = CaseStage(codec, default_calendar(), load_policies())
    consumer, producer = baseline_clients(conn, *RAW_TOPICS,
                                          group=f"bench-plain-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    await producer.start()
    seen: set[bytes] = set()
    done = 0
    start = time.perf_counter()
    try:
        while done < total:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            futures = []
            parts: list[Outputs] = []
            taken: list[tuple[InputKind, bytes]] = []
            for recs in batch.values():
                for rec in recs:
                    done += 1
                    if rules:
                        value = canonical(codec, rec.topic, rec.key, rec.value)
                        parts.append(stage.take(InputKind.EVENT, value))
                        taken.append((InputKind.EVENT, value))
                        continue
                    if rec.key in seen:
                        continue
                    seen.add(rec.key)
                    decoded = codec.decode(rec.value)
                    futures.append(await producer.send(
                        OUT, value=codec.encode(decoded.schema, decoded.value), key=rec.key))
            for key, value in _encoded(codec, batch_outputs(parts)):  # as the worker does
                futures.append(await producer.send(OUT, value=value, key=key))
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
            if journal is not None and taken:
                journal.append(pack(taken))
        return time.perf_counter() - start, stage
    finally:
        await producer.stop()
        await consumer.stop()


async def watch_cases(conn: KafkaConnection, expected: int, timeout_s: float,
                      probe: str | None = None) -> float:
    """Wall-clock time (epoch s) of the last netral.cases record once ``expected`` distinct case
    ids are there and nothing new came for 3 s; with ``probe``: when a case holding that event
    id appears."""
    codec = AvroCodec()
    consumer = AIOKafkaConsumer(CASES, **conn.aiokafka_kwargs(),
                                group_id=f"bench-watch-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest", isolation_level="read_committed")
    await consumer.start()
    ids: set[bytes] = set()
    last_ts, quiet_since = 0.0, time.monotonic()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for recs in batch.values():
                for rec in recs:
                    ids.add(rec.key)
                    last_ts, quiet_since = rec.timestamp / 1000, time.monotonic()
                    if probe and rec.value and probe in {
                            s["event_id"] for s in codec.decode(rec.value).value["sources"]}:
                        return time.time()
            if not probe and len(ids) >= expected and time.monotonic() - quiet_since > 3:
                return last_ts
        raise RuntimeError(f"netral.cases: {len(ids)}/{expected} cases within {timeout_s:.0f}s")
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Loads:
    """Loading one book's snapshot, plain and as the worker does it (:mod:`streams.heap`)."""

    snap: float  # seconds: a load of the snapshot (the dump not timed)
    size: int  # the snapshot's bytes
    frozen_load: float  # seconds: the same load with the collector paused, the book frozen
    gc_pass: float  # seconds: one full pass of the cyclic collector after the plain load
    gc_pass_frozen: float  # the same after the worker's load
    book_bytes: int  # what the loaded book holds (tracemalloc: allocated by the load, alive after)
    cases: int  # in the book


def _full_pass() -> float:
    start = time.perf_counter()
    gc.collect()
    return time.perf_counter() - start


def _traced_load(manifest: Manifest, chunks: list[bytes], codec: AvroCodec) -> int:
    """Bytes a loaded book holds: allocated by the load and alive after it (tracemalloc,
    a third load: RSS cannot tell, the loads before freed as much for it to reuse)."""
    tracemalloc.start()
    try:
        loaded = load(manifest, chunks, codec, default_calendar())
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del loaded
    return held


def snapshot_loads(stage: CaseStage) -> Loads:
    """``stage``'s snapshot loaded plainly, then with the collector paused and the book
    frozen, each followed by a full collector pass (timed: at a large book that pass is a
    stall of the worker's event loop)."""
    chunks, manifest = dump(stage)
    gc.collect()
    gc.freeze()  # ``stage`` itself out of both passes: each pass sees one loaded book
    try:
        start = time.perf_counter()
        loaded = load(manifest, chunks, stage.codec, default_calendar())
        snap = time.perf_counter() - start
        gc_pass = _full_pass()
        assert loaded.book == stage.book  # the same national record
        del loaded
        start = time.perf_counter()
        with restoring(True):
            frozen = load(manifest, chunks, stage.codec, default_calendar())
        frozen_load = time.perf_counter() - start
        gc_pass_frozen = _full_pass()
        assert frozen.book == stage.book
        del frozen
        book_bytes = _traced_load(manifest, chunks, stage.codec)
    finally:
        gc.unfreeze()  # all of it, what tune_gc froze at start-up too: later sections pay that
    return Loads(snap, manifest.size, frozen_load, gc_pass, gc_pass_frozen, book_bytes,
                 len(stage.book.cases))


def restore_in_process(stage: CaseStage, journal: list[bytes]) -> tuple[float, Loads]:
    """Seconds to rebuild ``stage`` by a full replay of ``journal``, and its snapshot's loads."""
    start = time.perf_counter()
    replayed = CaseStage(stage.codec, default_calendar(), load_policies())
    replayed.replay(journal)
    full = time.perf_counter() - start
    assert replayed.book == stage.book  # the same national record
    del replayed
    return full, snapshot_loads(stage)


class Worker:
    def __init__(self, conn: KafkaConnection, home: Path,
                 stages: str = "normalize,cases") -> None:
        self.conn, self.home, self.stages = conn, home, stages
        name = stages.replace(",", "-")
        self.app_id = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        self.log = home / f"worker-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, log_level: str = "WARNING") -> float:
        """Spawn; seconds until the consumer group is Stable with the worker in it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
        env.update(NETRAL_KAFKA_BOOTSTRAP=self.conn.bootstrap, NETRAL_HOME=str(self.home),
                   NETRAL_WORKER_APP_ID=self.app_id, NETRAL_LOG_LEVEL=log_level,
                   NETRAL_DEADLINE_SCAN_INTERVAL_S="0",
                   # What the in-process loop runs: early warning has a section of its own,
                   # and on 2 cores it would take its CPU from the stages measured here.
                   NETRAL_WORKER_STAGES=self.stages)
        spawned = time.perf_counter()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=env,
                                         cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        asyncio.run(wait_group_stable(self.conn, self.app_id, timeout_s=300))
        return time.perf_counter() - spawned

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout_s=120)  # SIGTERM, then SIGKILL: never an orphan


def run(cases: int = 3000) -> list[Row]:
    # The in-process loops collect garbage as the worker does (NETRAL_WORKER_GC_THRESHOLD),
    # or the rules row pays ~7% more for Python's default collector than the worker it is
    # compared with.
    tune_gc(NetralSettings().worker_gc_threshold)
    with tempfile.TemporaryDirectory(prefix="netral-bench-") as tmp:
        home = Path(tmp)
        with bench_broker(home) as conn:
            make_topics(conn)
            data = prepare(cases)
            total = sum(len(v) for v in data.values())
            for topic, records in data.items():
                asyncio.run(produce_all(conn, topic, records))
            # The floor takes about a second, so one run is mostly start-up noise (it moved
            # 4,140 -> 6,176 -> 9,980/s between runs): the median of three.
            floors = sorted(asyncio.run(plain_loop(conn, total, rules=False))[0]
                            for _ in range(3))
            floor = floors[1]
            journal: list[bytes] = []
            rules, stage = asyncio.run(plain_loop(conn, total, rules=True, journal=journal))
            made = len(stage.book.cases)
            full, loads = restore_in_process(stage, journal)
            worker = Worker(conn, home)
            try:
                ready = worker.start()
                ready_at = time.time()
                last = asyncio.run(watch_cases(conn, made, timeout_s=3600))
                worker.stop()
                (probe,) = sample_reports(1, seed=99)
                codec = AvroCodec()
                asyncio.run(produce_all(conn, raw_topic("bawaslu"), [(
                    probe.source_id.encode(), codec.encode_record(probe))]))
                spawned = time.time()
                restart_ready = worker.start(log_level="INFO")  # to log how it restored
                restored = asyncio.run(watch_cases(conn, made, timeout_s=3600,
                                                   probe=probe.event_id())) - spawned
            finally:
                worker.stop()
            how = restore_line(worker.log)
        split = split_run(home / "split", data, made)
    return [
        Row("floor: plain aiokafka consume-decode-dedupe-produce (5 raw topics)", total, floor,
            "median of 3: " + " / ".join(f"{total / f:,.0f}" for f in floors) + " /s"),
        Row("plain aiokafka loop + the hub's rules (normalize + cases, in-process)", total,
            rules, f"{made} cases"),
        Row("faust worker: normalize + cases agents, journal", total, last - ready_at,
            f"worker ready in {ready:.1f}s; {rules / (last - ready_at):.2f} of the in-process "
            "rules' rate"),
        *([Row("two workers, one per stage (normalize; cases), on a broker of their own",
               total, split, f"{rules / split:.2f} of the in-process rules' rate")]
          if split is not None else []),
        Row("restart: snapshot + journal tail recovered and applied, then one new report",
            total, restored, f"ready in {restart_ready:.1f}s; restores {made} cases: {how}"),
        Row("in-process restore: full replay of the journal (rules loop's batches)", total,
            full, f"{len(journal)} entries, {sum(map(len, journal)):,} bytes"),
        *load_rows(total, loads, f"; {full / loads.snap:.1f}x faster than the replay"),
    ]


def load_rows(records: int, loads: Loads, extra: str = "") -> list[Row]:
    """The plain snapshot load and the worker's, each with the full GC pass after it."""
    return [
        Row("in-process restore: load the snapshot of the same book", records, loads.snap,
            f"{loads.size:,} bytes{extra}; a full GC pass after it: "
            f"{loads.gc_pass * 1000:.0f} ms"),
        Row("in-process restore: the same load as the worker does it (GC paused, book frozen)",
            records, loads.frozen_load, f"a full GC pass after it: "
            f"{loads.gc_pass_frozen * 1000:.0f} ms (streams/heap.py); the loaded book holds "
            f"{loads.book_bytes / 1024 / max(loads.cases, 1):.1f} KiB per case (tracemalloc)"),
    ]


def split_run(home: Path, data: dict[str, list[tuple[bytes, bytes]]], made: int
              ) -> float | None:
    """Seconds from ready to the last case with each stage in a worker process of its own (the
    deployment ``NETRAL_WORKER_STAGES`` allows), on a fresh broker: the first one's topics
    already hold this wave's events and cases. None when the bench runs on a broker of the
    operator's (NETRAL_KAFKA_BOOTSTRAP), which it cannot make fresh."""
    if os.environ.get("NETRAL_KAFKA_BOOTSTRAP"):
        return None
    home.mkdir()
    with bench_broker(home) as conn:
        make_topics(conn)
        for topic, records in data.items():
            asyncio.run(produce_all(conn, topic, records))
        cases, norm = Worker(conn, home, "cases"), Worker(conn, home, "normalize")
        try:
            cases.start()  # waits for events: nothing is normalised yet
            norm.start()
            ready_at = time.time()
            last = asyncio.run(watch_cases(conn, made, timeout_s=3600))
        finally:
            norm.stop()
            cases.stop()
    return last - ready_at


def restore_line(log: Path) -> str:
    """What the restarted worker's cases stage says it did (snapshot or full replay)."""
    lines = [line for line in log.read_text(errors="replace").splitlines()
             if "national record restored from snapshot" in line
             or "national record rebuilt by full replay" in line]
    if not lines:
        return "no restore line in the worker log"
    text = lines[-1].split("cases: national record ", 1)[-1]
    return text.replace("|", "/")


def table(rows: list[Row]) -> str:
    return harness_table(rows)


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    print(table(run(size)))
