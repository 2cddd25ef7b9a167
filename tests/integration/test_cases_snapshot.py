"""The cases stage restores from its snapshot on a real broker, and its journal shrinks.

A worker with a small snapshot interval builds the national record of a small simulated wave
and snapshots its book; after it stops, the journal's changelog holds tombstones for the
entries the snapshot covers. The restarted worker says it restored from the snapshot plus the
few journal entries after it, a new report is folded into its existing case, and every other
case on ``netral.cases`` is exactly as before. Then a corrupt snapshot chunk, with the journal
it covers gone, stops the worker with the reason instead of a smaller national record. Its own
broker (``private_broker``).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from connectors.scoring import score
from connectors.simulator import SimConfig, iter_truth_lines, simulate
from hub.broker.local import free_port
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import BawasluReport, CaseRecord
from schemas.privacy import CLOSED_STATES
from schemas.topics import CASES, raw_topic
from streams.processors.cases import JOURNAL, SNAPSHOTS, chunk_key, snapshot_entries
from streams.rules.snapshot import Manifest
from tests.fixtures.kafka_tools import Headers, consume_until, produce
from tests.fixtures.national_record import latest_cases
from tests.fixtures.worker_process import WorkerProcess

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
RESTORED = re.compile(r"restored from snapshot at entry (\d+) \((\d+) cases.*\+ (\d+) journal "
                      r"entries replayed")


async def table_state(conn: KafkaConnection, topic: str) -> dict[bytes, bytes | None]:
    """A changelog read to its end: each key's last value (None: a tombstone)."""
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), enable_auto_commit=False,
                                max_partition_fetch_bytes=9 * 1024 * 1024)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        last: dict[bytes, bytes | None] = {}
        while await consumer.position(tp) < end:
            for recs in (await consumer.getmany(tp, timeout_ms=1000)).values():
                for rec in recs:
                    assert rec.key is not None
                    last[rec.key] = rec.value
        return last
    finally:
        await consumer.stop()


def probe_report(sim_report: BawasluReport) -> BawasluReport:
    """Another agency desk reporting the same person and incident later: it joins the case."""
    return sim_report.model_copy(update={
        "source_id": f"{sim_report.source_id}-probe",
        "register_number": f"{sim_report.register_number}-probe",
        "recorded_at": sim_report.recorded_at.replace(year=sim_report.recorded_at.year + 1)})


