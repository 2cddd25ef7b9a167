"""The transactional outbox on an agency's own database, and the relay that drains it to Kafka.

An agency writes its record and an outbox row in ONE database transaction (:func:`enqueue`), so a
record is either both stored and queued for the hub, or neither. The relay reads unsent rows in
order, produces them with an idempotent producer (acks=all), and marks them sent only after the
broker acknowledged. Killed at any point, it re-sends at most the rows that were acknowledged but
not yet marked; the hub drops those duplicates downstream by their source id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.engine import Connection

from schemas.codec import AvroCodec
from schemas.errors import RetriableError
from schemas.kafka import KafkaConnection, kafka_failure
from schemas.models.raw import RawRecord
from schemas.topics import raw_topic

log = logging.getLogger(__name__)
metadata = MetaData()
outbox = Table(
    "netral_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True, index=True),
)


def agency_engine(url: str) -> Engine:
    """An engine on the agency's database; SQLite gets WAL so the app and the relay coexist."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
            cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    metadata.create_all(engine)
    return engine


def enqueue(conn: Connection, record: RawRecord, codec: AvroCodec) -> None:
    """Queue one agency record for the hub, inside the caller's own transaction."""
    topic = raw_topic(record.agency)
    conn.execute(outbox.insert().values(
        topic=topic, key=record.source_id,
        value=codec.encode_record(record, topic=topic),
        created_at=datetime.now(UTC)))


@dataclass
class RelayStats:
    sent: int = 0
    batches: int = 0


@dataclass(frozen=True)
class Pending:
    """One row to relay: its id in the source table and the Kafka record it becomes."""

    row_id: int
    topic: str
    key: str
    value: bytes


class KafkaRelay(ABC):
    """Relays rows of a table to Kafka in id order, marking them only after acks=all.

    The shared mechanics of every outbox in the project (the agencies' ``netral_outbox``, the
    API's personal-data access log): an idempotent producer, one batch at a time, a batch marked
    only when every record of it was acknowledged. Subclasses say which rows are pending and how
    to mark them (:meth:`pending`, :meth:`mark`).
    """

    def __init__(self, kafka: KafkaConnection, *, batch_size: int = 500) -> None:
        self.kafka = kafka
        self.batch_size = batch_size
        self.stats = RelayStats()
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self.kafka.aiokafka_kwargs(), acks="all",
                                          enable_idempotence=True, linger_ms=5)
        try:
            await self._producer.start()
        except KafkaError as err:
            await self._producer.stop()
            self._producer = None
            raise kafka_failure(err, self.kafka, "start the relay's producer") from None

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    @abstractmethod
    def pending(self) -> Sequence[Pending]:
        """Up to ``batch_size`` rows not relayed yet, in id order."""

    @abstractmethod
    def mark(self, sent: Sequence[tuple[Pending, RecordMetadata]]) -> None:
        """Record that these rows were acknowledged (with where the broker put them)."""

    async def drain_once(self) -> int:
        """Send one batch of pending rows; returns how many were sent and marked."""
        assert self._producer is not None, "call start() first"
        rows = self.pending()
        if not rows:
            return 0
        try:
            futures = [await self._producer.send(r.topic, value=r.value, key=r.key.encode())
                       for r in rows]
            acks: list[RecordMetadata] = [await fut for fut in futures]
        except KafkaError as err:
            failure = kafka_failure(err, self.kafka,
                                    f"produce to {', '.join(sorted({r.topic for r in rows}))}")
            if isinstance(failure, RetriableError):
                raise RetriableError(f"broker did not acknowledge the relay batch: {err}") from err
            raise failure from None
        self.mark(list(zip(rows, acks, strict=True)))
        self.stats.sent += len(rows)
        self.stats.batches += 1
        return len(rows)

    async def run(self, *, once: bool, poll_s: float = 0.5,
                  stop_after_s: float | None = None) -> RelayStats:
        """Drain until empty (``once``) or forever, polling for new rows."""
        start = time.monotonic()
        while True:
            sent = await self.drain_once()
            if sent:
                continue
            if once or (stop_after_s is not None and time.monotonic() - start > stop_after_s):
                return self.stats
            await asyncio.sleep(poll_s)


class OutboxRelay(KafkaRelay):
    """Drains the agency's outbox to Kafka in id order, marking rows sent only after acks=all."""

    def __init__(self, engine: Engine, kafka: KafkaConnection, *, batch_size: int = 500) -> None:
        super().__init__(kafka, batch_size=batch_size)
        self.engine = engine

    def pending(self) -> Sequence[Pending]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value)
                .where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(self.batch_size)
            ).all()
        return [Pending(r[0], r[1], r[2], r[3]) for r in rows]

    def mark(self, sent: Sequence[tuple[Pending, RecordMetadata]]) -> None:
        ids = [row.row_id for row, _ in sent]
        with self.engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id.in_(ids))
                         .values(sent_at=datetime.now(UTC)))
