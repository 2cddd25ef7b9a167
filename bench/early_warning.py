"""The early-warning stage alone against a plain aiokafka loop over the same records.

One simulated Pilkada wave goes through a worker running only normalize + cases
(``NETRAL_WORKER_STAGES``), so ``netral.events`` and ``netral.cases`` hold what early warning
reads. Then, each from the earliest offset in a group of its own:
- floor: a plain aiokafka loop over netral.events + netral.cases: getmany, decode (cached
  schemas), re-key every record once and send, commit per batch (the shape of the stage's
  routing step: consume-decode-route-produce);
- early warning: ``netral worker`` with ``NETRAL_WORKER_STAGES=early-warning`` (both routing
  agents, the subjects topic, the judge and its changelog-backed table), from ready until its
  group has no lag.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from hub.commands.up import stop_process
from hub.kafka_admin import wait_group_stable
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.topics import CASES, EVENTS

from .cases import prepare
from .e2e import wait_lag_zero
from .harness import OUT, REPO, Row, baseline_clients, bench_broker, make_topics, produce_all
from .harness import table as harness_table


def spawn(conn: KafkaConnection, home: Path, stages: str) -> tuple[subprocess.Popen[bytes],
                                                                    str, float]:
    """A worker running ``stages`` in a group of its own; returns it, its app id and the
    epoch second its group was Stable."""
    app_id = f"bench-ew-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=conn.bootstrap, NETRAL_HOME=str(home),
               NETRAL_WORKER_APP_ID=app_id, NETRAL_LOG_LEVEL="WARNING",
               NETRAL_DEADLINE_SCAN_INTERVAL_S="0", NETRAL_WORKER_STAGES=stages)
    with (home / "worker.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=env, cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT)
    asyncio.run(wait_group_stable(conn, app_id, timeout_s=300))
    return proc, app_id, time.time()


async def plain_route(conn: KafkaConnection) -> tuple[float, int]:
    """Seconds to read every record of netral.events + netral.cases, decode, re-key and send
    it; and the records read."""
    codec = AvroCodec()
    consumer, producer = baseline_clients(conn, EVENTS, CASES,
                                          group=f"bench-ew-plain-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    await producer.start()
    try:
        await consumer.getmany(timeout_ms=0)  # joins the group: assignment before the clock
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        parts = list(consumer.assignment())
        ends = await consumer.end_offsets(parts)
        start, read = time.perf_counter(), 0
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            futures = []
            for recs in batch.values():
                for rec in recs:
                    read += 1
                    if not rec.value:
                        continue  # a tombstone of a merged case
                    decoded = codec.decode(rec.value)
                    futures.append(await producer.send(
                        OUT, value=codec.encode(decoded.schema, decoded.value),
                        key=rec.key))
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
        return time.perf_counter() - start, read
    finally:
        await producer.stop()
        await consumer.stop()


def run(cases: int = 3000) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="netral-bench-") as tmp:
        home = Path(tmp)
        with bench_broker(home) as conn:
            make_topics(conn)
            data = prepare(cases)
            for topic, records in data.items():
                asyncio.run(produce_all(conn, topic, records))
            fill, fill_id, _ = spawn(conn, home, "normalize,cases")
            try:
                asyncio.run(wait_lag_zero(conn, fill_id, timeout_s=3600))
            finally:
                stop_process(fill, timeout_s=120)
            floor, read = asyncio.run(plain_route(conn))
            proc, app_id, ready_at = spawn(conn, home, "early-warning")
            try:
                done_at = asyncio.run(wait_lag_zero(conn, app_id, timeout_s=3600))
            finally:
                stop_process(proc, timeout_s=120)
    return [
        Row("floor: plain aiokafka consume-decode-route-produce (netral.events + "
            "netral.cases)", read, floor),
        Row("early warning alone (netral worker, NETRAL_WORKER_STAGES=early-warning): "
            "ready -> group lag 0", read, done_at - ready_at,
            "routing, subjects topic, judge + table"),
    ]


def table(rows: list[Row]) -> str:
    return harness_table(rows)


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    print(table(run(size)))
