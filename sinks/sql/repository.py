"""Reads and idempotent writes of the national record; every function takes its connection.

Writes can be repeated: a redelivered or replayed batch changes nothing.
- Cases upsert with a version guard (``ON CONFLICT ... DO UPDATE ... WHERE excluded.version >
  cases.version``): an older CaseRecord never overwrites a newer one, whatever the arrival order.
- Transitions, orders, order results and alerts are facts keyed by their id: ``ON CONFLICT DO
  NOTHING`` keeps the first copy.
- Each batch is deduped by key first, with the same rule the database applies (highest version
  wins; among equals and for facts the first copy wins), so the result never depends on how records
  were split into batches, and PostgreSQL never sees one key twice in a statement (which it
  refuses for DO UPDATE). Rows are then written in key order, so two sinks sharing a person row
  lock in the same order and cannot deadlock.

The statements use each dialect's own INSERT (SQLite and PostgreSQL spell ON CONFLICT alike).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, CursorResult, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from schemas.models import Alert, CaseRecord, CaseTransition, SiasnOrder, SiasnOrderResult

from .tables import alerts, case_transitions, cases, order_results, orders, persons

Executor = Connection | Session
"""Anything that executes statements inside the caller's transaction."""

T = TypeVar("T")


# -- batch dedupe (pure) ------------------------------------------------------------------------


def dedupe_first(records: Iterable[T], *, key: Callable[[T], Hashable]) -> list[T]:
    """The first record of each key, in first-seen order (facts: the first copy wins)."""
    seen: dict[Hashable, T] = {}
    for record in records:
        seen.setdefault(key(record), record)
    return list(seen.values())


def dedupe_latest(
    records: Iterable[T], *, key: Callable[[T], Hashable], version: Callable[[T], Any]
) -> list[T]:
    """The highest-version record of each key; among equal versions the first one wins.

    That is exactly what the database's strict ``>`` guard keeps when the same records arrive one
    at a time, so batching never changes the outcome.
    """
    best: dict[Hashable, T] = {}
    for record in records:
        k = key(record)
        current = best.get(k)
        if current is None or version(record) > version(current):
            best[k] = record
    return list(best.values())


# -- rows ---------------------------------------------------------------------------------------


def _sym(value: Any) -> Any:
    return None if value is None else getattr(value, "value", value)


def case_row(record: CaseRecord) -> dict[str, Any]:
    """The ``cases`` row of a record: filter columns plus the full record as JSON."""
    person = record.person
    return {
        "case_id": record.case_id,
        "version": record.version,
        "election": _sym(record.election),
        "state": _sym(record.state),
        "nip": person.nip,
        "person_name": person.name,
        "agency_name": person.agency_name,
        "agency_code": person.agency_code,
        "region_code": record.region_code,
        "province_code": record.province_code,
        "violation_type": _sym(record.violation_type),
        "violation_kind": _sym(record.violation_kind),
        "position": _sym(person.position),
        "level": _sym(record.level),
        "ppk_name": record.ppk_name,
        "ppk_agency_code": record.ppk_agency_code,
        "incident_date": record.incident_date,
        "opened_at": record.opened_at,
        "updated_at": record.updated_at,
        "recommendation_deadline": record.recommendation_deadline,
        "next_deadline": record.next_deadline,
        "escalation_step": record.escalation_step,
        "blocked": record.blocked,
        "record": record.model_dump(mode="json"),
    }


def person_row(record: CaseRecord) -> dict[str, Any] | None:
    """The ``persons`` row a case names, or None while the NIP is unknown."""
    person = record.person
    if person.nip is None:
        return None
    return {
        "nip": person.nip,
        "name": person.name,
        "agency": person.agency_name,
        "agency_code": person.agency_code,
        "position": _sym(person.position),
        "position_title": person.position_title,
        "region": person.region_code,
        "updated_at": record.updated_at,
    }


def _plain_row(record: CaseTransition | SiasnOrder | SiasnOrderResult | Alert) -> dict[str, Any]:
    return {name: _sym(getattr(record, name)) for name in type(record).model_fields}


# -- writes -------------------------------------------------------------------------------------


def _insert(conn: Executor, table: Table) -> Any:
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the national record supports SQLite and PostgreSQL, not {dialect}")


def _written(conn: Executor, stmt: Any, rows: Sequence[dict[str, Any]]) -> int:
    """Execute for many rows; returns how many rows were really inserted or updated.

    A plain executemany, not RETURNING: psycopg 3 then pipelines one prepared statement instead of
    parsing a huge multi-VALUES text per page (3x faster here), and both sqlite3 and psycopg 3
    report the summed rowcount, which counts only rows the guard let through.
    """
    if not rows:
        return 0
    # preserve_rowcount: SQLAlchemy otherwise reads INSERT rowcounts after closing the cursor
    result = conn.execute(stmt.execution_options(preserve_rowcount=True), list(rows))
    return int(cast(CursorResult[Any], result).rowcount)  # DML: a CursorResult, also via Session


