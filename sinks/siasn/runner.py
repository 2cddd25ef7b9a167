"""The SIASN adapter's Kafka loop: orders in, outcomes out, offsets committed with the outcomes.

Per batch: apply every order (orders for different NIPs concurrently, each NIP's in offset
order), then in ONE Kafka transaction produce each ``SiasnOrderResult`` (key NIP), and for a
FAILED order also the original bytes to the DLQ and a CRITICAL alert, and commit the consumed
offsets (``send_offsets_to_transaction``). So an offset is committed only once its outcome is
recorded, and a crash anywhere before the commit aborts the lot: the restarted adapter applies the
same orders again, which SIASN's idempotency keys turn into no new effect.

One adapter per transactional id: a restarted instance with the same id fences the old one and
aborts its open transaction (``init_transactions`` on start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced
from pydantic import ValidationError

from schemas import regions
from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.errors import ConfigError, FatalError, HubError, InvalidMessage
from schemas.kafka import KafkaConnection
from schemas.models.enums import OrderOutcome, Severity
from schemas.models.hub import Alert, SiasnOrder, SiasnOrderResult
from schemas.nip import mask_nip
from schemas.topics import ALERTS, ORDERS_SIASN, ORDERS_SIASN_RESULTS, DlqStage, dlq_topic

from .adapter import SiasnAdapter, SiasnOrderFailed
from .client import SiasnPort

log = logging.getLogger(__name__)

ALERT_RULE = "siasn_order_failed"
MAX_RECORD_FAILURES = 5  # consecutive failed transactions before the producer is deemed lost
NATIONAL_REGION = "31"  # DKI Jakarta, seat of BKN: orders carry no region (see RunnerOptions)


@dataclass(frozen=True)
class AdapterTopics:
    """Where the adapter reads and writes; tests and staging override the names."""

    orders: str = ORDERS_SIASN
    results: str = ORDERS_SIASN_RESULTS
    dlq: str = dlq_topic(DlqStage.SIASN)
    alerts: str = ALERTS


@dataclass(frozen=True)
class RunnerOptions:
    """Tunables of the loop.

    ``alert_region``: a ``SiasnOrder`` has no region, so failure alerts go to this region's
    Satgas (the national Satgas receives every alert anyway). ``max_poll_interval_ms`` must outlast
    the client's longest hold during a SIASN outage, or the group would rebalance under us.
    """

    transactional_id: str | None = None  # default: "<group_id>-tx"
    batch_size: int = 100
    concurrency: int = 8
    alert_region: str = NATIONAL_REGION
    max_poll_interval_ms: int = 45 * 60 * 1000
    poll_timeout_ms: int = 500
    topics: AdapterTopics = field(default_factory=AdapterTopics)


@dataclass
class AdapterStats:
    """Counts since start, logged at stop and read by tests and the benchmark."""

    orders: int = 0
    confirmed: int = 0
    already_in_effect: int = 0
    failed: int = 0
    dead_letters: int = 0
    transactions: int = 0
    batches_redone: int = 0


@dataclass(frozen=True)
class _Out:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class _Processor:
    """Decode, apply and encode one batch; no Kafka I/O, so a batch can be redone freely."""

    def __init__(self, adapter: SiasnAdapter, codec: AvroCodec, options: RunnerOptions,
                 stats: AdapterStats) -> None:
        self.adapter = adapter
        self.codec = codec
        self.options = options
        self.topics = options.topics
        self.stats = stats
        self.province = regions.province_of(options.alert_region)

    async def outputs(self, records: Sequence[ConsumerRecord]) -> list[_Out]:
        """The records to produce for ``records``, in offset order per partition."""
        chains: dict[tuple[int, bytes | None], list[ConsumerRecord]] = defaultdict(list)
        for rec in records:
            chains[(rec.partition, rec.key)].append(rec)
        done: dict[tuple[int, int], list[_Out]] = {}
        gate = asyncio.Semaphore(self.options.concurrency)

        async def run(chain: list[ConsumerRecord]) -> None:
            for rec in chain:  # one NIP's orders strictly in order: BLOCK before its UNBLOCK
                async with gate:
                    done[(rec.partition, rec.offset)] = await self.one(rec)

        try:
            async with asyncio.TaskGroup() as tg:
                for chain in chains.values():
                    tg.create_task(run(chain))
        except ExceptionGroup as group:  # stop on the first fatal error, as a plain exception
            first = next((e for e in group.exceptions if isinstance(e, HubError)),
                         group.exceptions[0])
            raise first from None
        return [out for rec in records for out in done[(rec.partition, rec.offset)]]

    async def one(self, rec: ConsumerRecord) -> list[_Out]:
        where = f"{rec.topic}[{rec.partition}]@{rec.offset}"
        try:
            decoded = self.codec.decode(rec.value, expect=SiasnOrder.avro_name)
            order = SiasnOrder.from_fastavro(decoded.value)
        except InvalidMessage as err:
            log.error("%s: undecodable SIASN order, to the DLQ: %s", where, err)
            return [self._dead_letter(rec, err)]
        except ValidationError as err:
            first = err.errors()[0]
            reason = InvalidMessage(f"invalid SiasnOrder: {'.'.join(map(str, first['loc']))}: "
                                    f"{first['msg']}")
            log.error("%s: %s, to the DLQ", where, reason)
            return [self._dead_letter(rec, reason)]
        result = await self.adapter.apply(order)
        self.stats.orders += 1
        outs = [_Out(self.topics.results, order.nip.encode(),
                     self.codec.encode_record(result, topic=self.topics.results), [])]
        if result.outcome is OrderOutcome.CONFIRMED:
            self.stats.confirmed += 1
        elif result.outcome is OrderOutcome.ALREADY_IN_EFFECT:
            self.stats.already_in_effect += 1
        else:
            self.stats.failed += 1
            log.error("%s: order %s FAILED, to the DLQ with an alert", where, order.order_id)
            outs.append(self._dead_letter(rec, SiasnOrderFailed(result.detail or "failed")))
            alert = self._alert(order, result)
            outs.append(_Out(self.topics.alerts, alert.region_code.encode(),
                             self.codec.encode_record(alert, topic=self.topics.alerts), []))
        return outs

    def _dead_letter(self, rec: ConsumerRecord, err: BaseException) -> _Out:
        self.stats.dead_letters += 1
        why = DeadLetter.of(err, stage=DlqStage.SIASN.value, topic=rec.topic,
                            partition=rec.partition, offset=rec.offset)
        return _Out(self.topics.dlq, rec.key, rec.value or b"",
                    [*list(rec.headers or ()), *why.headers()])

    def _alert(self, order: SiasnOrder, result: SiasnOrderResult) -> Alert:
        return Alert(
            alert_id=f"{ALERT_RULE}:{order.order_id}",
            rule=ALERT_RULE,
            severity=Severity.CRITICAL,
            region_code=self.options.alert_region,
            province_code=self.province,
            case_id=order.case_id,
            nip=order.nip,
            title=f"SIASN {order.action.value} order not carried out for {mask_nip(order.nip)}",
            detail=(f"Order {order.order_id} (case {order.case_id}, {order.action.value}, "
                    f"{order.scope.value}) failed after {result.attempts} attempts: "
                    f"{result.detail}. It is in {self.topics.dlq}; replay it with "
                    f"`netral dlq replay --stage siasn` once SIASN accepts it.")[:5000],
            at=result.at,
            dedupe_key=f"{ALERT_RULE}:{order.order_id}",
        )


def _offsets(records: Sequence[ConsumerRecord]) -> tuple[dict[TopicPartition, int],
                                                         dict[TopicPartition, int]]:
    """(first offset, next offset to commit) per partition of a batch."""
    first: dict[TopicPartition, int] = {}
    nxt: dict[TopicPartition, int] = {}
    for rec in records:
        tp = TopicPartition(rec.topic, rec.partition)
        first[tp] = min(first.get(tp, rec.offset), rec.offset)
        nxt[tp] = max(nxt.get(tp, 0), rec.offset + 1)
    return first, nxt


async def _record(producer: AIOKafkaProducer, outs: list[_Out],
                  offsets: dict[TopicPartition, int], group_id: str) -> None:
    """Outcomes, dead letters, alerts and the consumed offsets: all or nothing."""
    await producer.begin_transaction()
    try:
        futures = [await producer.send(o.topic, value=o.value, key=o.key, headers=o.headers)
                   for o in outs]
        await asyncio.gather(*futures)
        await producer.send_offsets_to_transaction(offsets, group_id)
    except BaseException:
        with contextlib.suppress(KafkaError):
            await producer.abort_transaction()
        raise
    await producer.commit_transaction()


async def run_adapter(
    conn: KafkaConnection,
    client: SiasnPort,
    codec: AvroCodec,
    group_id: str,
    stop_event: asyncio.Event,
    *,
    options: RunnerOptions | None = None,
    on_batch: Callable[[AdapterStats], None] | None = None,
) -> AdapterStats:
    """Consume orders until ``stop_event``; raises ConfigError/FatalError, uncommitted, to stop.

    A stop during a batch cancels the in-flight SIASN calls and commits nothing for that batch:
    the next run applies it again, which the idempotency keys make harmless.
    """
    options = options or RunnerOptions()
    if not regions.is_known(options.alert_region):
        raise ConfigError(f"alert region {options.alert_region!r} is no Kemendagri region code")
    stats = AdapterStats()
    processor = _Processor(SiasnAdapter(client), codec, options, stats)
    tx_id = options.transactional_id or f"{group_id}-tx"
    consumer = AIOKafkaConsumer(
        options.topics.orders, **conn.aiokafka_kwargs(), group_id=group_id,
        isolation_level="read_committed", enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_interval_ms=options.max_poll_interval_ms,
    )
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), transactional_id=tx_id,
                                enable_idempotence=True, acks="all")
    await producer.start()  # fences an earlier instance with this id, aborting its transaction
    try:
        await consumer.start()
        try:
            await _loop(consumer, producer, processor, group_id, tx_id, stop_event, stats,
                        on_batch, options)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
    log.info("SIASN adapter stopped: %s", stats)
    return stats


async def _loop(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, processor: _Processor,
                group_id: str, tx_id: str, stop_event: asyncio.Event, stats: AdapterStats,
                on_batch: Callable[[AdapterStats], None] | None,
                options: RunnerOptions) -> None:
    stopping = asyncio.create_task(stop_event.wait())
    failures = 0
    try:
        while not stop_event.is_set():
            batch = await consumer.getmany(timeout_ms=options.poll_timeout_ms,
                                           max_records=options.batch_size)
            records = [rec for recs in batch.values() for rec in recs]
            if not records:
                continue
            work = asyncio.create_task(processor.outputs(records))
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():  # stop asked mid-batch: nothing of it is committed
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                return
            outs = work.result()  # ConfigError / FatalError propagate, uncommitted
            first, nxt = _offsets(records)
            try:
                await _record(producer, outs, nxt, group_id)
            except ProducerFenced as err:
                raise FatalError(f"another SIASN adapter took over transactional id {tx_id}: "
                                 f"stopping") from err
            except KafkaError as err:
                stats.batches_redone += 1
                failures += 1
                if failures > MAX_RECORD_FAILURES:
                    raise FatalError(f"recording outcomes failed {failures} times in a row "
                                     f"({type(err).__name__}: {err}): stopping") from err
                log.warning("recording a batch failed (%s: %s); applying it again",
                            type(err).__name__, err)
                for tp, offset in first.items():
                    consumer.seek(tp, offset)
                continue
            failures = 0
            stats.transactions += 1
            if on_batch is not None:
                on_batch(stats)
    finally:
        stopping.cancel()
