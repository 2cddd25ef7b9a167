"""Consumer-group lag and DLQ depth, read from the broker (aiokafka's admin client and a group-less
consumer for end offsets), for ``netral lag``, the ``/metrics`` gauges and the dashboard's
pipeline-health panel.

Lag of a partition = end offset (the log-end offset; for read_committed consumers this counts
transaction markers too, as ``kafka-consumer-groups`` does) - the group's committed offset. A
partition the group has never committed has no lag row (the broker knows no position for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.errors import RetriableError
from schemas.kafka import KafkaConnection

from .kafka_admin import quiet

DLQ_PREFIX = "netral.dlq."


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - self.committed, 0)


@dataclass(frozen=True)
class LagSnapshot:
    """Lag of every partition of the groups read, DLQ depth per DLQ topic, and when."""

    at: datetime
    partitions: list[PartitionLag] = field(default_factory=list)
    dlq: dict[str, int] = field(default_factory=dict)

    def by_group(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.partitions:
            out[p.group] = out.get(p.group, 0) + p.lag
        return out


@dataclass(frozen=True)
class Progress:
    """How fast a partition's group consumes between two snapshots, and how far behind it is."""

    rate: float
    """Committed messages per second (0 when the group did not move)."""
    behind_s: float | None
    """Estimated seconds to catch up at that rate; None when it does not move (or has no lag)."""


def progress(before: LagSnapshot, after: LagSnapshot) -> dict[tuple[str, str, int], Progress]:
    """Consume rate and estimated time behind per (group, topic, partition) seen in both."""
    dt = (after.at - before.at).total_seconds()
    old = {(p.group, p.topic, p.partition): p for p in before.partitions}
    out: dict[tuple[str, str, int], Progress] = {}
    for p in after.partitions:
        key = (p.group, p.topic, p.partition)
        if key not in old or dt <= 0:
            continue
        rate = max(p.committed - old[key].committed, 0) / dt
        behind = p.lag / rate if rate > 0 and p.lag > 0 else (0.0 if p.lag == 0 else None)
        out[key] = Progress(rate=rate, behind_s=behind)
    return out


async def read_lag(conn: KafkaConnection, *, groups: Collection[str] | None = None,
                   timeout_s: float = 10.0) -> LagSnapshot:
    """Committed and end offsets of ``groups`` (default: every consumer group), and DLQ depth.

    Raises RetriableError with one line when the broker does not answer within ``timeout_s``.
    """
    try:
        with quiet("aiokafka"):  # it logs every failed connection attempt
            return await asyncio.wait_for(_read(conn, groups, timeout_s), timeout_s)
    except (KafkaError, OSError, TimeoutError) as err:
        raise RetriableError(f"broker at {conn.bootstrap} not answering for lag "
                             f"({type(err).__name__}: {err or 'timed out'})") from None


async def _read(conn: KafkaConnection, groups: Collection[str] | None,
                timeout_s: float) -> LagSnapshot:
    ms = int(timeout_s * 1000)
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs(), request_timeout_ms=ms)
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), enable_auto_commit=False,
                                request_timeout_ms=ms)
    try:
        await admin.start()
        await consumer.start()
        if groups is None:
            listed = await admin.list_consumer_groups()
            # (group_id, protocol_type): "consumer" groups only, not Connect or others
            groups = sorted(str(g[0]) for g in listed if not g[1] or g[1] == "consumer")
        committed: dict[tuple[str, TopicPartition], int] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            for tp, meta in offsets.items():
                if meta.offset >= 0:
                    committed[(group, tp)] = meta.offset
        topics = await admin.list_topics()
        dlq_topics = sorted(t for t in topics if t.startswith(DLQ_PREFIX))
        dlq_parts = [TopicPartition(t, p) for t in dlq_topics
                     for p in (consumer.partitions_for_topic(t) or await _partitions(consumer, t))]
        wanted = sorted({tp for _, tp in committed} | set(dlq_parts))
        ends = await consumer.end_offsets(wanted) if wanted else {}
        starts = await consumer.beginning_offsets(dlq_parts) if dlq_parts else {}
        rows = [PartitionLag(group=g, topic=tp.topic, partition=tp.partition, committed=off,
                             end=ends[tp])
                for (g, tp), off in sorted(committed.items(),
                                           key=lambda kv: (kv[0][0], kv[0][1].topic,
                                                           kv[0][1].partition))]
        dlq = {t: sum(ends[tp] - starts[tp] for tp in dlq_parts if tp.topic == t)
               for t in dlq_topics}
        return LagSnapshot(at=datetime.now(UTC), partitions=rows, dlq=dlq)
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


class LagCollector(Collector):
    """Prometheus gauges from the latest snapshot the API's refresher keeps."""

    def __init__(self) -> None:
        self.snapshot: LagSnapshot | None = None
        self.error: str | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily("netral_consumer_lag", "Messages a group has not committed yet",
                                labels=["group", "topic", "partition"])
        committed = GaugeMetricFamily("netral_consumer_committed_offset",
                                      "A group's committed offset",
                                      labels=["group", "topic", "partition"])
        end = GaugeMetricFamily("netral_topic_end_offset", "A partition's log-end offset",
                                labels=["topic", "partition"])
        dlq = GaugeMetricFamily("netral_dlq_messages", "Messages kept in a dead-letter topic",
                                labels=["topic"])
        up = GaugeMetricFamily("netral_lag_read_up", "1 if the last lag read reached the broker")
        snap = self.snapshot
        if snap is not None:
            seen: set[tuple[str, int]] = set()
            for p in snap.partitions:
                labels = [p.group, p.topic, str(p.partition)]
                lag.add_metric(labels, p.lag)
                committed.add_metric(labels, p.committed)
                if (p.topic, p.partition) not in seen:
                    seen.add((p.topic, p.partition))
                    end.add_metric([p.topic, str(p.partition)], p.end)
            for topic, n in snap.dlq.items():
                dlq.add_metric([topic], n)
        up.add_metric([], 0 if self.error or snap is None else 1)
        yield from (lag, committed, end, dlq, up)


@dataclass(frozen=True)
class LagWatch:
    """When each group's lag went above the threshold, and which of those episodes alerted.

    Pure: :func:`watch` takes a snapshot and returns the new state and the groups to alert for
    now. One alert per episode: a group alerts once when its lag has stayed above
    ``threshold`` for ``after_s``, and again only after it came back under and went over again.
    """

    threshold: int
    after_s: float
    since: dict[str, datetime] = field(default_factory=dict)
    alerted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LagEpisode:
    group: str
    lag: int
    since: datetime


def watch(state: LagWatch, snapshot: LagSnapshot) -> tuple[LagWatch, list[LagEpisode]]:
    lags = snapshot.by_group()
    since = {g: state.since.get(g, snapshot.at) for g, lag in lags.items()
             if lag > state.threshold}
    alerted = {g for g in state.alerted if g in since}
    due = [LagEpisode(g, lags[g], t) for g, t in sorted(since.items())
           if g not in alerted and (snapshot.at - t).total_seconds() >= state.after_s]
    alerted |= {e.group for e in due}
    return LagWatch(state.threshold, state.after_s, since, frozenset(alerted)), due