def upsert_persons(conn: Executor, *, records: Iterable[CaseRecord]) -> int:
    """Insert or refresh the persons cases name (the newest case wins); returns rows written."""
    rows = [row for row in (person_row(r) for r in records) if row is not None]
    rows = dedupe_latest(rows, key=lambda r: r["nip"], version=lambda r: r["updated_at"])
    rows.sort(key=lambda r: r["nip"])  # one lock order: concurrent sinks cannot deadlock
    stmt = _insert(conn, persons)
    stmt = stmt.on_conflict_do_update(
        index_elements=[persons.c.nip],
        set_={c.name: stmt.excluded[c.name] for c in persons.c if c.name != "nip"},
        where=stmt.excluded.updated_at > persons.c.updated_at,
    )
    return _written(conn, stmt, rows)


def upsert_cases(conn: Executor, *, records: Iterable[CaseRecord]) -> int:
    """Write the newest version of each case (and its person); older versions change nothing.

    Returns how many case rows were inserted or updated; the rest were stale or repeats.
    """
    records = list(records)
    # persons first (cases.nip references them), from every record, not only the latest: their
    # own guard keeps the newest view of each person, so batching cannot change the result
    upsert_persons(conn, records=records)
    latest = dedupe_latest(records, key=lambda r: r.case_id, version=lambda r: r.version)
    latest.sort(key=lambda r: r.case_id)
    stmt = _insert(conn, cases)
    stmt = stmt.on_conflict_do_update(
        index_elements=[cases.c.case_id],
        set_={c.name: stmt.excluded[c.name] for c in cases.c if c.name != "case_id"},
        where=stmt.excluded.version > cases.c.version,
    )
    return _written(conn, stmt, [case_row(r) for r in latest])


def _insert_new(conn: Executor, table: Table, rows: list[dict[str, Any]]) -> int:
    keys = [c for c in table.primary_key.columns]
    rows = dedupe_first(rows, key=lambda r: tuple(r[c.name] for c in keys))
    rows.sort(key=lambda r: tuple(r[c.name] for c in keys))
    stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=keys)
    return _written(conn, stmt, rows)


def insert_transitions(conn: Executor, *, records: Iterable[CaseTransition]) -> int:
    """Append audit transitions not yet recorded (by transition_id). Returns rows inserted."""
    return _insert_new(conn, case_transitions, [_plain_row(r) for r in records])


def insert_orders(conn: Executor, *, records: Iterable[SiasnOrder]) -> int:
    """Record SIASN orders not yet recorded (by order_id). Returns rows inserted."""
    return _insert_new(conn, orders, [_plain_row(r) for r in records])


def insert_order_results(conn: Executor, *, records: Iterable[SiasnOrderResult]) -> int:
    """Record order outcomes not yet recorded (by order_id and outcome). Returns rows inserted."""
    return _insert_new(conn, order_results, [_plain_row(r) for r in records])


def insert_alerts(conn: Executor, *, records: Iterable[Alert]) -> int:
    """Record alerts not yet recorded (by alert_id). Returns rows inserted."""
    return _insert_new(conn, alerts, [_plain_row(r) for r in records])


# -- reads (the API and dashboard side) ---------------------------------------------------------


@dataclass(frozen=True)
class CasePage:
    """One page of cases, newest update first, and how many match in all."""

    items: list[CaseRecord]
    total: int


def get_case(conn: Executor, *, case_id: str) -> CaseRecord | None:
    """The current record of one case, exactly as the stream published it."""
    doc = conn.execute(select(cases.c.record).where(cases.c.case_id == case_id)).scalar()
    return None if doc is None else CaseRecord.model_validate(doc)


def list_cases(
    conn: Executor,
    *,
    state: str | None = None,
    province_code: str | None = None,
    agency_name: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CasePage:
    """Cases matching the filters (each uses an index), newest update first."""
    where = []
    if state is not None:
        where.append(cases.c.state == state)
    if province_code is not None:
        where.append(cases.c.province_code == province_code)
    if agency_name is not None:
        where.append(cases.c.agency_name == agency_name)
    total = conn.execute(select(func.count()).select_from(cases).where(*where)).scalar_one()
    docs = conn.execute(
        select(cases.c.record).where(*where)
        .order_by(cases.c.updated_at.desc(), cases.c.case_id).limit(limit).offset(offset)
    ).scalars()
    return CasePage(items=[CaseRecord.model_validate(d) for d in docs], total=total)


def transitions_of(conn: Executor, *, case_id: str) -> list[CaseTransition]:
    """A case's audit trail in version order."""
    rows = conn.execute(
        select(case_transitions).where(case_transitions.c.case_id == case_id)
        .order_by(case_transitions.c.version, case_transitions.c.at,
                  case_transitions.c.transition_id)
    ).mappings()
    return [CaseTransition.model_validate(dict(r)) for r in rows]
