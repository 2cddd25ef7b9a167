"""The national record on real databases (SQLite file in WAL mode, and a real PostgreSQL server)
and, through the runner, on the real broker: migrations, idempotent replays, the version guard, the
append-only trail, and the DLQ for poison messages.

The PostgreSQL cases skip, with the reason, only when no server can be started here
(tests/fixtures/postgres.py says how one is started).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from hub.commands.db import db_app
from hub.settings import get_settings
from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.errors import ConfigError
from schemas.kafka import KafkaConnection
from schemas.models import AvroRecord, CaseRecord, CaseState, OrderOutcome
from schemas.topics import CASES
from sinks.sql import migrate
from sinks.sql.engine import create_sql_engine
from sinks.sql.runner import SQL_TOPICS, SqlRunnerConfig, SqlSinkRunner
from sinks.sql.sink import RecordMeta, SqlSink
from sinks.sql.tables import alerts, case_transitions, cases, metadata, order_results, orders
from tests.fixtures.kafka_tools import consume_until, produce
from tests.fixtures.sql_records import alert, case, dump, order, random_nip, result, transition
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def topics(private_broker: KafkaConnection) -> KafkaConnection:
    """This module's own broker: the runner tests read the hub's topics from the beginning, and
    on the shared session broker those hold every other test's output."""
    return private_broker