def test_a_restart_restores_from_the_snapshot_and_the_journal_shrinks(
        private_broker: KafkaConnection, tmp_path: Path) -> None:
    sim = simulate(SimConfig(cases=40, duplicate_rate=0.2, name_only_rate=0.1, seed=17))
    truth = list(iter_truth_lines(sim))
    by_topic: dict[str, list[tuple[bytes | None, bytes, Headers]]] = {}
    for ev in sim.events:
        assert ev.record is not None
        topic = raw_topic(ev.agency)
        by_topic.setdefault(topic, []).append(
            (ev.record.source_id.encode(), CODEC.encode_record(ev.record, topic=topic), None))
    for topic, records in by_topic.items():
        asyncio.run(produce(private_broker, topic, records))

    # Small batches and a snapshot every 3 journal entries: several snapshots in this wave.
    metrics_port = free_port()
    worker = WorkerProcess(private_broker, tmp_path, "netral-snap", 180, 60,
                           NETRAL_WORKER_METRICS_PORT=str(metrics_port),
                           NETRAL_CASES_SNAPSHOT_EVERY="3",
                           NETRAL_CASES_SNAPSHOT_CHUNK_BYTES="4096",
                           NETRAL_WORKER_BATCH_SIZE="10")
    journal_topic = f"{worker.app_id}-{JOURNAL}-changelog"
    snapshot_topic = f"{worker.app_id}-{SNAPSHOTS}-changelog"
    worker.start()
    try:
        def complete(records: list[ConsumerRecord]) -> bool:
            return score(truth, latest_cases(records).values()).events_missing == 0

        before = latest_cases(asyncio.run(consume_until(private_broker, [CASES], complete,
                                                        timeout_s=300)))
        worker.wait_log(lambda t: "cases: snapshot at entry" in t, 120, "snapshot")
        worker.stop()

        # The newest snapshot is whole; older snapshots and the journal entries below it are
        # tombstones, so the table (and, after compaction, the topic) no longer holds them.
        snaps = asyncio.run(table_state(private_broker, snapshot_topic))
        manifests = [k for k, v in snaps.items() if k[:1] == b"m" and v is not None]
        assert len(manifests) == 1, sorted(snaps)
        manifest = Manifest.decode(snaps[manifests[0]])
        at = manifest.entries
        assert snapshot_entries(manifests[0]) == at and len(manifest.sizes) > 1
        assert all(len(v) <= 4096 for k, v in snaps.items() if v is not None)
        assert all(v is None for k, v in snaps.items() if snapshot_entries(k) < at)
        journal = asyncio.run(table_state(private_broker, journal_topic))
        alive = sorted(int(k) for k, v in journal.items() if v is not None)
        gone = sorted(int(k) for k, v in journal.items() if v is None)
        assert gone and max(gone) == at - 1 and all(i >= at for i in alive), (at, alive, gone)
        assert len(alive) < at  # the journal stopped growing with the stream

        # After the restart, a new report about a known person and incident (the stage's
        # first input: the book is restored before it) joins its existing case.
        first, target = next(
            (ev.record, case) for ev in sim.events if isinstance(ev.record, BawasluReport)
            and ev.record.accused.nip and ev.record.review_outcome is None
            for case in before.values() if case.state not in CLOSED_STATES
            and any(s.event_id == ev.record.event_id() for s in case.sources))
        probe = probe_report(first)
        worker.start()
        asyncio.run(produce(private_broker, raw_topic("bawaslu"), [
            (probe.source_id.encode(), CODEC.encode_record(probe), None)]))
        text = worker.wait_log(lambda t: RESTORED.search(t) is not None, 120, "restore line")
        match = RESTORED.search(text)
        assert match is not None
        assert int(match[1]) == at and int(match[3]) == len(alive)
        assert text.count("full replay") == 1  # the first start's, of an empty journal

        def folded(records: list[ConsumerRecord]) -> bool:
            case = latest_cases(records).get(target.case_id)
            return case is not None and probe.event_id() in {s.event_id for s in case.sources}

        after = latest_cases(asyncio.run(consume_until(private_broker, [CASES], folded,
                                                       timeout_s=120)))
        # The restarted worker's metrics: the restored book and how it was restored.
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        worker.stop()
        corrupt_snapshot_stops_the_worker(worker, snapshot_topic, probe)
    finally:
        worker.stop()
    samples = {s.name + str(sorted(s.labels.items())): s.value
               for family in text_string_to_metric_families(scraped) for s in family.samples}
    assert samples["netral_cases_book_cases[]"] == len(after)
    assert samples["netral_cases_inputs_total[('kind', 'EVENT')]"] >= 1  # the probe
    assert samples["netral_cases_restore_seconds[('source', 'snapshot')]"] > 0
    assert samples["netral_cases_snapshot_failures_total[]"] == 0  # exported, none refused
    assert samples["netral_cases_journal_entries[]"] > at
    joined: CaseRecord = after[target.case_id]
    assert joined.version == target.version + 1
    assert [s.event_id for s in joined.sources] == [*(s.event_id for s in target.sources),
                                                    probe.event_id()]
    assert joined.state is target.state and joined.person.nip == target.person.nip
    # Every other case exactly as before the restart (same version, same content).
    assert {k: v for k, v in after.items() if k != target.case_id} == {
        k: v for k, v in before.items() if k != target.case_id}


def corrupt_snapshot_stops_the_worker(worker: WorkerProcess, snapshot_topic: str,
                                      probe: BawasluReport) -> None:
    """A snapshot chunk that fails its checksum while the journal entries it covers are gone:
    the worker must not go on with a smaller national record; it stops, saying what to do."""
    conn = worker.conn
    snaps = asyncio.run(table_state(conn, snapshot_topic))
    at = max(snapshot_entries(k) for k, v in snaps.items() if k[:1] == b"m" and v is not None)
    asyncio.run(produce(conn, snapshot_topic, [(chunk_key(at, 0), b"not the chunk", None)]))
    worker.start()
    again = probe.model_copy(update={"source_id": f"{probe.source_id}-2"})
    asyncio.run(produce(conn, raw_topic("bawaslu"), [
        (again.source_id.encode(), CODEC.encode_record(again), None)]))
    assert worker.proc is not None
    try:
        code = worker.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError("worker still running:\n" + worker.log()[-4000:]) from None
    text = worker.log()
    assert code != 0, text[-4000:]
    assert f"snapshot at entry {at} unusable" in text and "checksum" in text
    assert "no snapshot is usable" in text and "netral replay --from-beginning" in text
