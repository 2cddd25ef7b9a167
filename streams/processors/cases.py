"""cases: the national record. Events, review commands, SIASN results and deadline ticks in;
CaseRecords, CaseTransitions, SiasnOrders, alerts and dead letters out.

Thin by design: the rules live in :mod:`streams.rules.cases`, the stage's state and journal in
:mod:`streams.rules.stage`. Per batch: take every input (a bad one goes to ``netral.dlq.cases``
with the reason and the stage is untouched), publish what they produced (of each case only its
last version in the batch: ``batch_outputs``) and wait for the acks,
then journal the batch's inputs (one entry) in the changelog-backed table ``cases-journal``
and wait for that ack too, before the inputs are acked (their offsets committable).
Outputs before journal: a crash in between re-takes the inputs, which re-emits the same ids
(the sinks and SIASN drop them), where the other order would have lost the outputs. After a
restart or a rebalance the book is rebuilt before the first batch: from the newest snapshot and
the journal entries after it (below), or from the whole journal.

The stage takes each input partition strictly in offset order from its own position, journaled
with the inputs that moved it (:mod:`streams.rules.positions`): a record below it was taken
before and is skipped, a record above it on a topic where every offset is a record means records
before it were never handed over, so the partition is read again from the position. The national
record thus never depends on the consumer's commits, which Faust moved past unread records in
thirteen ways (:mod:`streams.rebalance`); a worker whose journal is whole reads from where it
stands whatever the group committed.

Deadline scans are inputs too: the leader's timer publishes a DeadlineTick to
``netral.deadline-ticks`` (Faust tables can only change inside a stream, and a tick taken in
order with the events is journaled and replayed like them).

Snapshots (``cfg.cases_snapshot_every`` entries; 0 = never). Replaying every input ever costs
O(inputs) at each restart (~10 s per 1,000 cases measured), and the journal would keep the raw
inputs of purged cases for ever. So after every N journal entries, once at least as many inputs
as the book has cases came since the last one (a snapshot costs O(cases): this keeps its share
of the stream bounded, and the replay after it about as long as its load), the agent writes
the book (:mod:`streams.rules.snapshot`), in a task of its own while the batches go on (the
writer holds the immutable book of that entry), to the changelog-backed table ``cases-snapshot``:
chunks ``c<entries>:<i>``, awaited, then the manifest ``m<entries>`` (the entry count it covers,
each chunk's size and SHA-256), awaited; only then does it delete the older snapshots and the
journal entries below ``<entries>`` (tombstones, so compaction drops them, purged NIPs too).

Crash safety: a crash before the manifest is acknowledged leaves the old snapshot and the whole
journal since it (the half-written chunks have no manifest and are ignored, then deleted by the
next snapshot); a crash after it leaves the new snapshot plus journal entries it covers, which
the restore skips and deletes. Restore (:func:`register`'s ``stage()``): the newest manifest
whose chunks are all present and match, and whose following journal entries are all there, is
loaded; the entries after it are replayed. Any problem with a snapshot is a warning with the
reason and the next older one, else a full replay, is tried. A full replay needs the journal
from entry 0: when snapshots truncated it and none is usable, the worker stops with a
FatalError saying so (never a silently smaller national record); ``netral replay
--from-beginning`` then rebuilds the record from the raw topics.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka.errors import KafkaError

from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter as Letter
from schemas.errors import FatalError, InvalidMessage, UnusableSnapshot
from schemas.models import CanonicalEvent, DeadlineTick
from schemas.topics import (
    ALERTS,
    CASE_EVENTS,
    CASES,
    DEADLINE_TICKS,
    EVENTS,
    ORDERS_SIASN,
    TopicSpec,
)

from ..config import StreamsConfig
from ..heap import restoring
from ..metrics import StreamMetrics
from ..rules.calendar import default_calendar
from ..rules.cases import Outputs, batch_outputs
from ..rules.policy import load_policies
from ..rules.snapshot import Manifest, SnapshotWriter, load
from ..rules.stage import KIND_BY_TOPIC, CaseStage, InputKind, pack
from ..topics import HubTopics
from .dead_letters import reject
from .reading import InOrder

STAGE = "cases"
JOURNAL = "cases-journal"
JOURNAL_PARTITION = 0
SNAPSHOTS = "cases-snapshot"
WRITER_HEADER = "netral.writer"
log = logging.getLogger(__name__)


def journal_key(index: int) -> bytes:
    return b"%012d" % index


def manifest_key(entries: int) -> bytes:
    """The manifest of the snapshot covering journal entries 0 .. entries - 1."""
    return b"m%012d" % entries


def chunk_key(entries: int, i: int) -> bytes:
    return b"c%012d:%06d" % (entries, i)


def snapshot_entries(key: bytes) -> int:
    """The journal entry count a snapshot table key belongs to (manifest or chunk)."""
    return int(key[1:13])


def internal_topics(app_id: str) -> list[TopicSpec]:
    """The tables' changelogs, made before the worker starts with the hub's replication and
    min ISR: left to Faust the snapshot's is created on the first snapshot write, and a lagging
    broker's metadata then fails that write (as early warning's table changelog,
    :func:`.early_warning.internal_topics`); the journal's would get no min ISR."""
    return [TopicSpec(name=f"{app_id}-{table}-changelog", key=key, value=value,
                      cleanup="compact", retention_ms=None,
                      writer="cases (Faust table changelog)", partitions=1)
            for table, key, value in (
                (JOURNAL, "journal entry index", "the inputs of one batch"),
                (SNAPSHOTS, "chunk or manifest key", "cases snapshot chunk or manifest"))]