META = RecordMeta("test", 0, 0)
TOPIC_OF = {model: topic for topic, model in SQL_TOPICS.items()}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database."""
    migrate.upgrade(database_url)
    eng = create_sql_engine(database_url)
    yield eng
    eng.dispose()


def _flush(sink: SqlSink, records: list[AvroRecord]) -> dict[str, int]:
    for r in records:
        sink.add(r, META)  # type: ignore[arg-type]
    return sink.flush_sync().written


def _batch() -> list[AvroRecord]:
    """One of everything, with repeats and an out-of-order version, as a replay would carry."""
    nip, cid, oid = random_nip(), f"case-{uuid.uuid4().hex[:10]}", f"ord-{uuid.uuid4().hex[:8]}"
    other = f"case-{uuid.uuid4().hex[:10]}"
    return [
        case(cid, 1, state=CaseState.REPORTED, nip=nip), transition(cid, 1),
        case(cid, 3, nip=nip), transition(cid, 3), case(cid, 2, nip=nip), transition(cid, 2),
        case(other, 1), order(oid, cid, nip), result(oid, cid, nip),
        result(oid, cid, nip, OrderOutcome.FAILED, attempts=5), result(oid, cid, nip),
        alert(f"al-{uuid.uuid4().hex[:8]}", cid), transition(cid, 3),
    ]


# -- migrations ---------------------------------------------------------------------------------


def test_migrations_apply_on_an_empty_database(database_url: str) -> None:
    engine = create_sql_engine(database_url)
    try:
        with pytest.raises(ConfigError, match="netral db upgrade"):
            asyncio.run(SqlSink(engine).setup())  # an unmigrated database is refused at start
        assert migrate.current(database_url) is None
        assert migrate.upgrade(database_url) == migrate.head_revision()
        assert migrate.upgrade(database_url) == migrate.head_revision()  # again: a no-op
        asyncio.run(SqlSink(engine).setup())
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            assert {t.name for t in metadata.sorted_tables} <= names
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == [], "migrations and tables.py differ"
    finally:
        engine.dispose()


def test_db_commands(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRAL_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        cli = CliRunner()
        before = cli.invoke(db_app, ["current"])
        assert before.exit_code == 3, before.output
        up = cli.invoke(db_app, ["upgrade"])
        assert up.exit_code == 0, up.output
        assert migrate.head_revision() in up.output
        after = cli.invoke(db_app, ["current"])
        assert after.exit_code == 0, after.output
        assert "up to date" in after.output
    finally:
        get_settings.cache_clear()


# -- idempotent writes --------------------------------------------------------------------------


def test_writing_the_same_batch_twice_changes_nothing(engine: Engine) -> None:
    batch = _batch()
    sink = SqlSink(engine)
    first = _flush(sink, batch)
    assert first == {"cases": 2, "case_transitions": 3, "orders": 1, "order_results": 2,
                     "alerts": 1}
    before = dump(engine)
    assert _flush(sink, batch) == {}
    assert _flush(sink, list(reversed(batch))) == {}
    assert dump(engine) == before
    cid = batch[0].case_id  # type: ignore[attr-defined]
    with engine.connect() as conn:
        row = conn.execute(select(cases).where(cases.c.case_id == cid)).mappings().one()
    assert (row["version"], row["state"]) == (3, "RECOMMENDED")
    assert CaseRecord.model_validate(row["record"]) == batch[2]


@pytest.mark.parametrize("order_", ["newer-first", "older-first"])
def test_an_older_version_never_overwrites_a_newer(engine: Engine, order_: str) -> None:
    cid = f"case-{uuid.uuid4().hex[:10]}"
    old = case(cid, 1, state=CaseState.REPORTED, nip=random_nip())
    new = case(cid, 2, state=CaseState.TEGURAN, blocked=True, nip=old.person.nip)
    sink = SqlSink(engine)
    for record in ([new, old] if order_ == "newer-first" else [old, new]):
        _flush(sink, [record])
    _flush(sink, [old, old])  # a late replay of the old one
    with engine.connect() as conn:
        row = conn.execute(select(cases.c.version, cases.c.state, cases.c.blocked,
                                  cases.c.record).where(cases.c.case_id == cid)).one()
    assert row[:3] == (2, "TEGURAN", True)
    assert CaseRecord.model_validate(row[3]) == new


def test_transitions_are_append_only_and_idempotent(engine: Engine) -> None:
    cid = f"case-{uuid.uuid4().hex[:10]}"
    sink = SqlSink(engine)
    assert _flush(sink, [transition(cid, 1), transition(cid, 2)]) == {"case_transitions": 2}
    assert _flush(sink, [transition(cid, 2), transition(cid, 1)]) == {}
    assert _flush(sink, [transition(cid, 3)]) == {"case_transitions": 1}
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(case_transitions)).scalar_one()
    assert n == 3
    before = dump(engine)
    for stmt in (update(case_transitions).values(rule="rewritten"), case_transitions.delete()):
        with engine.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(stmt)
    assert dump(engine) == before


# -- the runner on the real broker --------------------------------------------------------------


def _encode(codec: AvroCodec, record: AvroRecord) -> bytes:
    return codec.encode(record.avro_name, record.to_avro(), topic=TOPIC_OF[type(record)])


async def _produce_all(kafka: KafkaConnection, codec: AvroCodec,
                       records: list[AvroRecord]) -> None:
    by_topic: dict[str, list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]]] = {}
    for r in records:
        key = str(getattr(r, "case_id", None) or getattr(r, "alert_id", "")).encode()
        by_topic.setdefault(TOPIC_OF[type(r)], []).append((key, _encode(codec, r), None))
    for topic, items in by_topic.items():
        await produce(kafka, topic, items)


async def _end_offsets(kafka: KafkaConnection) -> dict[TopicPartition, int]:
    """Where every partition the runner reads ends now (no group: all partitions are assigned)."""
    consumer = AIOKafkaConsumer(*SQL_TOPICS, **kafka.aiokafka_kwargs(),
                                isolation_level="read_committed")
    await consumer.start()
    try:
        async def assigned() -> bool:
            return {tp.topic for tp in consumer.assignment()} == set(SQL_TOPICS)
        await wait_until(assigned, 30, "no metadata for the record's topics")
        return dict(await consumer.end_offsets(list(consumer.assignment())))
    finally:
        await consumer.stop()


@asynccontextmanager
async def _running(kafka: KafkaConnection, engine: Engine, group: str
                   ) -> AsyncIterator[SqlSinkRunner]:
    runner = SqlSinkRunner(SqlSink(engine), AvroCodec(),
                           SqlRunnerConfig(kafka=kafka, group_id=group, poll_timeout_ms=200))
    await runner.start()
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.request_stop()
        await asyncio.wait_for(task, timeout=30)
        await runner.stop()


async def _wait_for(condition: Callable[[], Any], what: str, runner: SqlSinkRunner,
                    timeout_s: float = 90) -> None:
    """Poll ``condition`` until it holds, failing at the deadline with the runner's stats."""
    await wait_until(condition, timeout_s, lambda: f"{what} (runner stats {runner.stats})",
                     poll_s=0.1)


