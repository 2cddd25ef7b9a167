"""Ingest throughput: the outbox relay and HTTP ingest against a plain aiokafka producer, on the
same broker and the same records in one run."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from connectors.ingest import IngestLimits
from connectors.keys import KeyStore, add_key
from connectors.outbox import OutboxRelay, agency_engine, enqueue
from connectors.samples import sample_reports
from hub.api.app import create_app
from hub.broker.local import free_port
from hub.kafka_admin import create_topics
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import BawasluReport
from schemas.topics import Agency, catalogue, raw_topic

from .harness import Row, bench_broker, produce_all
from .harness import table as harness_table


def native(r: BawasluReport) -> dict[str, Any]:
    """The report as Bawaslu's native export (what HTTP ingest takes)."""
    return {
        "id_laporan": r.source_id, "dicatat_pada": r.recorded_at.isoformat(),
        "pemilihan": "Pilkada 2024", "jenis": r.report_kind.value.lower(),
        "nomor_register": r.register_number, "sumber": "masyarakat",
        "tanggal_kejadian": r.incident_date.isoformat(), "tempat_kejadian": r.incident_place,
        "kode_wilayah": r.region_code,
        "terlapor": {"nip": r.accused.nip, "nama": r.accused.name,
                     "instansi": r.accused.agency_name}, "jenis_pelanggaran": "lainnya",
        "uraian": r.description,
    }


def http_ingest(conn: KafkaConnection, home: Path, reports: list[BawasluReport]) -> float:
    keyfile = home / "keys.yaml"
    key = add_key(keyfile, Agency.BAWASLU)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(conn, KeyStore.load(keyfile), IngestLimits(rate="100000/minute")),
        host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    rows = [native(r) for r in reports]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            start = time.perf_counter()
            for i in range(0, len(rows), 500):
                resp = client.post("/v1/ingest/bawaslu", json=rows[i:i + 500],
                                   headers={"X-API-Key": key})
                assert resp.status_code == 202, resp.text[:300]
            return time.perf_counter() - start
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def relay(conn: KafkaConnection, home: Path, reports: list[BawasluReport]) -> float:
    engine = agency_engine(f"sqlite:///{home / 'outbox.db'}")
    codec = AvroCodec()
    with engine.begin() as db:
        for r in reports:
            enqueue(db, r, codec)

    async def drain() -> float:
        rel = OutboxRelay(engine, conn, batch_size=1000)
        await rel.start()
        start = time.perf_counter()
        try:
            await rel.run(once=True)
            return time.perf_counter() - start
        finally:
            await rel.stop()

    return asyncio.run(drain())


def run(n: int = 20_000) -> list[Row]:
    reports = sample_reports(n, seed=11)
    codec = AvroCodec()
    encoded = [(r.source_id.encode(), codec.encode_record(r)) for r in reports]
    with tempfile.TemporaryDirectory(prefix="netral-bench-ingest-") as tmp:
        home = Path(tmp)
        with bench_broker(home) as conn:
            asyncio.run(create_topics(conn, catalogue(), partitions=4, replication=1,
                                      min_insync=1))
            # warm up: leaders elected, metadata cached, before anything is timed
            asyncio.run(produce_all(conn, raw_topic("bawaslu"), encoded[:200]))
            floor = asyncio.run(produce_all(conn, raw_topic("bawaslu"), encoded))
            relay_s = relay(conn, home, reports)
            http_s = http_ingest(conn, home, reports)
    return [
        Row("floor: plain aiokafka producer (pre-encoded, acks=all)", n, floor),
        Row("outbox relay (SQLite outbox, batches of 1000, mark after ack)", n, relay_s),
        Row("HTTP ingest (batches of 500 native JSON records, 202 after ack)", n, http_s,
            "validation + encoding included"),
    ]


def table(rows: list[Row]) -> str:
    return harness_table(rows, "path")


if __name__ == "__main__":
    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
