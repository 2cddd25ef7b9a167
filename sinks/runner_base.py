"""The consumer loop the SQL sink and the alert channels share: plain aiokafka, no Faust.

Per batch: fetch (read_committed, so aborted stream transactions never reach a sink), decode each
value (undecodable or invalid ones are dead-lettered with the reason), hand the decoded records to
the sink, send what it refused to the DLQ as well, wait for the DLQ's acks, and only then commit
the offsets. A crash anywhere before the commit redelivers the batch, which the sinks' idempotent
writes make harmless: at-least-once delivery, exactly-once effect.

A subclass says how to check its store (:meth:`SinkRunner._setup`), decode a value
(:meth:`SinkRunner._decode`) and handle a batch (:meth:`SinkRunner._handle`). An error in
``retry_batch_on`` raised while handling means the store is down: the whole batch is fetched again
(seek back) after a capped, jittered backoff that :meth:`SinkRunner.request_stop` cuts short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.errors import InvalidMessage, RetriableError
from schemas.kafka import KafkaConnection


class LoopConfig(Protocol):
    """What the loop reads of a runner's config (both runners' frozen dataclasses have it)."""

    @property
    def kafka(self) -> KafkaConnection: ...
    @property
    def group_id(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def poll_timeout_ms(self) -> int: ...
    @property
    def retry_initial_s(self) -> float: ...
    @property
    def retry_max_s(self) -> float: ...


@dataclass
class LoopStats:
    """Counters for logs, tests and benchmarks; runners extend it with their own."""

    batches: int = 0
    records: int = 0
    dead_lettered: int = 0
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    """The next offset to read, per partition, as last committed (how far the sink is)."""


class Backoff:
    """Capped exponential delays with jitter only downwards (half to full delay)."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._delay = initial_s

    def next_wait(self) -> float:
        """The wait before the next try; doubles the delay for the one after."""
        wait = self._delay * random.uniform(0.5, 1.0)
        self._delay = min(self._delay * 2, self.max_s)
        return wait

    def reset(self) -> None:
        self._delay = self.initial_s


ItemT = TypeVar("ItemT")
StatsT = TypeVar("StatsT", bound=LoopStats)
Letter = tuple[ConsumerRecord, BaseException]
"""A record for the DLQ and why."""