def _ours(engine: Engine, records: list[AvroRecord]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of our ids only: the session's topics also carry other tests' records."""
    ids = {"cases": {r.case_id for r in records if isinstance(r, CaseRecord)}}
    keys = {
        "cases": (cases.c.case_id, ids["cases"]),
        "case_transitions": (case_transitions.c.case_id, ids["cases"]),
        "orders": (orders.c.case_id, ids["cases"]),
        "order_results": (order_results.c.case_id, ids["cases"]),
        "alerts": (alerts.c.case_id, ids["cases"]),
    }
    with engine.connect() as conn:
        return {name: sorted((tuple(r) for r in conn.execute(
            select(col.table).where(col.in_(values)))), key=repr)
            for name, (col, values) in keys.items()}


async def test_runner_fills_the_record_and_a_replay_changes_nothing(
        topics: KafkaConnection, engine: Engine) -> None:
    codec = AvroCodec()
    batch = _batch()
    await _produce_all(topics, codec, batch)
    expected = {"cases": 2, "case_transitions": 3, "orders": 1, "order_results": 2, "alerts": 1}

    async def all_rows() -> bool:
        return {k: len(v) for k, v in _ours(engine, batch).items()} == expected

    async with _running(topics, engine, f"sql-test-{uuid.uuid4().hex[:8]}") as runner:
        await _wait_for(all_rows, "all rows", runner)
    first = _ours(engine, batch)
    with engine.connect() as conn:
        version = conn.execute(select(cases.c.version).where(
            cases.c.case_id == batch[0].case_id)).scalar_one()  # type: ignore[attr-defined]
    assert version == 3

    ends = await _end_offsets(topics)  # the replay must get at least this far
    assert sum(ends.values()) >= len(batch)
    async with _running(topics, engine, f"sql-replay-{uuid.uuid4().hex[:8]}") as replay:
        async def caught_up() -> bool:
            done = replay.stats.committed
            return all(done.get(tp, 0) >= end for tp, end in ends.items() if end > 0)

        await _wait_for(caught_up, "the replay to reach the end of every topic", replay)
    assert replay.stats.records >= len(batch)
    assert _ours(engine, batch) == first


async def test_poison_goes_to_the_dlq_and_the_rest_still_arrives(
        topics: KafkaConnection, engine: Engine) -> None:
    codec = AvroCodec()
    key = f"case-{uuid.uuid4().hex[:10]}".encode()
    before, after = case(key.decode(), 1), case(key.decode() + "-b", 1)
    # valid Avro, but not a valid CaseRecord: region 32.05 is not in province 31
    wrong_province = before.to_avro() | {"case_id": key.decode() + "-p", "province_code": "31"}
    values = [
        _encode(codec, before),
        b"definitely not avro",
        codec.encode(CaseRecord.avro_name, wrong_province, topic=CASES),
        _encode(codec, after),
    ]
    # one key: one partition, so "after" sits behind both poison messages
    await produce(topics, CASES, [(key, v, [("trace", b"t-1")]) for v in values])

    async def arrived() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(cases).where(
                cases.c.case_id.in_([before.case_id, after.case_id]))).scalar_one() == 2

    async with _running(topics, engine, f"sql-poison-{uuid.uuid4().hex[:8]}") as runner:
        await _wait_for(arrived, "the records around the poison", runner)
    letters = await consume_until(topics, ["netral.dlq.sql"],
                                  lambda rs: sum(r.key == key for r in rs) >= 2)
    ours = sorted((r for r in letters if r.key == key), key=lambda r: r.offset)
    assert [r.value for r in ours] == values[1:3]
    why = [DeadLetter.from_headers(r.headers) for r in ours]
    assert [w.stage for w in why] == ["sql", "sql"]
    assert {w.source_topic for w in why} == {CASES}
    assert why[0].error_class == "SerializationError"
    assert why[1].error_class == "InvalidMessage" and "province_code" in why[1].reason
    assert before.person.name not in why[1].reason, "no personal data in DLQ reasons"
    assert why[1].source_offset == why[0].source_offset + 1
    assert all(("trace", b"t-1") in list(r.headers) for r in ours), "original headers kept"
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(cases)
                         .where(cases.c.case_id == key.decode() + "-p")).scalar_one()
    assert n == 0

