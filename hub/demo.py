"""The guided tour behind ``make demo``: everything local, a sample wave, and what arrived.

Sends sample Bawaslu reports (plus a few bad records on purpose) to ``netral.raw.bawaslu``, runs
the real stream worker, and shows the normalised events and the dead letters with their reasons.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from connectors.samples import sample_reports
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
from .kafka_admin import wait_group_stable
from .settings import NetralSettings

BAD_RECORDS = {
    "json instead of Avro": b'{"nip": "198503152010011001", "jenis": "kampanye"}',
    "random bytes": bytes(range(7, 71)),
}


async def _send(conn: KafkaConnection, records: list[tuple[bytes, bytes]],
                progress: Progress) -> None:
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    await producer.start()
    task = progress.add_task("sending to netral.raw.bawaslu", total=len(records))
    try:
        for key, value in records:
            await producer.send_and_wait(raw_topic("bawaslu"), value=value, key=key)
            progress.advance(task)
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


def run_demo(settings: NetralSettings, *, events: int, keep: bool, console: Console) -> None:
    """Start what is missing, send a sample wave, show the result, and clean up."""
    started_broker = start_local_broker_if_needed(settings)
    report = ensure_topics(settings)
    console.print(f"topics: {len(report.created)} created, {len(report.existing)} existed")
    log_path = settings.state_dir() / "logs" / "worker.log"
    worker = spawn_worker(settings, log_path)
    conn = kafka(settings, "netral-demo")
    try:
        ready = asyncio.run(wait_group_stable(conn, settings.worker_app_id, 120))
        console.print(f"stream worker ready in {ready:.1f}s (log: {log_path})")
        codec = AvroCodec()
        reports = sample_reports(events, seed=int(time.time()))
        records = [(r.source_id.encode(), codec.encode(r.avro_name, r.to_avro()))
                   for r in reports]
        bad_keys = {f"demo-bad-{i}-{uuid.uuid4().hex[:6]}".encode()
                    for i in range(len(BAD_RECORDS))}
        records += list(zip(sorted(bad_keys), BAD_RECORDS.values(), strict=True))
        wanted = {f"bawaslu:{r.source_id}" for r in reports}
        started = time.monotonic()
        with Progress(console=console) as progress:
            asyncio.run(_send(conn, records, progress))
            got, letters = asyncio.run(_watch(conn, wanted, bad_keys, progress, 120))
        elapsed = time.monotonic() - started
        _show(console, got, letters)
        console.print(f"[bold]{len(got)}/{len(wanted)}[/] reports normalised and "
                      f"[bold]{len(letters)}/{len(bad_keys)}[/] bad records dead-lettered "
                      f"in {elapsed:.1f}s")
        if len(got) < len(wanted) or len(letters) < len(bad_keys):
            raise SystemExit(f"demo incomplete: see {log_path}")
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
    table = Table("event", "type", "NIP", "region", "violation", title="netral.events (first 10)")
    for ev in sorted(got, key=lambda e: e.event_id)[:10]:
        nip = ev.person.nip if ev.person and ev.person.nip else None
        table.add_row(ev.event_id, ev.event_type.value, mask_nip(nip) if nip else "-",
                      name_of(ev.region_code) if ev.region_code else "-",
                      ev.violation_type.value if ev.violation_type else "-")
    console.print(table)
    dead = Table("key", "error", "reason", title="netral.dlq.normalize (bad input, on purpose)")
    for key, why in letters:
        dead.add_row(key.decode(), why.error_class, why.reason[:100])
    console.print(dead)
