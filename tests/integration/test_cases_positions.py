"""The cases stage reads its inputs from its own position, whatever its group committed.

Faust moved the group's commit past records no stream had taken in thirteen ways
(streams/rebalance.py). Here that is done on purpose: the group's offset on ``netral.events``
is committed past events the cases stage never took, once before its first start and once
between two runs. A real worker (cases stage only) must still put every event in a case, and
say in its log that it read the partition again from its position. Events deleted by retention
before the stage took them cannot be read again: it names them in its log and goes on. Its own
broker, so ``netral.events`` and ``netral.cases`` hold only this module's records.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import KafkaError

from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import CanonicalEvent
from schemas.topics import CASES, EVENTS
from tests.fixtures.kafka_tools import consume_until, produce
from tests.fixtures.national_record import latest_cases
from tests.fixtures.waiting import wait_until
from tests.fixtures.worker_process import WorkerProcess
from tests.unit.test_rules_factories import at, person, report

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
EVENTS_0 = TopicPartition(EVENTS, 0)


def reports(first: int, count: int) -> list[CanonicalEvent]:
    """One report per person and case: ``count`` events, ``count`` cases."""
    return [report(f"pos-{i:04d}", at("2024-11-04") + timedelta(minutes=i), ref=f"REF-{i:04d}",
                   who=person(nip=f"198503152010011{i + 1:03d}", name=f"Pegawai {i:04d}"))
            for i in range(first, first + count)]


async def commit_group_offset(conn: KafkaConnection, group: str, offset: int) -> bool:
    """Commit ``group``'s offset on netral.events[0] as a consumer outside the group would
    (refused while the group has members: then False)."""
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), group_id=group,
                                enable_auto_commit=False)
    consumer.assign([EVENTS_0])
    await consumer.start()
    try:
        await consumer.commit({EVENTS_0: offset})
        return await consumer.committed(EVENTS_0) == offset
    except KafkaError:
        return False
    finally:
        await consumer.stop()


def refs_in(records: list[ConsumerRecord]) -> set[str]:
    return {ref for case in latest_cases(records).values() for ref in case.case_refs}


def test_a_commit_past_records_never_taken_loses_none(private_broker: KafkaConnection,
                                                      tmp_path: Path) -> None:
    first, second = reports(0, 40), reports(40, 20)
    worker = WorkerProcess(private_broker, tmp_path, prefix="netral-pos",
                           NETRAL_WORKER_STAGES="cases")
    asyncio.run(produce(private_broker, EVENTS, [
        (b"k", CODEC.encode_record(e, topic=EVENTS), None) for e in first]))
    # 1. Before the first start: the group "has taken" 0..24, the stage none of them.
    assert asyncio.run(commit_group_offset(private_broker, worker.app_id, 25))
    worker.start()
    try:
        wanted = {f"REF-{i:04d}" for i in range(40)}
        asyncio.run(consume_until(private_broker, [CASES], lambda rs: wanted <= refs_in(rs),
                                  timeout_s=120))
        # a stage that never took a record starts from the partition's beginning
        assert "partition=0) read again from 0, as its stage asked" in worker.log(), \
            worker.log()[-4000:]
        worker.stop()  # SIGTERM: it commits what it took (40) and leaves the group

        # 2. Between two runs: 20 more events, the group committed past 15 of them.
        asyncio.run(produce(private_broker, EVENTS, [
            (b"k", CODEC.encode_record(e, topic=EVENTS), None) for e in second]))
        asyncio.run(wait_until(lambda: commit_group_offset(private_broker, worker.app_id, 55),
                               60, "the group's offset committed from outside"))
        worker.start()
        wanted |= {f"REF-{i:04d}" for i in range(40, 60)}
        records = asyncio.run(consume_until(private_broker, [CASES],
                                            lambda rs: wanted <= refs_in(rs), timeout_s=120))
        assert "reading again from 40" in worker.log(), worker.log()[-4000:]
        assert refs_in(records) == wanted and len(latest_cases(records)) == 60
        worker.stop()

        # 3. Records deleted (retention) before the stage took them: named, and it goes on.
        asyncio.run(produce(private_broker, EVENTS, [
            (b"k", CODEC.encode_record(e, topic=EVENTS), None) for e in reports(60, 10)]))
        asyncio.run(delete_records_before(private_broker, 65))
        worker.start()
        kept = {f"REF-{i:04d}" for i in range(65, 70)}
        records = asyncio.run(consume_until(private_broker, [CASES],
                                            lambda rs: kept <= refs_in(rs), timeout_s=120))
        assert refs_in(records) == wanted | kept
        assert "offsets 60..64 were deleted (retention) before the stage took them" \
            in worker.log(), worker.log()[-4000:]
    finally:
        worker.stop()


async def delete_records_before(conn: KafkaConnection, offset: int) -> None:
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs())
    await admin.start()
    try:
        await admin.delete_records({EVENTS_0: RecordsToDelete(offset)})
    finally:
        await admin.close()
