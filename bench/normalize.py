"""normalize stage throughput against plain aiokafka loops, on the same broker and data.

Three pipelines consume the same raw Bawaslu records (20% duplicate ids, as in perf-notes):
- floor: a plain aiokafka loop (getmany, fastavro decode, dedupe in a set, encode, send, commit);
- rule: the same loop running the hub's real normalize rule (decode, validate, map, encode);
- faust: the real ``netral worker`` (Faust, the default at_least_once) running normalize.
Ratios to the floor are what count on a noisy 2-core machine. ``BENCH_GUARANTEE=at_least_once``
runs the Faust worker without transactions, for comparison.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import fastavro

from connectors.samples import sample_reports
from hub.commands.up import stop_process
from hub.kafka_admin import wait_group_stable
from schemas.codec import AvroCodec, default_store
from schemas.kafka import KafkaConnection
from schemas.models import BawasluReport, CanonicalEvent
from schemas.topics import EVENTS, raw_topic
from streams.rules.normalize import normalize_record

from .harness import (
    OUT,
    REPO,
    Row,
    baseline_clients,
    bench_broker,
    count_until,
    make_topics,
    produce_all,
)
from .harness import table as harness_table

RAW = raw_topic("bawaslu")


def prepare(n: int, dup_rate: float = 0.2, seed: int = 7) -> list[tuple[bytes, bytes]]:
    codec = AvroCodec()
    unique = int(n * (1 - dup_rate))
    reports = sample_reports(unique, seed=seed)
    records = [(r.source_id.encode(), codec.encode_record(r)) for r in reports]
    rng = random.Random(seed)
    records += [rng.choice(records) for _ in range(n - unique)]
    rng.shuffle(records)
    return records


async def plain_loop(conn: KafkaConnection, total: int, *, use_rule: bool) -> float:
    """Consume all of RAW, transform, produce to OUT, commit per batch; seconds for the lot."""
    entry = default_store().get(BawasluReport.avro_name)
    codec = AvroCodec()
    group = f"bench-{'rule' if use_rule else 'floor'}-{uuid.uuid4().hex[:6]}"
    consumer, producer = baseline_clients(conn, RAW, group=group)
    await consumer.start()
    await producer.start()
    seen: set[bytes] = set()
    done = 0
    start = time.perf_counter()
    try:
        while done < total:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            futures = []
            for recs in batch.values():
                for rec in recs:
                    done += 1
                    if use_rule:
                        key, value = normalize_record(RAW, rec.key, codec.decode(rec.value))
                        out = codec.encode(CanonicalEvent.avro_name, value)
                    else:
                        if rec.key in seen:
                            continue
                        seen.add(rec.key)
                        record = fastavro.schemaless_reader(io.BytesIO(rec.value[10:]),
                                                            entry.parsed, None)
                        buf = io.BytesIO()
                        fastavro.schemaless_writer(buf, entry.parsed, record)
                        key, out = rec.key, buf.getvalue()
                    futures.append(await producer.send(OUT, value=out, key=key))
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
        return time.perf_counter() - start
    finally:
        await producer.stop()
        await consumer.stop()


def faust_worker(conn: KafkaConnection, home: Path, total: int) -> tuple[float, float, float]:
    """(seconds to a ready worker, seconds ready->first event, seconds ready->last event)."""
    app_id = f"bench-normalize-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=conn.bootstrap, NETRAL_HOME=str(home),
               NETRAL_WORKER_APP_ID=app_id, NETRAL_LOG_LEVEL="WARNING",
               NETRAL_WORKER_PROCESSING_GUARANTEE=os.environ.get("BENCH_GUARANTEE",
                                                                 "at_least_once"))
    log = (home / "worker.log").open("wb")
    spawned = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        asyncio.run(wait_group_stable(conn, app_id, timeout_s=120))
        ready = time.perf_counter() - spawned
        first, last = asyncio.run(count_until(conn, EVENTS, total, timeout_s=1800))
        return ready, first, last
    finally:
        stop_process(proc, timeout_s=60)  # SIGTERM, then SIGKILL: never an orphan
        log.close()


def run(n: int = 50_000) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="netral-bench-") as tmp:
        home = Path(tmp)
        with bench_broker(home) as conn:
            make_topics(conn)
            data = prepare(n)
            produce_s = asyncio.run(produce_all(conn, RAW, data))
            floor = asyncio.run(plain_loop(conn, n, use_rule=False))
            rule = asyncio.run(plain_loop(conn, n, use_rule=True))
            ready, first, last = faust_worker(conn, home, n)
    return [
        Row("produce raw (aiokafka, acks=all)", n, produce_s),
        Row("floor: plain aiokafka consume-decode-dedupe-produce", n, floor),
        Row("plain aiokafka loop + normalize rule (validate, map)", n, rule),
        Row(f"faust worker: normalize ({os.environ.get('BENCH_GUARANTEE', 'at_least_once')})", n,
            last - first,
            f"worker ready in {ready:.1f}s; first event {first:.2f}s after ready"),
    ]


def table(rows: list[Row]) -> str:
    return harness_table(rows, "pipeline")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    print(table(run(count)))
