"""Dead-letter operations: list, show and replay what the stages rejected.

Replay is idempotent: a consumer group per stage (``netral-dlq-replay-<stage>``) remembers what
was replayed, and each re-send is committed in one Kafka transaction with that group's offsets, so
a crash mid-replay or a second run never sends a record twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition

from schemas.dlq import H_REPLAYED_FROM, DeadLetter
from schemas.errors import ConfigError, InvalidMessage
from schemas.kafka import KafkaConnection
from schemas.topics import DlqStage, dlq_topic

from .kafka_admin import FETCH_BYTES, drain, read_to_end, reading_consumer

Check = Callable[[str, bytes | None, bytes], None]
"""Raises InvalidMessage if a record would still be rejected by its stage."""


@dataclass(frozen=True)
class Letter:
    """One DLQ record: where it sits in the DLQ, the original bytes, and why it was rejected."""

    id: str  # "<stage>:<partition>:<offset>"
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    why: DeadLetter

    @classmethod
    def of(cls, stage: str, rec: ConsumerRecord) -> Letter:
        headers = list(rec.headers or [])
        return cls(id=f"{stage}:{rec.partition}:{rec.offset}", key=rec.key, value=rec.value or b"",
                   headers=headers, why=DeadLetter.from_headers(headers))

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it was dead-lettered (the reason removed)."""
        return [(k, v) for k, v in self.headers if not k.startswith("netral.")]


def parse_id(letter_id: str) -> tuple[str, int, int]:
    try:
        stage, partition, offset = letter_id.split(":")
        return DlqStage(stage).value, int(partition), int(offset)
    except ValueError:
        raise ConfigError(
            f"bad DLQ id {letter_id!r}: expected <stage>:<partition>:<offset>, e.g. normalize:0:42"
        ) from None


async def list_letters(conn: KafkaConnection, stages: list[str]) -> list[Letter]:
    """Every dead letter of the given stages, oldest first per partition."""
    records = await read_to_end(conn, *(dlq_topic(s) for s in stages))
    return [Letter.of(r.topic.removeprefix("netral.dlq."), r) for r in records]


async def get_letter(conn: KafkaConnection, letter_id: str) -> Letter:
    stage, partition, offset = parse_id(letter_id)
    tp = TopicPartition(dlq_topic(stage), partition)
    consumer = reading_consumer(conn)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        batch = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
        for rec in batch.get(tp, []):
            if rec.offset == offset:
                return Letter.of(stage, rec)
    finally:
        await consumer.stop()
    raise ConfigError(f"no DLQ record {letter_id} (see `netral dlq list`)")


@dataclass
class ReplayReport:
    replayed: int = 0
    still_failing: int = 0
    skipped_older: int = 0
    failures: list[tuple[str, str]] | None = None


async def replay(conn: KafkaConnection, stage: str, *, since: datetime | None = None,
                 check: Check | None = None) -> ReplayReport:
    """Re-send this stage's dead letters to their source topics, each at most once.

    Letters that ``check`` still rejects are not re-sent (they would only come back) and are
    reported with their current reason; they stay in the DLQ and are not replayed again later.
    """
    stage = DlqStage(stage).value
    group = f"netral-dlq-replay-{stage}"
    consumer = reading_consumer(conn, dlq_topic(stage), group=group)
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all", enable_idempotence=True,
                                transactional_id=f"{group}-{uuid.uuid4().hex[:6]}",
                                max_request_size=FETCH_BYTES)
    report = ReplayReport(failures=[])
    await consumer.start()
    await producer.start()
    try:
        records = await drain(consumer)
        async with producer.transaction():
            for rec in records:
                letter = Letter.of(stage, rec)
                if since and letter.why.failed_at < since:
                    report.skipped_older += 1
                    continue
                if check is not None:
                    try:
                        check(letter.why.source_topic, letter.key, letter.value)
                    except InvalidMessage as err:
                        report.still_failing += 1
                        report.failures.append((letter.id, str(err)))  # type: ignore[union-attr]
                        continue
                headers = [*letter.original_headers(), (H_REPLAYED_FROM, letter.id.encode())]
                await producer.send(letter.why.source_topic, value=letter.value, key=letter.key,
                                    headers=headers)
                report.replayed += 1
            if records:
                offsets: dict[TopicPartition, int] = {}
                for rec in records:
                    tp = TopicPartition(rec.topic, rec.partition)
                    offsets[tp] = max(offsets.get(tp, 0), rec.offset + 1)
                await producer.send_offsets_to_transaction(offsets, group)
    finally:
        await producer.stop()
        await consumer.stop()
    return report
