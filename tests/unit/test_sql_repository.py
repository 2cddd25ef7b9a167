"""The national record's write rules on in-memory SQLite: batch dedupe, version guard, the sink's
buffer, and per-record isolation of what the database refuses."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from schemas.errors import ConfigError
from schemas.models import CaseRecord, CaseState, OrderOutcome
from sinks.sql import repository
from sinks.sql.engine import create_sql_engine, describe_url, normalise_url
from sinks.sql.sink import RecordMeta, SqlRecord, SqlSink, SqlWriteError
from sinks.sql.tables import case_transitions, cases, metadata, persons
from sinks.sql.unit_of_work import SqlUnitOfWork
from tests.fixtures.sql_records import (
    alert,
    case,
    dump,
    order,
    random_nip,
    result,
    transition,
    uid,
)

pytestmark = pytest.mark.unit
META = RecordMeta("netral.cases", 0, 0)
NIPS = [None, random_nip(), random_nip()]


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = create_sql_engine("sqlite://")
    metadata.create_all(eng)
    yield eng
    eng.dispose()


def _write_cases(engine: Engine, records: list[CaseRecord]) -> int:
    with SqlUnitOfWork(engine) as uow:
        n = repository.upsert_cases(uow.conn, records=records)
        uow.commit()
    return n


def _versions(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(cases.c.case_id, cases.c.version)).tuples().all())


# -- batch dedupe (pure) ------------------------------------------------------------------------


def test_dedupe_latest_keeps_highest_version_and_first_of_equals() -> None:
    items = [("a", 1, "x"), ("b", 2, "x"), ("a", 3, "x"), ("a", 3, "later"), ("b", 1, "x")]
    kept = repository.dedupe_latest(items, key=lambda i: i[0], version=lambda i: i[1])
    assert kept == [("a", 3, "x"), ("b", 2, "x")]


def test_dedupe_first_keeps_first_copy_in_first_seen_order() -> None:
    items = [("b", 1), ("a", 1), ("b", 2)]
    assert repository.dedupe_first(items, key=lambda i: i[0]) == [("b", 1), ("a", 1)]


# -- version guard ------------------------------------------------------------------------------


@pytest.mark.parametrize("arrival", [(1, 2), (2, 1)], ids=["in-order", "out-of-order"])
def test_older_version_never_overwrites_newer_across_batches(engine: Engine,
                                                            arrival: tuple[int, int]) -> None:
    cid = uid("case")
    for v in arrival:
        _write_cases(engine, [case(cid, v, state=CaseState.REPORTED if v == 1
                                   else CaseState.RECOMMENDED)])
    with engine.connect() as conn:
        assert repository.get_case(conn, case_id=cid) == case(cid, 2)
        state = conn.execute(select(cases.c.state).where(cases.c.case_id == cid)).scalar_one()
    assert state == "RECOMMENDED"


def test_older_version_in_the_same_batch_loses(engine: Engine) -> None:
    cid = uid("case")
    assert _write_cases(engine, [case(cid, 3), case(cid, 1), case(cid, 2)]) == 1
    assert _versions(engine) == {cid: 3}


def test_repeat_and_stale_writes_report_zero_rows(engine: Engine) -> None:
    cid = uid("case")
    assert _write_cases(engine, [case(cid, 2)]) == 1
    before = dump(engine)
    assert _write_cases(engine, [case(cid, 2)]) == 0
    assert _write_cases(engine, [case(cid, 1)]) == 0
    assert dump(engine) == before


def test_person_takes_the_newest_case_view(engine: Engine) -> None:
    nip = random_nip()
    newer = case(uid("case"), 5, nip=nip)
    older = case(uid("case"), 1, nip=nip)
    renamed = older.model_copy(update={"person": older.person.model_copy(
        update={"name": "Old Name"})})
    _write_cases(engine, [newer])
    _write_cases(engine, [renamed])
    with engine.connect() as conn:
        name = conn.execute(select(persons.c.name).where(persons.c.nip == nip)).scalar_one()
    assert name == newer.person.name


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrivals=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 6), st.sampled_from(NIPS)),
                      min_size=1, max_size=25),
    cuts=st.lists(st.integers(0, 25), max_size=5),
)
def test_outcome_does_not_depend_on_batching(arrivals: list[tuple[int, int, str | None]],
                                             cuts: list[int]) -> None:
    """Any split of the same arrivals into batches ends with each case at its highest version
    and every person any record named."""
    ids = [f"case-{i}" for i in range(4)]
    records = [case(ids[i], v, nip=nip) for i, v, nip in arrivals]
    bounds = sorted({0, len(records), *(c for c in cuts if c < len(records))})
    engine = create_sql_engine("sqlite://")
    metadata.create_all(engine)
    try:
        for lo, hi in itertools.pairwise(bounds):
            _write_cases(engine, records[lo:hi])
        expected: dict[str, int] = {}
        for i, v, _ in arrivals:
            expected[ids[i]] = max(v, expected.get(ids[i], 0))
        assert _versions(engine) == expected
        with engine.connect() as conn:
            nips = set(conn.execute(select(persons.c.nip)).scalars())
        assert nips == {nip for _, _, nip in arrivals if nip}
    finally:
        engine.dispose()


# -- facts: insert once -------------------------------------------------------------------------


def test_facts_insert_once_and_the_trail_is_append_only(engine: Engine) -> None:
    cid, nip, oid = uid("case"), random_nip(), uid("ord")
    with SqlUnitOfWork(engine) as uow:
        conn = uow.conn
        assert repository.insert_transitions(conn, records=[transition(cid, 1)] * 2) == 1
        assert repository.insert_orders(conn, records=[order(oid, cid, nip)]) == 1
        assert repository.insert_order_results(conn, records=[
            result(oid, cid, nip), result(oid, cid, nip, attempts=3),
            result(oid, cid, nip, OrderOutcome.ALREADY_IN_EFFECT)]) == 2
        assert repository.insert_alerts(conn, records=[alert(uid("al"), cid)]) == 1
        uow.commit()
    before = dump(engine)
    with SqlUnitOfWork(engine) as uow:
        assert repository.insert_transitions(uow.conn, records=[transition(cid, 1)]) == 0
        assert repository.insert_orders(uow.conn, records=[order(oid, cid, nip)]) == 0
        uow.commit()
    assert dump(engine) == before
    with engine.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
        conn.execute(case_transitions.update().values(rule="rewritten"))
    with engine.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
        conn.execute(case_transitions.delete())


def _write_then_fail(engine: Engine) -> None:
    with SqlUnitOfWork(engine) as uow:
        repository.upsert_cases(uow.conn, records=[case(uid("case"), 1)])
        raise RuntimeError("boom")


def test_unit_of_work_rolls_back_without_commit(engine: Engine) -> None:
    with SqlUnitOfWork(engine) as uow:
        repository.upsert_cases(uow.conn, records=[case(uid("case"), 1)])
    with pytest.raises(RuntimeError, match="boom"):
        _write_then_fail(engine)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == 0


def test_repository_takes_an_orm_session_too(engine: Engine) -> None:
    cid = uid("case")
    with Session(engine) as session:
        assert repository.upsert_cases(session, records=[case(cid, 2), case(cid, 1)]) == 1
        session.commit()
    assert _versions(engine) == {cid: 2}


def test_reads_return_what_the_stream_published(engine: Engine) -> None:
    first, second = case(uid("case"), 2, nip=random_nip()), case(uid("case"), 1)
    _write_cases(engine, [first, second])
    with engine.connect() as conn:
        assert repository.get_case(conn, case_id=first.case_id) == first
        page = repository.list_cases(conn, province_code="32", limit=1)
        assert (page.total, page.items) == (2, [first])  # newest update first
        assert repository.list_cases(conn, state="CLOSED").total == 0
        assert repository.get_case(conn, case_id="nope") is None


# -- the sink's buffer --------------------------------------------------------------------------


def test_failed_flush_keeps_the_buffer_and_a_retry_writes_it() -> None:
    engine = create_sql_engine("sqlite://")  # no tables yet: the write fails
    sink = SqlSink(engine)
    records: list[SqlRecord] = [case(uid("case"), 1), transition(uid("case"), 1),
                                alert(uid("al"))]
    for r in records:
        sink.add(r, META)
    with pytest.raises(SqlWriteError):
        asyncio.run(sink.flush())
    assert sink.pending == 3
    metadata.create_all(engine)
    flushed = asyncio.run(sink.flush())
    assert (flushed.records, sink.pending) == (3, 0)
    assert flushed.written == {"cases": 1, "case_transitions": 1, "alerts": 1}
    engine.dispose()


def test_a_record_the_database_refuses_is_isolated(engine: Engine) -> None:
    with engine.begin() as conn:  # stands in for any constraint a record may break for good
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON cases WHEN NEW.case_id = 'bad' "
                          "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"))
    sink = SqlSink(engine)
    good = [case(uid("case"), 1), case(uid("case"), 1)]
    sink.add(good[0], META)
    sink.add(case("bad", 1), RecordMeta("netral.cases", 0, 7))
    sink.add(good[1], META)
    flushed = asyncio.run(sink.flush())
    assert [(r.meta.offset, r.record.case_id) for r in flushed.rejected] == [(7, "bad")]
    assert "refused for the test" in str(flushed.rejected[0].error)
    assert sink.pending == 0
    assert set(_versions(engine)) == {g.case_id for g in good}


def test_sink_refuses_records_it_does_not_store() -> None:
    with pytest.raises(TypeError):
        SqlSink(create_sql_engine("sqlite://")).add(object(), META)  # type: ignore[arg-type]


# -- engine URLs --------------------------------------------------------------------------------


def test_database_urls_fail_with_one_clear_line() -> None:
    assert normalise_url("postgres://u:p@db/netral").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql://u@db/netral").drivername == "postgresql+psycopg"
    with pytest.raises(ConfigError, match=r"unsupported backend 'mysql'.*sqlite:///"):
        normalise_url("mysql://u:secret@db/netral")
    with pytest.raises(ConfigError, match="not a SQLAlchemy URL"):
        normalise_url("not a url")
    assert "secret" not in describe_url("postgresql://u:secret@db/netral")
