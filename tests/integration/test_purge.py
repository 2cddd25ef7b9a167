"""Retention on real databases (SQLite and PostgreSQL): `netral purge` removes persons from
closed cases and keeps every count; a replay cannot restore them; the access log and the purge
record are append-only."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import CaseRecord, CaseState, PurgeCommand
from schemas.topics import PURGE_COMMANDS
from sinks.sql import migrate
from sinks.sql.audit import Access, list_access, record_access
from sinks.sql.engine import create_sql_engine
from sinks.sql.purge import REDACTED, purge_personal_data
from sinks.sql.repository import insert_alerts, insert_order_results, insert_orders, upsert_cases
from sinks.sql.tables import cases, persons, purges
from tests.fixtures.kafka_tools import consume_until
from tests.fixtures.sql_records import T0, alert, case, dump, order, random_nip, result, uid
from tests.helpers import netral

pytestmark = pytest.mark.integration
CUTOFF = T0 + timedelta(hours=2)  # case(..., version=1) was updated before it, version 3 after


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    migrate.upgrade(database_url)
    eng = create_sql_engine(database_url)
    yield eng
    eng.dispose()


def _aggregates(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(
            select(cases.c.state, cases.c.province_code, cases.c.violation_type,
                   cases.c.agency_name, cases.c.blocked, func.count())
            .group_by(cases.c.state, cases.c.province_code, cases.c.violation_type,
                      cases.c.agency_name, cases.c.blocked)))


def _fill(engine: Engine) -> dict[str, Any]:
    nip_a, nip_b, nip_c, nip_d = (random_nip() for _ in range(4))
    a, b, c = uid("closed-old"), uid("open-old"), uid("closed-new")
    d1, d2 = uid("closed-old-d"), uid("open-d")
    records = [
        case(a, 1, state=CaseState.CLOSED, nip=nip_a, blocked=True),
        case(b, 1, state=CaseState.RECOMMENDED, nip=nip_b),
        case(c, 3, state=CaseState.SANCTIONED, nip=nip_c),
        case(d1, 1, state=CaseState.NOT_PROVEN, nip=nip_d),
        case(d2, 3, state=CaseState.RECOMMENDED, nip=nip_d),
    ]
    with engine.begin() as conn:
        upsert_cases(conn, records=records)
        insert_orders(conn, records=[order(f"o-{a}", a, nip_a), order(f"o-{b}", b, nip_b)])
        insert_order_results(conn, records=[result(f"o-{a}", a, nip_a)])
        insert_alerts(conn, records=[alert(uid("al"), a).model_copy(update={"nip": nip_a}),
                                     alert(uid("al"), b).model_copy(update={"nip": nip_b})])
    return {"nips": (nip_a, nip_b, nip_c, nip_d), "ids": (a, b, c, d1, d2), "records": records}


def test_purge_removes_persons_of_old_closed_cases_and_keeps_the_counts(engine: Engine) -> None:
    data = _fill(engine)
    nip_a, nip_b, nip_c, nip_d = data["nips"]
    a, b, c, d1, _ = data["ids"]
    before = _aggregates(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        dry = purge_personal_data(conn, older_than=CUTOFF, now=now, dry_run=True)
    assert (dry.cases, dry.persons, dry.orders, dry.alerts) == (2, 1, 1, 1)
    assert nip_a in repr(dump(engine)), "a dry run changes nothing"
    with engine.begin() as conn:
        report = purge_personal_data(conn, older_than=CUTOFF, now=now)
    assert (report.cases, report.persons, report.orders, report.alerts) == (2, 1, 1, 1)
    assert _aggregates(engine) == before, "every count the dashboard shows is unchanged"
    everything = repr(dump(engine))
    assert nip_a not in everything, "the purged person's NIP is nowhere in the database"
    for kept in (nip_b, nip_c, nip_d):  # open, too recent, or still named by an open case
        assert kept in everything
    with engine.connect() as conn:
        row = conn.execute(select(cases).where(cases.c.case_id == a)).one()
        record = CaseRecord.model_validate(row.record)
        assert row.nip is None and row.person_name == REDACTED
        assert record.person.nip is None and record.person.name == REDACTED
        assert record.person.agency_name  # the agency still counts
        assert record.state is CaseState.CLOSED and record.evidence == ()
        d1_row = conn.execute(select(cases).where(cases.c.case_id == d1)).one()
        assert d1_row.nip is None
        assert conn.execute(select(func.count()).select_from(persons).where(
            persons.c.nip == nip_d)).scalar_one() == 1
        for untouched in (b, c):
            assert conn.execute(select(cases.c.nip).where(cases.c.case_id == untouched)
                                ).scalar_one() is not None
    with engine.begin() as conn:  # a second run finds nothing left to do
        again = purge_personal_data(conn, older_than=CUTOFF, now=now)
    assert again.cases == 0


def test_a_replay_does_not_bring_a_purged_person_back(engine: Engine) -> None:
    data = _fill(engine)
    nip_a = data["nips"][0]
    a = data["ids"][0]
    with engine.begin() as conn:
        purge_personal_data(conn, older_than=CUTOFF, now=datetime.now(UTC))
    original = data["records"][0]
    newer = case(a, 5, state=CaseState.CLOSED, nip=nip_a)
    with engine.begin() as conn:  # the compacted netral.cases replayed, and a later version
        upsert_cases(conn, records=[original, newer])
    assert nip_a not in repr(dump(engine))
    with engine.connect() as conn:
        assert conn.execute(select(cases.c.version).where(cases.c.case_id == a)
                            ).scalar_one() == 5


def test_the_access_log_and_the_purge_record_are_append_only(engine: Engine) -> None:
    at = datetime.now(UTC)
    with engine.begin() as conn:
        record_access(conn, accesses=[
            Access(at=at, principal="satgas-jabar-1", role="satgas_province",
                   action="read_case", subject_kind="case", subject_id="case-1",
                   remote_addr="10.0.0.7", request_id="req-1")])
    with engine.connect() as conn:
        seen = list_access(conn, subject_id="case-1")
        assert [(s.principal, s.role, s.action) for s in seen] == [
            ("satgas-jabar-1", "satgas_province", "read_case")]
        assert abs(seen[0].at - at) < timedelta(seconds=1) and seen[0].remote_addr == "10.0.0.7"
    for statement in ("UPDATE audit_log SET principal = 'someone-else'",
                      "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    _fill(engine)
    with engine.begin() as conn:
        purge_personal_data(conn, older_than=CUTOFF, now=at)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(purges)).scalar_one() == 1
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM purges"))


def test_purge_command(engine: Engine, database_url: str, topics: KafkaConnection) -> None:
    _fill(engine)
    env = {"NETRAL_DATABASE_URL": database_url, "NETRAL_KAFKA_BOOTSTRAP": topics.bootstrap}
    bad = netral("purge", "--older-than", "soon", env=env)
    assert bad.returncode == 2 and "give a positive age like 365d" in bad.stderr
    unset = netral("purge", env=env)
    assert unset.returncode == 2 and "NETRAL_PERSONAL_DATA_RETENTION_DAYS" in unset.stderr
    dry = netral("purge", "--older-than", "365d", "--dry-run", env=env, check=True)
    assert "would purge the personal data of" in dry.stdout
    done = netral("purge", env={**env, "NETRAL_PERSONAL_DATA_RETENTION_DAYS": "365"},
                  check=True)
    assert "purged the personal data of" in done.stdout
    # the same cutoff goes to the cases stage, so netral.cases loses the persons too
    sent = re.search(r"sent purge (\S+) to netral.commands.purge", done.stdout)
    assert sent, done.stdout
    records = asyncio.run(consume_until(
        topics, [PURGE_COMMANDS], lambda rs: any(r.key == sent[1].encode() for r in rs)))
    (value,) = [r.value for r in records if r.key == sent[1].encode()]
    command = PurgeCommand.from_avro(AvroCodec().decode(value, PurgeCommand.avro_name).value)
    assert timedelta(days=364) < command.at - command.older_than < timedelta(days=366)
    sql_only = netral("purge", "--older-than", "365d", "--sql-only",
                      env={**env, "NETRAL_KAFKA_BOOTSTRAP": "127.0.0.1:9"}, check=True)
    assert "sent purge" not in sql_only.stdout
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(purges)).scalar_one() == 1
