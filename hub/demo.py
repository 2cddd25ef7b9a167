"""The guided tour behind ``make demo``: everything local, a simulated Pilkada wave, the result.

Runs the election simulator through the agencies' outboxes and relays (the real connectors), plus
two bad records sent by a misbehaving client, runs the real stream worker, and shows the
normalised events by agency and type, and the dead letters with their reasons.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from connectors.sim_runner import publish_wave, write_truth
from connectors.simulator import SimConfig, simulate
from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.kafka import KafkaConnection
from schemas.models import CanonicalEvent
from schemas.nip import mask_nip
from schemas.regions import name_of
from schemas.topics import EVENTS, dlq_topic, raw_topic

from .bootstrap import kafka, local_broker
from .commands.topics import ensure_topics
from .commands.up import spawn_worker, start_local_broker_if_needed, stop_process
from .demo_record import run_record_phase
from .kafka_admin import wait_group_stable
from .settings import NetralSettings

BAD_RECORDS = {
    "json instead of Avro": b'{"nip": "198503152010011001", "jenis": "kampanye"}',
    "random bytes": bytes(range(7, 71)),
}


async def _send_bad(conn: KafkaConnection, records: list[tuple[bytes, bytes]]) -> None:
    """A misbehaving client writing junk to a raw topic: the hub must dead-letter it."""
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(raw_topic("bawaslu"), value=value, key=key)
    finally:
        await producer.stop()


async def _watch(conn: KafkaConnection, wanted: set[str], bad_keys: set[bytes],
                 progress: Progress, timeout_s: float
                 ) -> tuple[list[CanonicalEvent], list[tuple[bytes, DeadLetter]]]:
    codec = AvroCodec()
    consumer = AIOKafkaConsumer(EVENTS, dlq_topic("normalize"), **conn.aiokafka_kwargs(),
                                group_id=f"netral-demo-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest", isolation_level="read_committed")
    await consumer.start()
    events: dict[str, CanonicalEvent] = {}
    letters: list[tuple[bytes, DeadLetter]] = []
    task = progress.add_task("normalised events on netral.events", total=len(wanted))
    deadline = time.monotonic() + timeout_s
    try:
        while (len(events) < len(wanted) or len(letters) < len(bad_keys)) \
                and time.monotonic() < deadline:
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                for rec in recs:
                    if rec.topic == EVENTS:
                        ev = CanonicalEvent.from_avro(codec.decode(rec.value).value)
                        if ev.event_id in wanted and ev.event_id not in events:
                            events[ev.event_id] = ev
                            progress.advance(task)
                    elif rec.key in bad_keys:
                        letters.append((rec.key, DeadLetter.from_headers(rec.headers)))
    finally:
        await consumer.stop()
    return list(events.values()), letters


def run_demo(settings: NetralSettings, *, cases: int, keep: bool, console: Console) -> None:
    """Start what is missing, send a sample wave, show the result, and clean up."""
    started_broker = start_local_broker_if_needed(settings)
    report = ensure_topics(settings)
    console.print(f"topics: {len(report.created)} created, {len(report.existing)} existed")
    log_path = settings.state_dir() / "logs" / "worker.log"
    # The wave is dated 2024: the demo walks that calendar with its own ticks, so the worker's
    # real-time deadline timer stays off.
    os.environ["NETRAL_DEADLINE_SCAN_INTERVAL_S"] = "0"
    worker = spawn_worker(settings, log_path)
    conn = kafka(settings, "netral-demo")
    try:
        ready = asyncio.run(wait_group_stable(conn, settings.worker_app_id, 120))
        console.print(f"stream worker ready in {ready:.1f}s (log: {log_path})")
        sim = simulate(SimConfig(cases=cases, seed=int(time.time())))
        truth = settings.state_dir() / "simulations" / "demo.truth.jsonl"
        write_truth(sim, truth)
        bad_keys = {f"demo-bad-{i}-{uuid.uuid4().hex[:6]}".encode()
                    for i in range(len(BAD_RECORDS))}
        wanted = {ev.event_id for ev in sim.events}
        console.print(f"simulated Pilkada 2024 wave: {cases} true cases, {len(sim.events)} agency "
                      f"events (ground truth: {truth})")
        started = time.monotonic()
        with Progress(console=console) as progress:
            tasks = {w: progress.add_task(f"{w} (agency outboxes -> relays -> Kafka)",
                                          total=len(sim.events)) for w in ("queued", "sent")}
            wave = asyncio.run(publish_wave(
                sim, conn, settings.state_dir() / "connectors",
                progress=lambda what, n: progress.advance(tasks[what], n)))
            asyncio.run(_send_bad(conn, list(zip(sorted(bad_keys), BAD_RECORDS.values(),
                                                 strict=True))))
            got, letters = asyncio.run(_watch(conn, wanted, bad_keys, progress, 180))
        elapsed = time.monotonic() - started
        _show(console, got, letters)
        console.print(f"[bold]{len(got)}/{len(wanted)}[/] agency events normalised, "
                      f"{len(wave.rejected_at_connector)} bad rows rejected at the connectors, "
                      f"[bold]{len(letters)}/{len(bad_keys)}[/] junk records dead-lettered, "
                      f"in {elapsed:.1f}s")
        if len(got) < len(wanted) or len(letters) < len(bad_keys):
            raise SystemExit(f"demo incomplete: see {log_path}")
        run_record_phase(settings, conn, truth, console, keep=keep)
    finally:
        if keep:
            console.print("--keep: broker and worker keep running; stop them with "
                          "`netral broker stop` and Ctrl-C / kill of the worker")
        else:
            stop_process(worker)
            if started_broker:
                local_broker(settings).stop(timeout_s=settings.broker_stop_timeout_s)
            console.print("stopped the worker" + (" and the broker" if started_broker else ""))


def _show(console: Console, got: list[CanonicalEvent],
          letters: list[tuple[bytes, DeadLetter]]) -> None:
    counts = Counter((ev.agency.value, ev.event_type.value) for ev in got)
    summary = Table("agency", "event type", "events", title="netral.events by agency and type")
    for (agency, etype), n in sorted(counts.items()):
        summary.add_row(agency, etype, str(n))
    console.print(summary)
    table = Table("event", "type", "NIP", "region", "violation", title="a few normalised reports")
    reports = [ev for ev in got if ev.event_type.value == "VIOLATION_REPORTED"]
    for ev in sorted(reports, key=lambda e: e.event_id)[:8]:
        nip = ev.person.nip if ev.person and ev.person.nip else None
        table.add_row(ev.event_id, ev.event_type.value, mask_nip(nip) if nip else "-",
                      name_of(ev.region_code) if ev.region_code else "-",
                      ev.violation_type.value if ev.violation_type else "-")
    console.print(table)
    dead = Table("key", "error", "reason", title="netral.dlq.normalize (bad input, on purpose)")
    for key, why in letters:
        dead.add_row(key.decode(), why.error_class, why.reason[:100])
    console.print(dead)
