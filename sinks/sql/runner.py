"""The SQL sink's Kafka loop: plain aiokafka, no Faust (the sink needs no state of its own).

Per batch: fetch (read_committed, so aborted stream transactions never reach the record), decode
with the codec and validate with the topic's model, buffer, flush in one transaction, send refused
records to ``netral.dlq.sql`` and wait for the broker's acks, and only then commit the offsets.
A crash anywhere before the commit means the batch is delivered again, which the idempotent writes
make harmless; so the record is at-least-once in delivery and exactly-once in effect. The loop
is :class:`sinks.runner_base.SinkRunner`, shared with the alert channels.

A record that cannot be decoded or validated goes to the DLQ with the reason and the loop moves on.
A database outage holds the batch: the loop retries the same flush with capped, jittered backoff
and does not fetch more; if that outlasts ``max.poll.interval.ms`` the group rebalances and the
uncommitted records are simply redelivered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage, explain
from schemas.kafka import KafkaConnection
from schemas.models import (
    Alert,
    AvroRecord,
    CaseRecord,
    CaseTransition,
    SiasnOrder,
    SiasnOrderResult,
)
from schemas.topics import (
    ALERTS,
    CASE_EVENTS,
    CASES,
    ORDERS_SIASN,
    ORDERS_SIASN_RESULTS,
    DlqStage,
    dlq_topic,
)

from ..runner_base import Backoff, Letter, LoopStats, SinkRunner
from .sink import FlushResult, RecordMeta, SqlRecord, SqlSink, SqlWriteError

log = logging.getLogger(__name__)

STAGE = DlqStage.SQL.value
SQL_TOPICS: Mapping[str, type[AvroRecord]] = MappingProxyType({
    CASES: CaseRecord,
    CASE_EVENTS: CaseTransition,
    ORDERS_SIASN: SiasnOrder,
    ORDERS_SIASN_RESULTS: SiasnOrderResult,
    ALERTS: Alert,
})
"""Each topic the national record reads, and the one model its values must validate as."""


def decode_record(codec: AvroCodec, topic: str, value: bytes | None, *,
                  topics: Mapping[str, type[AvroRecord]] = SQL_TOPICS) -> SqlRecord:
    """Decode and validate one value as its topic's model; InvalidMessage says why not.

    Also the check ``netral dlq replay`` can run for the ``sql`` stage before re-sending.
    """
    model = topics.get(topic)
    if model is None:
        raise InvalidMessage(f"the SQL sink does not read topic {topic!r}")
    decoded = codec.decode(value, expect=model.avro_name)
    try:
        record = model.from_fastavro(decoded.value)
    except ValidationError as err:
        raise InvalidMessage(f"invalid {model.__name__}: {explain(err)}") from None
    if not isinstance(record, SqlRecord):
        raise InvalidMessage(f"the SQL sink does not store {model.__name__}")
    return record


@dataclass(frozen=True)
class SqlRunnerConfig:
    """How the loop talks to Kafka; built by the shell from the settings."""

    kafka: KafkaConnection
    group_id: str = "netral-sql-sink"
    batch_size: int = 1000
    poll_timeout_ms: int = 500
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    topics: Mapping[str, type[AvroRecord]] = field(default_factory=lambda: SQL_TOPICS)
    fetch_max_bytes: int = 16 * 1024 * 1024


@dataclass
class SqlRunnerStats(LoopStats):
    """Counters for logs, tests and benchmarks."""

    written: dict[str, int] = field(default_factory=dict)
    write_retries: int = 0


class SqlSinkRunner(SinkRunner[SqlRecord, SqlRunnerStats]):
    """Consumes the record's topics into :class:`SqlSink`; ``start``, ``run``, ``stop``."""

    name = "sql"
    stage = STAGE
    dead_letter_bugs = True  # a bug must not stop the record: DLQ it, loudly

    def __init__(self, sink: SqlSink, codec: AvroCodec, cfg: SqlRunnerConfig) -> None:
        super().__init__(codec, cfg, SqlRunnerStats(), topics=list(cfg.topics),
                         dlq=dlq_topic(STAGE), consumer_options={
                             "max_partition_fetch_bytes": cfg.fetch_max_bytes,
                             "fetch_max_bytes": cfg.fetch_max_bytes * 4})
        self.sink = sink
        self.cfg = cfg

    async def _setup(self) -> None:
        await self.sink.setup()

    async def _after_close(self) -> None:
        await self.sink.close()

    def _decode(self, rec: ConsumerRecord) -> SqlRecord:
        return decode_record(self.codec, rec.topic, rec.value, topics=self.cfg.topics)

    async def _handle(self, items: list[tuple[ConsumerRecord, SqlRecord]]) -> list[Letter]:
        """Buffer and flush in one transaction; the refused records go back for the DLQ."""
        originals: dict[tuple[str, int, int], ConsumerRecord] = {}
        for rec, record in items:
            originals[(rec.topic, rec.partition, rec.offset)] = rec
            self.sink.add(record, RecordMeta(rec.topic, rec.partition, rec.offset, rec.key))
        result = await self._flush()
        for table, n in result.written.items():
            self.stats.written[table] = self.stats.written.get(table, 0) + n
        return [(originals[(r.meta.topic, r.meta.partition, r.meta.offset)], r.error)
                for r in result.rejected]

    async def _flush(self) -> FlushResult:
        """Flush, retrying the same batch while the database is unavailable (until stopped)."""
        backoff = Backoff(self.cfg.retry_initial_s, self.cfg.retry_max_s)
        while True:
            try:
                return await self.sink.flush()
            except SqlWriteError as err:
                if self._stop.is_set():
                    raise
                self.stats.write_retries += 1
                wait = backoff.next_wait()
                log.warning("sql: %s; retrying the same batch in %.1fs", err, wait)
                await self._pause(wait)
