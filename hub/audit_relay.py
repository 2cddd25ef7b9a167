"""The personal-data access log on Kafka: ``audit_log`` rows relayed to ``netral.audit``.

The SQL row is the source of truth and the outbox: the API writes it with every read (as it
always did) and never talks to Kafka for it, so a broker outage cannot fail a read. This relay
(a background task of the API, or ``netral audit relay --once``) publishes the unpublished rows in
id order with an idempotent producer (acks=all, :class:`connectors.outbox.KafkaRelay`), keyed by
the entry's id (a uuid given when the row was written, so entries of databases that share a
cluster never collide), and marks each row with the partition and offset the broker gave it.

Exactly once per row, also across a crash: a relay killed after the broker acknowledged a batch
but before it marked it would send that batch again. So on start it reads ``netral.audit`` from
the last offset the table knows, per partition, to the end, and marks the rows it finds there
first. Run one relay per database (the API's, or the CLI's while the API is down).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from prometheus_client import Counter, Gauge
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from connectors.outbox import KafkaRelay, Pending
from schemas.codec import AvroCodec
from schemas.errors import HubError, RetriableError
from schemas.kafka import KafkaConnection, kafka_failure
from schemas.models import AccessLogEntry
from schemas.topics import AUDIT
from sinks.sql.audit import (
    Unpublished,
    mark_published,
    pending_count,
    published_offsets,
    unpublished,
)

log = logging.getLogger(__name__)
RELAYED = Counter("netral_audit_relayed", "Access-log entries published to netral.audit")
FAILURES = Counter("netral_audit_relay_failures", "Relay rounds that failed (broker or database)")
PENDING = Gauge("netral_audit_pending", "Access-log entries not yet on netral.audit")


def entry_of(row: Unpublished) -> AccessLogEntry:
    """The topic's record of one row of the log."""
    return AccessLogEntry(entry_id=row.entry_id, **vars(row.access))


class AuditTopicMissing(RetriableError):
    """``netral.audit`` is not on the cluster: the entries wait until an operator creates it."""


class AuditRelay(KafkaRelay):
    """Publishes the access log's outbox to ``netral.audit`` (``topic``: tests name their own)."""

    def __init__(self, engine: Engine, kafka: KafkaConnection, codec: AvroCodec | None = None,
                 *, batch_size: int = 500, topic: str = AUDIT) -> None:
        super().__init__(kafka, batch_size=batch_size)
        self.engine = engine
        self.codec = codec or AvroCodec()
        self.topic = topic
        self.recovered = 0

    async def start(self) -> None:
        """Start the producer and read back what a crash left unmarked.

        Raises :class:`AuditTopicMissing` when the topic does not exist, before anything is sent
        (a send to a missing topic would block on metadata, aiokafka logging an error each retry).
        """
        await super().start()
        try:
            self.recovered = await self.recover()
        except BaseException:
            await self.stop()
            raise

    def pending(self) -> Sequence[Pending]:
        with self.engine.connect() as conn:
            rows = unpublished(conn, limit=self.batch_size)
        out = []
        for row in rows:
            record = entry_of(row)
            out.append(Pending(row.audit_id, self.topic, record.entry_id,
                               self.codec.encode_record(record, topic=self.topic)))
        return out

    def mark(self, sent: Sequence[tuple[Pending, RecordMetadata]]) -> None:
        with self.engine.begin() as conn:
            mark_published(conn, at=datetime.now(UTC),
                           placed=[(row.key, meta.partition, meta.offset)
                                   for row, meta in sent])
        RELAYED.inc(len(sent))

    async def recover(self) -> int:
        """Mark the rows the topic holds beyond what the table knows (a batch acknowledged just
        before a crash); returns how many were marked."""
        with self.engine.connect() as conn:
            known = published_offsets(conn)
        consumer = AIOKafkaConsumer(**self.kafka.aiokafka_kwargs(), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        try:
            await consumer.start()
            # no subscription: a metadata update fetches every topic (as hub/lag.py does)
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(self.topic)
            if parts is None:
                raise AuditTopicMissing(
                    f"topic {self.topic} does not exist on {self.kafka.bootstrap}: create it "
                    f"with `netral topics create`; the access-log entries wait in audit_outbox "
                    f"until it exists")
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            if not tps:
                return 0
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
            todo = {}
            for tp in tps:
                start = max(known.get(tp.partition, -1) + 1, begins[tp])
                if start < ends[tp]:
                    consumer.seek(tp, start)
                    todo[tp] = ends[tp]
            found: list[tuple[str, int, int]] = []
            while todo:
                batch = await consumer.getmany(*todo, timeout_ms=1000)
                for messages in batch.values():
                    found += [(m.key.decode(), m.partition, m.offset) for m in messages
                              if m.key is not None]
                for tp in list(todo):
                    if await consumer.position(tp) >= todo[tp]:
                        del todo[tp]
        except KafkaError as err:
            raise kafka_failure(err, self.kafka, f"read back {self.topic}") from None
        finally:
            await consumer.stop()
        if not found:
            return 0
        with self.engine.begin() as conn:
            marked = mark_published(conn, at=datetime.now(UTC), placed=found)
        if marked:
            log.warning("audit relay: %d entries were on %s but not marked (a relay stopped "
                        "between ack and mark); marked them, not sent again", marked, self.topic)
        return marked

    def backlog(self) -> int:
        with self.engine.connect() as conn:
            count = pending_count(conn)
        PENDING.set(count)
        return count


async def relay_forever(relay: AuditRelay, poll_s: float, *, retry_max_s: float = 30.0) -> None:
    """The API's background task: relay every ``poll_s``; a broker or database failure is logged
    and counted, and retried with backoff (the rows wait in the table), never raised into the
    API. Cancel it to stop.

    A missing topic is said once, as a warning naming the fix, and then only at DEBUG while it
    stays missing (each retry looks at the cluster's metadata; nothing is sent)."""
    delay = poll_s
    started = False
    missing = False
    try:
        while True:
            try:
                if not started:
                    await relay.start()
                    started = True
                    if missing:
                        log.info("audit relay: %s exists now; relaying the waiting entries",
                                 relay.topic)
                        missing = False
                await relay.run(once=True)
                relay.backlog()
                delay = poll_s
            except AuditTopicMissing as err:
                FAILURES.inc()
                log.log(logging.DEBUG if missing else logging.WARNING,
                        "audit relay: %s (looking again with backoff, at most every %.0fs)",
                        err, retry_max_s)
                missing = True
                delay = min(retry_max_s, max(poll_s, delay * 2))
            except (HubError, KafkaError, SQLAlchemyError, OSError) as err:
                FAILURES.inc()
                log.error("audit relay: %s (entries wait in audit_log; retry in %.0fs)",
                          err, delay)
                if started:
                    await relay.stop()
                    started = False
                delay = min(retry_max_s, max(poll_s, delay * 2))
            await asyncio.sleep(delay)
    finally:
        if started:
            await relay.stop()