def register(app: faust.App, topics: HubTopics, codec: AvroCodec, cfg: StreamsConfig,
             metrics: StreamMetrics) -> None:
    journal = app.Table(JOURNAL, partitions=1, key_type=bytes, value_type=bytes,  # raw bytes
                        help="Every input the cases stage took, in order, with its clock.")
    snapshots = app.Table(SNAPSHOTS, partitions=1, key_type=bytes, value_type=bytes,
                          help="The cases stage's book as of a journal entry: chunks, manifest.")
    held: dict[str, CaseStage] = {}
    # Each input partition in offset order from the stage's own position (streams.rules.positions)
    order = InOrder(app, metrics, transactional=cfg.processing_guarantee == "exactly_once",
                    reseek_s=cfg.hole_check_s or 10.0)
    # (journal entries, inputs taken) of the snapshot the held stage last wrote or came from.
    last_snapshot: dict[str, tuple[int, int]] = {}
    snapshot_task: dict[str, asyncio.Task[None]] = {}  # the snapshot being written, if any
    # Which application wrote an output: the live worker, or a `netral replay` under its own id.
    writer = [(WRITER_HEADER, str(app.conf.id).encode())]

    def is_current(stage: CaseStage) -> bool:
        """Whether the tables are still where this stage left them (not after a rebalance):
        nobody wrote entry ``entries``, and the stage's last entry, or a snapshot at its
        point, is still there (another worker's newer snapshot deletes both)."""
        at = stage.entries
        if journal_key(at) in journal.data:
            return False
        if at == 0:
            return not len(journal.data) and not len(snapshots.data)
        return journal_key(at - 1) in journal.data or manifest_key(at) in snapshots.data

    def stage() -> CaseStage:
        """The stage for the tables as they are now (rebuilt after a restart or rebalance)."""
        current = held.get("stage")
        if current is not None and is_current(current):
            return current
        stop_snapshot()  # of a book that is not this one
        fresh = rebuild()
        held["stage"] = fresh
        return fresh

    def rebuild() -> CaseStage:
        """The newest usable snapshot plus the journal after it, else a full replay; the book
        built is then out of the cyclic collector's passes (:mod:`streams.heap`)."""
        with restoring(cfg.gc_freeze_restored):
            return _rebuild()

    def _rebuild() -> CaseStage:
        started = time.perf_counter()
        present = {int(k) for k in journal.data}
        head = max(present, default=-1) + 1  # the journal's next entry
        manifests = sorted((snapshot_entries(k) for k in snapshots.data if k[:1] == b"m"),
                           reverse=True)
        fresh: CaseStage | None = None
        for at in manifests:
            missing = [i for i in range(at, head) if i not in present]
            if missing:
                log.warning("cases: snapshot at entry %d unusable: journal entries %d..%d "
                            "after it are gone", at, missing[0], missing[-1])
                continue
            try:
                fresh = load_snapshot(at)
                break
            except UnusableSnapshot as err:
                log.warning("cases: snapshot at entry %d unusable, trying an older one or a "
                            "full replay: %s", at, err)
        from_snapshot = fresh is not None
        if fresh is None:
            missing = [i for i in range(0, head) if i not in present]
            if missing:
                raise FatalError(
                    f"cases: the journal lacks entries {missing[0]}..{missing[-1]} (a snapshot "
                    f"covered them) and no snapshot is usable (see the warnings above): the "
                    f"national record cannot be rebuilt from this worker's state; rebuild it "
                    f"from the raw topics with `netral replay --from-beginning`")
            fresh = CaseStage(codec, default_calendar(), load_policies())
            last_snapshot["at"] = (0, 0)
        else:
            last_snapshot["at"] = (fresh.entries, fresh.taken)
        loaded = time.perf_counter()
        base, taken, restored = fresh.entries, fresh.taken, len(fresh.book.cases)
        fresh.replay((journal.data[journal_key(i)] for i in range(base, head)),
                     on_error=lambda i, err: log.error(
                         "cases: journal entry %d no longer applies: %s", i, err))
        metrics.restore_seconds.labels("snapshot" if from_snapshot else "replay").set(
            time.perf_counter() - started)
        metrics.cases.set(len(fresh.book.cases))
        metrics.entries.set(fresh.entries)
        if from_snapshot:
            prune(base)  # what a crash after the manifest may have left behind
            log.info("cases: national record restored from snapshot at entry %d (%d cases, "
                     "%.1fs) + %d journal entries replayed (%d inputs, %.1fs): %d cases", base,
                     restored, loaded - started, fresh.entries - base, fresh.taken - taken,
                     time.perf_counter() - loaded, len(fresh.book.cases))
        else:
            log.info("cases: national record rebuilt by full replay of %d inputs in %d journal "
                     "entries: %d cases (%.1fs)", fresh.taken, fresh.entries,
                     len(fresh.book.cases), time.perf_counter() - started)
        return fresh

    def load_snapshot(at: int) -> CaseStage:
        manifest = Manifest.decode(snapshots.data.get(manifest_key(at)))
        if manifest.entries != at:
            raise UnusableSnapshot(f"manifest under entry {at} says entry {manifest.entries}")
        chunks = [snapshots.data.get(chunk_key(at, i)) for i in range(len(manifest.sizes))]
        return load(manifest, chunks, codec, default_calendar())

    def put(table: Any, key: bytes, value: bytes | None) -> Awaitable[Any]:
        # Written to the store and changelog directly: inside take_events the agent has no
        # current event, which Table.__setitem__/__delitem__ need to pick the partition.
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value
        return table.send_changelog(JOURNAL_PARTITION, key, value)

    def prune(at: int) -> None:
        """Delete older snapshots and the journal entries below ``at`` (a snapshot covers
        them); tombstones, so compaction drops the raw inputs, purged persons' too."""
        for key in [k for k in snapshots.data if snapshot_entries(k) < at]:
            put(snapshots, key, None)
        for key in [k for k in journal.data if int(k) < at]:
            put(journal, key, None)

    def snapshot_due(current: CaseStage) -> bool:
        every = cfg.cases_snapshot_every
        if every <= 0:
            return False
        entries, taken = last_snapshot.get("at", (0, 0))
        return (current.entries - entries >= every
                and current.taken - taken >= len(current.book.cases))

    def start_snapshot(current: CaseStage) -> None:
        """Write the snapshot of the stage as it is now in a task of its own, so the batches go
        on meanwhile (at a million cases a snapshot takes minutes): the writer keeps the
        immutable book of this moment, whatever the stage takes next. One at a time."""
        running = snapshot_task.get("task")
        if running is not None and not running.done():
            return
        snap = SnapshotWriter(current, cfg.cases_snapshot_chunk_bytes)
        task = asyncio.get_running_loop().create_task(write_snapshot(snap, len(current.book.cases)),
                                                      name="cases-snapshot")
        task.add_done_callback(snapshot_done)
        snapshot_task["task"] = task

    def stop_snapshot() -> None:
        """Cancel a snapshot in progress (the partition is leaving, or the book is rebuilt):
        its chunks have no manifest, so restores ignore them and the next snapshot deletes
        them; the old snapshot and the journal since it stay whole."""
        running = snapshot_task.pop("task", None)
        if running is not None and not running.done():
            log.info("cases: snapshot in progress cancelled")
            running.cancel()

    def snapshot_done(task: asyncio.Task[None]) -> None:
        err = None if task.cancelled() else task.exception()
        if err is None:
            return
        if isinstance(err, KafkaError):
            # Nothing lost: the old snapshot and the journal since it are whole, and the next
            # due entry tries again.
            metrics.snapshot_failures.inc()
            log.error("cases: snapshot failed, the journal stays and the next due entry "
                      "retries: %s: %s", type(err).__name__, err)
            return
        log.critical("cases: snapshot failed on a bug: %r", err)
        task.get_loop().create_task(app.crash(err))

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        stop_snapshot()
        order.forget()

    @app.on_before_shutdown.connect
    async def _shutdown(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        stop_snapshot()

    async def write_snapshot(snap: SnapshotWriter, cases_now: int) -> None:
        """Chunks, acknowledged; the manifest, acknowledged; then the pruning."""
        at, started = snap.entries, time.perf_counter()
        if manifest_key(at) in snapshots.data:
            return
        for key in [k for k in snapshots.data if snapshot_entries(k) >= at]:
            put(snapshots, key, None)  # chunks of an attempt that never got its manifest
        log.info("cases: writing a snapshot at entry %d (%d cases)", at, cases_now)
        sent = []
        for i, chunk in enumerate(snap.chunks()):
            sent.append(put(snapshots, chunk_key(at, i), chunk))
            await asyncio.sleep(0)  # one chunk of encoding at a time: timers and heartbeats run
        await asyncio.gather(*sent)
        manifest = snap.manifest
        await put(snapshots, manifest_key(at), manifest.encode())
        prune(at)
        last_snapshot["at"] = (at, snap.taken)
        metrics.snapshot_seconds.set(time.perf_counter() - started)
        metrics.snapshot_bytes.set(manifest.size)
        metrics.snapshot_entry.set(at)
        now = held.get("stage")
        log.info("cases: snapshot at entry %d: %d cases, %d bytes in %d chunks (%.1fs, %d "
                 "batches journaled meanwhile); journal entries below it dropped", at,
                 manifest.cases, manifest.size, len(manifest.sizes),
                 time.perf_counter() - started, (now.entries - at) if now else 0)

    async def publish(out: Outputs) -> list[Awaitable[Any]]:
        sends: list[tuple[str, str, bytes | None]] = []
        for record in out.cases:
            sends.append((CASES, record.case_id, codec.encode_record(record, topic=CASES)))
        for case_id in out.tombstones:
            sends.append((CASES, case_id, None))
        for t in out.transitions:
            sends.append((CASE_EVENTS, t.case_id, codec.encode_record(t, topic=CASE_EVENTS)))
        for o in out.orders:
            sends.append((ORDERS_SIASN, o.nip, codec.encode_record(o, topic=ORDERS_SIASN)))
        for a in out.alerts:
            sends.append((ALERTS, a.region_code, codec.encode_record(a, topic=ALERTS)))
        futures = [await app.producer.send(topic, key.encode(), value, None, None, writer)
                   for topic, key, value in sends]
        for dead in out.dead_letters:
            futures.append(await _orphan_letter(dead.event, dead.reason))
        return futures

    async def _orphan_letter(event: CanonicalEvent, reason: str) -> Awaitable[Any]:
        letter = Letter.of(InvalidMessage(reason), stage=STAGE, topic=EVENTS, partition=0,
                           offset=-1)
        log.warning("dlq %s: waiting event %s: %s", STAGE, event.event_id, reason[:300])
        value = codec.encode_record(event, topic=EVENTS)
        return await app.producer.send(topics.dlq[STAGE].get_topic_name(),
                                       event.source_id.encode(), value, None, None,
                                       letter.headers())

    @app.agent(topics.case_inputs, name="cases", concurrency=1)
    async def cases(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(cfg.batch_size, within=cfg.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            began = time.perf_counter()
            try:
                current = stage()
            except FatalError as err:  # the record cannot be rebuilt: stop the worker, loudly
                log.critical("%s", err)
                await app.crash(err)
                return
            taken: list[tuple[InputKind, bytes]] = []
            parts: list[Outputs] = []
            moved = False  # a position moved: the batch is journaled
            try:
                for event in batch:
                    msg = event.message
                    if not await order.admit(current, msg):
                        continue  # taken before, or records before it never were
                    kind = KIND_BY_TOPIC[msg.topic]
                    try:
                        parts.append(current.take(kind, msg.value))
                    except Exception as err:  # noqa: BLE001 - reject() logs bugs
                        await reject(topics, STAGE, msg, err)
                        metrics.rejected.inc()
                        order.advance(current, msg)
                        moved = True
                        continue
                    order.advance(current, msg)
                    moved = True
                    taken.append((kind, msg.value or b""))
                    metrics.inputs.labels(kind.name).inc()
                    # A deadline scan walks every case: let timers, heartbeats and the
                    # producer run between inputs, or a burst of ticks stalls the worker.
                    await asyncio.sleep(0)
                await asyncio.gather(*await publish(batch_outputs(parts)))
                if moved:
                    # Acknowledged before the batch's inputs are (take_events acks them when
                    # this body is done): Faust's commit flushes its producer buffer only for
                    # 0.1 s per message, so an unawaited entry could be committed over, and a
                    # SIGKILL then loses its inputs from the record (seen: 35 of 150 cases).
                    # The positions go in the same write as the inputs that moved them.
                    await put(journal, journal_key(current.entries),
                              pack(taken, current.positions))
            except BaseException:
                held.pop("stage", None)  # the book ran ahead of the journal: rebuild it
                raise
            if moved:
                current.entries += 1
                if snapshot_due(current):
                    start_snapshot(current)
            metrics.cases.set(len(current.book.cases))
            metrics.entries.set(current.entries)
            metrics.batch_seconds.observe(time.perf_counter() - began)

    @app.timer(interval=order.reseek_s)
    async def read_again_when_waiting() -> None:
        order.retry()  # a partition waiting at its position with nothing coming: ask again

    if cfg.deadline_scan_interval_s > 0:
        @app.timer(interval=cfg.deadline_scan_interval_s, on_leader=True)
        async def deadline_timer() -> None:
            tick = DeadlineTick(tick_id=str(uuid.uuid4()), at=datetime.now(UTC),
                                issued_by="timer")
            value = codec.encode_record(tick, topic=DEADLINE_TICKS)
            await (await app.producer.send(DEADLINE_TICKS, b"timer", value, None, None, None))
