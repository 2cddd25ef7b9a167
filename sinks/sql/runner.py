"""The SQL sink's Kafka loop: plain aiokafka, no Faust (the sink needs no state of its own).

Per batch: fetch (read_committed, so aborted stream transactions never reach the record), decode
with the codec and validate with the topic's model, buffer, flush in one transaction, send refused
records to ``netral.dlq.sql`` and wait for the broker's acks, and only then commit the offsets.
A crash anywhere before the commit means the batch is delivered again, which the idempotent writes
make harmless; so the record is at-least-once in delivery and exactly-once in effect.

A record that cannot be decoded or validated goes to the DLQ with the reason and the loop moves on.
A database outage holds the batch: the loop retries the same flush with capped, jittered backoff
and does not fetch more; if that outlasts ``max.poll.interval.ms`` the group rebalances and the
uncommitted records are simply redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import ValidationError

from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.errors import InvalidMessage, RetriableError, explain
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
class SqlRunnerStats:
    """Counters for logs, tests and benchmarks."""

    batches: int = 0
    records: int = 0
    written: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    write_retries: int = 0
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    """The next offset to read, per partition, as last committed (how far the record is)."""


class SqlSinkRunner:
    """Consumes the record's topics into :class:`SqlSink`; ``start``, ``run``, ``stop``."""

    def __init__(self, sink: SqlSink, codec: AvroCodec, cfg: SqlRunnerConfig) -> None:
        self.sink = sink
        self.codec = codec
        self.cfg = cfg
        self.stats = SqlRunnerStats()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Check the database first (a wrong URL fails before joining the group), then Kafka."""
        await self.sink.setup()
        kwargs = self.cfg.kafka.aiokafka_kwargs()
        self._producer = AIOKafkaProducer(**kwargs, acks="all", enable_idempotence=True)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            *self.cfg.topics, **kwargs, group_id=self.cfg.group_id,
            isolation_level="read_committed", enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=self.cfg.fetch_max_bytes,
            fetch_max_bytes=self.cfg.fetch_max_bytes * 4,
        )
        try:
            await self._consumer.start()
        except BaseException:
            await self._producer.stop()
            raise

    def request_stop(self) -> None:
        """Finish the current batch, then leave :meth:`run` (safe from a signal handler)."""
        self._stop.set()

    async def stop(self) -> None:
        """Leave the group and close the clients; unwritten records are redelivered later."""
        self._stop.set()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self.sink.close()

    async def run(self) -> SqlRunnerStats:
        """Process batches until :meth:`request_stop`."""
        while not self._stop.is_set():
            await self.run_once()
        return self.stats

    async def run_once(self) -> int:
        """Fetch, write and commit one batch; returns how many records it held."""
        assert self._consumer is not None, "call start() first"
        fetched = await self._consumer.getmany(timeout_ms=self.cfg.poll_timeout_ms,
                                               max_records=self.cfg.batch_size)
        if not fetched:
            return 0
        originals: dict[tuple[str, int, int], ConsumerRecord] = {}
        sends: list[asyncio.Future[object]] = []
        count = 0
        for records in fetched.values():
            for rec in records:
                count += 1
                originals[(rec.topic, rec.partition, rec.offset)] = rec
                meta = RecordMeta(rec.topic, rec.partition, rec.offset, rec.key)
                try:
                    record = decode_record(self.codec, rec.topic, rec.value,
                                           topics=self.cfg.topics)
                except InvalidMessage as err:
                    sends.append(await self._dead_letter(rec, err))
                    continue
                except Exception as err:  # a bug must not stop the record: DLQ it, loudly
                    log.exception("sql: unexpected error decoding %s[%d]@%d",
                                  rec.topic, rec.partition, rec.offset)
                    sends.append(await self._dead_letter(rec, err))
                    continue
                self.sink.add(record, meta)
        result = await self._flush()
        for refused in result.rejected:
            m = refused.meta
            sends.append(await self._dead_letter(originals[(m.topic, m.partition, m.offset)],
                                                 refused.error))
        if sends:
            try:
                await asyncio.gather(*sends)
            except KafkaError as err:
                raise RetriableError(f"DLQ {dlq_topic(STAGE)} did not acknowledge: {err}"
                                     ) from err
        await self._commit({tp: recs[-1].offset + 1 for tp, recs in fetched.items() if recs})
        self.stats.batches += 1
        self.stats.records += count
        for table, n in result.written.items():
            self.stats.written[table] = self.stats.written.get(table, 0) + n
        return count

    async def _flush(self) -> FlushResult:
        """Flush, retrying the same batch while the database is unavailable (until stopped)."""
        delay = self.cfg.retry_initial_s
        while True:
            try:
                return await self.sink.flush()
            except SqlWriteError as err:
                if self._stop.is_set():
                    raise
                self.stats.write_retries += 1
                wait = delay * random.uniform(0.5, 1.0)  # jitter only
                log.warning("sql: %s; retrying the same batch in %.1fs", err, wait)
                with contextlib.suppress(TimeoutError):  # woken early by request_stop()
                    await asyncio.wait_for(self._stop.wait(), timeout=wait)
                delay = min(delay * 2, self.cfg.retry_max_s)

    async def _dead_letter(self, rec: ConsumerRecord, err: BaseException
                           ) -> asyncio.Future[object]:
        """Send the original key, bytes and headers plus the reason; log where, not the payload."""
        assert self._producer is not None
        letter = DeadLetter.of(err, stage=STAGE, topic=rec.topic, partition=rec.partition,
                               offset=rec.offset)
        log.warning("dlq %s: %s[%d]@%d %s: %s", STAGE, rec.topic, rec.partition, rec.offset,
                    letter.error_class, letter.reason[:300])
        self.stats.dead_lettered += 1
        kept = [(k, bytes(v)) for k, v in (rec.headers or ())]
        future: asyncio.Future[object] = await self._producer.send(
            dlq_topic(STAGE), key=rec.key, value=rec.value or b"", headers=kept + letter.headers())
        return future

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit what was written; partitions lost in a rebalance are left to their new owner."""
        assert self._consumer is not None
        owned = {tp: off for tp, off in offsets.items() if tp in self._consumer.assignment()}
        if not owned:
            return
        try:
            await self._consumer.commit(owned)
        except (CommitFailedError, IllegalStateError) as err:
            log.warning("sql: offsets not committed (%s); the batch will be redelivered, "
                        "which changes nothing", err)
            return
        self.stats.committed.update(owned)
