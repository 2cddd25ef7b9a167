"""The access log also goes to ``netral.audit``: the SQL row is the outbox, the relay publishes
it once acknowledged (acks=all), exactly once per row even across a restart or a crash between
the ack and the mark, and a broker outage neither fails a read nor loses an entry."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.structs import RecordMetadata
from sqlalchemy import Engine, select

from hub.audit_relay import FAILURES, AuditRelay, relay_forever
from hub.broker.local import free_port
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import AccessLogEntry
from schemas.topics import AUDIT
from sinks.sql import migrate
from sinks.sql.audit import Access, pending_count, record_access
from sinks.sql.engine import create_sql_engine
from sinks.sql.tables import audit_log, audit_outbox
from tests.fixtures.kafka_tools import consume_until, create_topics
from tests.fixtures.monitor_data import NIP_A1
from tests.fixtures.monitor_server import MonitorServer, get
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
AT = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


def _entries(kafka: KafkaConnection, ids: set[str], timeout_s: float = 90
             ) -> list[AccessLogEntry]:
    """Every record on netral.audit whose entry id is one of ``ids`` (all of them present)."""
    records = asyncio.run(consume_until(
        kafka, [AUDIT], lambda rs: ids <= {r.key.decode() for r in rs if r.key}, timeout_s))
    out = []
    for r in records:
        if r.key and r.key.decode() in ids:
            entry = AccessLogEntry.from_avro(CODEC.decode(r.value, AccessLogEntry.avro_name).value)
            assert entry.entry_id == r.key.decode()
            out.append(entry)
    return out


def _pending(engine: Engine) -> int:
    with engine.connect() as conn:
        return pending_count(conn)


def _outbox(engine: Engine) -> dict[str, tuple[int, datetime | None]]:
    """entry id -> (audit_log row id, published_at)."""
    with engine.connect() as conn:
        rows = conn.execute(select(audit_outbox.c.entry_id, audit_outbox.c.audit_id,
                                   audit_outbox.c.published_at)).all()
    return {r.entry_id: (r.audit_id, r.published_at) for r in rows}


def test_api_reads_reach_the_topic_with_who_role_what_when_where(
        seeded_monitor: MonitorServer, topics: KafkaConnection) -> None:
    assert get(seeded_monitor, "/v1/cases/A1", "province32").status_code == 200
    assert get(seeded_monitor, f"/v1/asn/{NIP_A1}", "national").status_code == 200
    engine = seeded_monitor.engine

    async def all_published() -> bool:
        return all(at is not None for _, at in _outbox(engine).values())

    asyncio.run(wait_until(all_published, 60, "the API's relay published its access log"))
    outbox = _outbox(engine)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(audit_log)).all()}
    entries = _entries(topics, set(outbox))
    assert Counter(e.entry_id for e in entries) == dict.fromkeys(outbox, 1)  # once each
    seen = {(e.role, e.action, e.subject_kind, e.subject_id) for e in entries}
    assert ("province", "read_case", "case", "A1") in seen
    assert ("national", "read_person", "person", NIP_A1) in seen
    for e in entries:
        row = rows[outbox[e.entry_id][0]]
        assert (e.principal, e.role, e.action, e.at) == (row.principal, row.role, row.action,
                                                         row.at)
        assert e.remote_addr == "127.0.0.1" and e.principal


@pytest.fixture
def log_db(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'netral.db'}"
    migrate.upgrade(url)
    engine = create_sql_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def _log(engine: Engine, n: int, start: int = 0) -> None:
    with engine.begin() as conn:
        record_access(conn, accesses=[
            Access(at=AT + timedelta(seconds=start + i), principal=f"satgas-{start + i}",
                   role="province", action="read_case", subject_kind="case",
                   subject_id=f"case-{start + i}", remote_addr="10.0.0.9")
            for i in range(n)])


class CrashAfterAck(AuditRelay):
    """A relay that dies after the broker acknowledged a batch, before it marks it."""

    def mark(self, sent: Sequence[tuple[object, RecordMetadata]]) -> None:
        raise KeyboardInterrupt("killed between ack and mark")


def test_exactly_once_per_row_across_restart_and_a_crash_between_ack_and_mark(
        log_db: Engine, topics: KafkaConnection) -> None:
    async def run(relay: AuditRelay) -> None:
        await relay.start()
        try:
            await relay.run(once=True)
        finally:
            await relay.stop()

    _log(log_db, 5)
    first = AuditRelay(log_db, topics, batch_size=2)
    asyncio.run(run(first))
    assert first.stats.sent == 5 and _pending(log_db) == 0
    _log(log_db, 3, start=5)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run(CrashAfterAck(log_db, topics, batch_size=10)))
    assert _pending(log_db) == 3  # on the topic, but the table does not know
    _log(log_db, 2, start=8)
    again = AuditRelay(log_db, topics)
    asyncio.run(run(again))
    assert again.recovered == 3  # found on the topic: marked, not sent again
    assert again.stats.sent == 2
    outbox = _outbox(log_db)
    assert len(outbox) == 10 and all(at is not None for _, at in outbox.values())
    entries = _entries(topics, set(outbox))
    assert Counter(e.entry_id for e in entries) == dict.fromkeys(outbox, 1)
    assert sorted(e.principal for e in entries) == sorted(f"satgas-{i}" for i in range(10))
    # one more restart with nothing new: nothing recovered, nothing sent
    idle = AuditRelay(log_db, topics)
    asyncio.run(run(idle))
    assert (idle.recovered, idle.stats.sent) == (0, 0)


def test_a_broker_outage_keeps_the_entries_and_the_relay_alive(log_db: Engine) -> None:
    _log(log_db, 2)
    dead = KafkaConnection(bootstrap=f"127.0.0.1:{free_port()}", client_id="netral-tests")
    before = FAILURES._value.get()

    async def main() -> bool:
        task = asyncio.create_task(relay_forever(AuditRelay(log_db, dead), 0.2,
                                                 retry_max_s=0.5))

        async def failed_twice() -> bool:
            return FAILURES._value.get() >= before + 2 or task.done()

        await wait_until(failed_twice, 120, "the relay retried against the dead broker")
        alive = not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return alive

    assert asyncio.run(main()), "relay_forever must not end on a broker failure"
    assert _pending(log_db) == 2


def test_without_the_topic_the_relay_warns_once_backs_off_and_loses_nothing(
        log_db: Engine, kafka: KafkaConnection, caplog: pytest.LogCaptureFixture) -> None:
    """A broker without the hub's topics (e.g. the API run against a bare cluster): one warning
    naming the fix, no metadata errors from aiokafka, the entries kept; sent once it exists."""
    _log(log_db, 3)
    topic = f"netral.audit.missing-{uuid.uuid4().hex[:8]}"
    before = FAILURES._value.get()

    async def main() -> None:
        relay = AuditRelay(log_db, kafka, topic=topic)
        task = asyncio.create_task(relay_forever(relay, 0.1, retry_max_s=0.4))
        try:
            async def retried() -> bool:
                return FAILURES._value.get() >= before + 4 or task.done()

            await wait_until(retried, 120, "the relay looked for the missing topic 4 times")
            assert not task.done(), "relay_forever must not end on a missing topic"
            assert _pending(log_db) == 3
            await create_topics(kafka, [topic])

            async def relayed() -> bool:
                return _pending(log_db) == 0 or task.done()

            await wait_until(relayed, 120, "the relay sent the waiting entries")
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    warned = [r for r in caplog.records
              if r.levelno >= logging.WARNING and topic in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in warned]
    assert "netral topics create" in warned[0].getMessage()
    assert "audit_outbox" in warned[0].getMessage()
    assert not [r for r in caplog.records if "not found in cluster metadata" in r.getMessage()]
    assert any(f"{topic} exists now" in r.getMessage() for r in caplog.records)
    sent = asyncio.run(consume_until(kafka, [topic], lambda rs: len(rs) >= 3, 90))
    assert sorted(r.key.decode() for r in sent if r.key) == sorted(_outbox(log_db))
