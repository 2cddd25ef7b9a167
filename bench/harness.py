"""Shared bench plumbing: a broker for the run, producing a prepared data set, counting output."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hub.kafka_admin import create_topics
from schemas.kafka import KafkaConnection
from schemas.topics import TopicSpec, catalogue

REPO = Path(__file__).resolve().parent.parent
OUT = "bench.baseline.out"
"""Where the plain-loop baselines write (the hub's own topics are left to the hub)."""


def bench_specs() -> list[TopicSpec]:
    """The hub's topics and the baselines' output topic."""
    return [*catalogue(), TopicSpec(name=OUT, key="k", value="v", cleanup="delete",
                                    retention_ms=86_400_000, writer="bench")]


def baseline_clients(conn: KafkaConnection, *topics: str, group: str
                     ) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
    """The plain loops' consumer (read_committed, from the earliest offset, committing itself)
    and producer (acks=all, idempotent, 5 ms linger), not started."""
    consumer = AIOKafkaConsumer(*topics, **conn.aiokafka_kwargs(), group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                isolation_level="read_committed")
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all", enable_idempotence=True,
                                linger_ms=5)
    return consumer, producer


def make_topics(conn: KafkaConnection) -> None:
    """Every topic a single-broker bench needs: 4 partitions, RF 1."""
    asyncio.run(create_topics(conn, bench_specs(), partitions=4, replication=1, min_insync=1))


@dataclass(frozen=True)
class Row:
    """One measured pipeline; the first row of a table is its floor (baseline)."""

    name: str
    records: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def best_of(fns: list[Callable[[], object]], rounds: int = 3) -> list[float]:
    """Best time of each function over ``rounds`` interleaved rounds.

    Interleaving (a, b, c, a, b, c, ...) spreads a shared machine's load bursts over every
    operation instead of penalising whichever happened to run during one.
    """
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def table(rows: list[Row], first_column: str = "pipeline") -> str:
    """A markdown table with each rate as a ratio to the floor (the row named ``floor: ...``)."""
    floor = next((r for r in rows if r.name.startswith("floor")), rows[0]).rate
    lines = [f"| {first_column} | records | seconds | records/s | ratio to floor | note |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.records} | {r.seconds:.2f} | {r.rate:,.0f} | "
                     f"{r.rate / floor:.2f} | {r.note} |")
    return "\n".join(lines)


@contextmanager
def bench_broker(home: Path) -> Iterator[KafkaConnection]:
    """NETRAL_KAFKA_BOOTSTRAP (with the other NETRAL_KAFKA_* security settings) if set, else a
    fresh local Apache Kafka broker for this run."""
    if bootstrap := os.environ.get("NETRAL_KAFKA_BOOTSTRAP"):
        from hub.settings import get_settings

        yield get_settings().kafka(bootstrap, client_id="netral-bench")
        return
    from hub.broker.local import LocalBroker

    broker = LocalBroker(home, port=0, heap_mb=1024, dist_dir=REPO / ".netral" / "dist")
    bootstrap, _ = broker.start(timeout_s=120)
    try:
        yield KafkaConnection(bootstrap=bootstrap, client_id="netral-bench")
    finally:
        broker.stop()


async def produce_all(conn: KafkaConnection, topic: str,
                      records: list[tuple[bytes, bytes]]) -> float:
    """Send every (key, value) with acks=all; returns seconds taken."""
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all", enable_idempotence=True,
                                linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    start = time.perf_counter()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - start


async def count_until(conn: KafkaConnection, topic: str, target: int, timeout_s: float
                      ) -> tuple[float, float]:
    """Read ``topic`` (read_committed) until ``target`` records arrived.

    Returns (seconds from call to the first record, seconds from call to the last). Counting
    records, not end offsets: transaction markers take offsets too.
    """
    consumer = AIOKafkaConsumer(topic, **conn.aiokafka_kwargs(), isolation_level="read_committed",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    start = time.perf_counter()
    first = None
    seen = 0
    try:
        while seen < target:
            if time.perf_counter() - start > timeout_s:
                raise TimeoutError(f"{topic}: {seen}/{target} records after {timeout_s}s")
            for recs in (await consumer.getmany(timeout_ms=200, max_records=10_000)).values():
                if recs and first is None:
                    first = time.perf_counter() - start
                seen += len(recs)
        return (first or 0.0), time.perf_counter() - start
    finally:
        await consumer.stop()


def rss_mb(pid: int) -> float:
    """A process's resident set now (/proc/<pid>/status VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
