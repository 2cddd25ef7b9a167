"""Transaction markers in the stages' inputs are read over, not waited at.

``netral dlq replay`` re-sends dead letters to their source topics (the raw topics,
``netral.events``) in a Kafka transaction, whose commit marker takes an offset that is no
record. The worker took every offset of those topics for a record: the group's commit waited
at the marker for ever (seen on the session worker: ``netral.raw.bawaslu[3]`` committed at 1,
acked 2..1553, sought back every 20 s), and the cases stage, whose next position was the
marker, read the partition again and again without ever taking the record after it. Here a
real worker (normalize + cases) gets records written in transactions and then plain ones, on
one partition of each input; every record must reach the national record and the group's
commit the end of each partition. Its own broker, so the topics hold only this module's.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.topics import CASES, EVENTS, Agency, raw_topic
from tests.factories import encode, report
from tests.fixtures.kafka_tools import consume_until
from tests.fixtures.waiting import wait_until
from tests.fixtures.worker_process import WorkerProcess
from tests.integration.test_cases_positions import refs_in, reports

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
RAW = raw_topic(Agency.BAWASLU)
RAW_0, EVENTS_0 = TopicPartition(RAW, 0), TopicPartition(EVENTS, 0)


async def produce_to(conn: KafkaConnection, tp: TopicPartition,
                     records: list[tuple[bytes, bytes]], *, transaction: bool) -> None:
    """Write ``records`` to ``tp``; with ``transaction``, in one committed transaction (as
    ``netral dlq replay`` does), whose marker follows them."""
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all", enable_idempotence=True,
                                transactional_id=f"test-markers-{uuid.uuid4().hex[:6]}"
                                if transaction else None)
    await producer.start()
    try:
        if transaction:
            async with producer.transaction():
                for key, value in records:
                    await producer.send(tp.topic, value=value, key=key, partition=tp.partition)
        else:
            await asyncio.gather(*[await producer.send(tp.topic, value=value, key=key,
                                                       partition=tp.partition)
                                   for key, value in records])
    finally:
        await producer.stop()


async def committed_and_end(conn: KafkaConnection, group: str, tps: list[TopicPartition]
                            ) -> dict[TopicPartition, tuple[int | None, int]]:
    """Per partition: ``group``'s committed offset, and the partition's end offset."""
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs())
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        ends = await consumer.end_offsets(tps)
        return {tp: (offsets[tp].offset if tp in offsets else None, ends[tp]) for tp in tps}
    finally:
        await consumer.stop()
        await admin.close()


def test_records_after_a_transaction_marker_are_taken_and_committed(
        private_broker: KafkaConnection, tmp_path: Path) -> None:
    raw = [report() for _ in range(6)]
    events = reports(0, 10)
    # each input partition: records in a transaction (then its marker), then plain records
    asyncio.run(produce_to(private_broker, RAW_0, [
        (r.source_id.encode(), encode(CODEC, r)) for r in raw[:3]], transaction=True))
    asyncio.run(produce_to(private_broker, EVENTS_0, [
        (b"k", CODEC.encode_record(e, topic=EVENTS)) for e in events[:5]], transaction=True))
    asyncio.run(produce_to(private_broker, EVENTS_0, [
        (b"k", CODEC.encode_record(e, topic=EVENTS)) for e in events[5:]], transaction=False))
    worker = WorkerProcess(private_broker, tmp_path, prefix="netral-markers",
                           NETRAL_WORKER_STAGES="normalize,cases")
    worker.start()
    try:
        # the raw partition's marker comes while the worker reads
        asyncio.run(produce_to(private_broker, RAW_0, [
            (r.source_id.encode(), encode(CODEC, r)) for r in raw[3:]], transaction=False))
        normalized = {f"bawaslu:{r.source_id}" for r in raw}
        asyncio.run(consume_until(private_broker, [EVENTS], lambda rs: normalized <= {
            CODEC.decode(r.value).value["event_id"] for r in rs}, timeout_s=120))
        wanted = {e.case_ref for e in events}
        records = asyncio.run(consume_until(private_broker, [CASES],
                                            lambda rs: wanted <= refs_in(rs), timeout_s=120))
        assert wanted <= refs_in(records)
        assert "hold no record" in worker.log(), worker.log()[-4000:]

        async def committed_to_the_end() -> bool:
            state = await committed_and_end(private_broker, worker.app_id, [RAW_0, EVENTS_0])
            return all(committed == end for committed, end in state.values())

        asyncio.run(wait_until(committed_to_the_end, 60, lambda: worker.log()[-4000:]))
        # the markers read over at once: the watchdog never took a partition for stuck
        assert "sought back to it" not in worker.log(), worker.log()[-4000:]
    finally:
        worker.stop()


RAW_1 = TopicPartition(RAW, 1)


def test_a_marker_at_the_end_of_a_partition_is_committed_over_not_sought_again(
        private_broker: KafkaConnection, tmp_path: Path) -> None:
    """A partition whose last offset is a transaction's marker (``netral dlq replay`` was the
    last to write it): nothing will come after it to prove it is no record. The watchdog took
    the partition for stuck behind records it was never handed, sought it back to the marker
    every two intervals and warned each time, for as long as nothing else was written there;
    and the group's lag stayed at 1."""
    raw = [report() for _ in range(3)]
    asyncio.run(produce_to(private_broker, RAW_1, [
        (r.source_id.encode(), encode(CODEC, r)) for r in raw], transaction=True))
    worker = WorkerProcess(private_broker, tmp_path, prefix="netral-markers-end",
                           NETRAL_WORKER_STAGES="normalize", NETRAL_WORKER_HOLE_CHECK_S="1")
    worker.start()
    try:
        normalized = {f"bawaslu:{r.source_id}" for r in raw}
        asyncio.run(consume_until(private_broker, [EVENTS], lambda rs: normalized <= {
            CODEC.decode(r.value).value["event_id"] for r in rs}, timeout_s=120))

        last: list[tuple[int | None, int]] = []

        async def committed_to_the_end() -> bool:
            last[:] = (await committed_and_end(private_broker, worker.app_id, [RAW_1])).values()
            return last[0][0] == last[0][1]

        asyncio.run(wait_until(committed_to_the_end, 30, lambda: f"(committed, end) {last}\n"
                               + worker.log()[-3000:]))
        assert f"{RAW}', partition=1" not in "".join(
            line for line in worker.log().splitlines() if "sought back to it" in line), \
            worker.log()[-3000:]
    finally:
        worker.stop()