class SinkRunner(ABC, Generic[ItemT, StatsT]):
    """Consumes topics into a sink; ``start``, ``run`` (or ``run_once``), ``stop``."""

    name: ClassVar[str]
    """Prefix of the log lines (``sql``, ``alerts``)."""
    stage: ClassVar[str]
    """The DLQ stage named in each dead letter's headers."""
    redelivery_note: ClassVar[str] = "which changes nothing"
    """Why a redelivered batch is harmless, said when a commit fails."""
    retry_batch_on: ClassVar[tuple[type[Exception], ...]] = ()
    """Errors of :meth:`_handle` (or :meth:`_between_batches`) that retry the whole batch."""
    dead_letter_bugs: ClassVar[bool] = False
    """Dead-letter (and log with traceback) a value whose decoding fails unexpectedly."""

    def __init__(self, codec: AvroCodec, cfg: LoopConfig, stats: StatsT, *,
                 topics: Sequence[str], dlq: str,
                 consumer_options: Mapping[str, Any] | None = None) -> None:
        self.codec = codec
        self.stats = stats
        self._loop_cfg = cfg
        self._topics = tuple(topics)
        self._dlq = dlq
        self._consumer_options = dict(consumer_options or {})
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stop = asyncio.Event()
        self._backoff = Backoff(cfg.retry_initial_s, cfg.retry_max_s)
        self._log = logging.getLogger(type(self).__module__)

    # -- what a subclass says ----------------------------------------------------------------
    @abstractmethod
    async def _setup(self) -> None:
        """Check the store before joining the group (a wrong URL fails first)."""

    @abstractmethod
    def _decode(self, rec: ConsumerRecord) -> ItemT:
        """Decode and validate one value; raises InvalidMessage saying why not."""

    @abstractmethod
    async def _handle(self, items: list[tuple[ConsumerRecord, ItemT]]) -> list[Letter]:
        """Store a batch's decoded records; returns those refused for good, for the DLQ."""

    async def _between_batches(self) -> None:
        """Work due after each fetch, empty or not."""

    async def _before_close(self) -> None:
        """Work to finish at stop while the clients are still open."""

    async def _after_close(self) -> None:
        """Release the store once the clients are closed."""

    def _on_batch_retry(self, err: Exception) -> None:
        """Count a batch retried for one of ``retry_batch_on``."""

    def _on_dead_letter(self) -> None:
        """Count a dead letter in the sink's own metrics."""

    # -- the loop ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the store first, then start the DLQ producer and join the group."""
        await self._setup()
        kwargs = self._loop_cfg.kafka.aiokafka_kwargs()
        self._producer = AIOKafkaProducer(**kwargs, acks="all", enable_idempotence=True)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            *self._topics, **kwargs, group_id=self._loop_cfg.group_id,
            isolation_level="read_committed", enable_auto_commit=False,
            auto_offset_reset="earliest", **self._consumer_options,
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
        """Leave the group and close the clients; uncommitted records are redelivered later."""
        self._stop.set()
        try:
            await self._before_close()
        finally:
            try:
                if self._consumer is not None:
                    await self._consumer.stop()
                if self._producer is not None:
                    await self._producer.stop()
            finally:
                await self._after_close()

    async def run(self) -> StatsT:
        """Process batches until :meth:`request_stop`."""
        while not self._stop.is_set():
            await self.run_once()
        return self.stats

    async def run_once(self) -> int:
        """Fetch, handle and commit one batch; returns how many records it held."""
        assert self._consumer is not None, "call start() first"
        fetched = await self._consumer.getmany(timeout_ms=self._loop_cfg.poll_timeout_ms,
                                               max_records=self._loop_cfg.batch_size)
        count = sum(len(recs) for recs in fetched.values())
        try:
            if count:
                await self._batch(fetched)
            await self._between_batches()
        except self.retry_batch_on as err:
            self._on_batch_retry(err)
            for tp, recs in fetched.items():
                if recs and tp in self._consumer.assignment():
                    self._consumer.seek(tp, recs[0].offset)
            wait = self._backoff.next_wait()
            self._log.warning("%s: %s; retrying the same batch in %.1fs", self.name, err, wait)
            await self._pause(wait)
            return 0
        self._backoff.reset()
        return count

    async def _pause(self, seconds: float) -> None:
        """Sleep, woken early by :meth:`request_stop`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _batch(self, fetched: Mapping[TopicPartition, list[ConsumerRecord]]) -> None:
        items: list[tuple[ConsumerRecord, ItemT]] = []
        letters: list[Letter] = []
        for records in fetched.values():
            for rec in records:
                try:
                    items.append((rec, self._decode(rec)))
                except InvalidMessage as err:
                    letters.append((rec, err))
                except Exception as err:
                    if not self.dead_letter_bugs:
                        raise
                    self._log.exception("%s: unexpected error decoding %s[%d]@%d", self.name,
                                        rec.topic, rec.partition, rec.offset)
                    letters.append((rec, err))
        letters += await self._handle(items)  # a retry_batch_on error: nothing dead-lettered yet
        sends = [await self._dead_letter(rec, err) for rec, err in letters]
        if sends:
            try:
                await asyncio.gather(*sends)
            except KafkaError as err:
                raise RetriableError(f"DLQ {self._dlq} did not acknowledge: {err}") from err
        await self._commit({tp: recs[-1].offset + 1 for tp, recs in fetched.items() if recs})
        self.stats.batches += 1
        self.stats.records += sum(len(recs) for recs in fetched.values())

    async def _dead_letter(self, rec: ConsumerRecord, err: BaseException
                           ) -> asyncio.Future[object]:
        """Send the original key, bytes and headers plus the reason; log where, not the payload."""
        assert self._producer is not None
        letter = DeadLetter.of(err, stage=self.stage, topic=rec.topic, partition=rec.partition,
                               offset=rec.offset)
        self._log.warning("dlq %s: %s[%d]@%d %s: %s", self.stage, rec.topic, rec.partition,
                          rec.offset, letter.error_class, letter.reason[:300])
        self.stats.dead_lettered += 1
        self._on_dead_letter()
        kept = [(k, bytes(v)) for k, v in (rec.headers or ())]
        future: asyncio.Future[object] = await self._producer.send(
            self._dlq, key=rec.key, value=rec.value or b"", headers=kept + letter.headers())
        return future

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit what was handled; partitions lost in a rebalance are left to their new owner."""
        assert self._consumer is not None
        owned = {tp: off for tp, off in offsets.items() if tp in self._consumer.assignment()}
        if not owned:
            return
        try:
            await self._consumer.commit(owned)
        except (CommitFailedError, IllegalStateError) as err:
            self._log.warning("%s: offsets not committed (%s); the batch will be redelivered, "
                              "%s", self.name, err, self.redelivery_note)
            return
        self.stats.committed.update(owned)
