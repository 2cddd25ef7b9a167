"""Read-side queries of the national record for the monitoring API and dashboard (SQLAlchemy Core).

Every query takes its connection and a :class:`Scope`: the part of the record the caller may see
(a province, an agency, or everything). The scope is applied inside the SQL ``WHERE`` of every
query, counts and aggregates included, so nothing outside it can leak through a filter, a total or
a statistic. Nothing reads the clock: "today" is an argument.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.orm import Session

from schemas.models import Alert, CaseRecord, CaseState, CaseTransition

from .repository import Executor
from .tables import alerts, case_transitions, cases, order_results, orders, persons

AWAITING_PPK = (CaseState.RECOMMENDED, CaseState.PERINGATAN, CaseState.TEGURAN, CaseState.BLOCKED)
"""States in which the PPK owes a sanction (and a deadline runs)."""

BLOCK_EFFECTIVE = ("CONFIRMED", "ALREADY_IN_EFFECT")
"""Order outcomes meaning SIASN has the order in effect."""


@dataclass(frozen=True)
class Scope:
    """What a caller may see: everything (both None), one province, or one agency's cases.

    An agency is matched on its code or its name (``agency_code`` is often missing in reports).
    """

    province_code: str | None = None
    agency: str | None = None

    def cases_clause(self) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        if self.province_code is not None:
            parts.append(cases.c.province_code == self.province_code)
        if self.agency is not None:
            parts.append(or_(cases.c.agency_code == self.agency,
                             cases.c.agency_name == self.agency))
        return and_(true(), *parts)


class Sort(StrEnum):
    """Orders of a case list; ``-`` means descending."""

    UPDATED_DESC = "-updated_at"
    UPDATED = "updated_at"
    OPENED_DESC = "-opened_at"
    OPENED = "opened_at"
    DEADLINE = "next_deadline"
    DEADLINE_DESC = "-next_deadline"


@dataclass(frozen=True)
class CaseFilter:
    """Filters of ``GET /v1/cases``; None means "any". ``today`` decides what is overdue."""

    state: tuple[str, ...] = ()
    election: str | None = None
    province_code: str | None = None
    region_code: str | None = None
    agency: str | None = None
    violation_type: str | None = None
    level: str | None = None
    position: str | None = None
    overdue: bool | None = None
    needs_review: bool | None = None
    blocked: bool | None = None
    deadline_before: date | None = None
    today: date = field(default_factory=date.today)

    def clause(self) -> ColumnElement[bool]:
        c = cases.c
        parts: list[ColumnElement[bool]] = []
        if self.state:
            parts.append(c.state.in_(self.state))
        if self.election is not None:
            parts.append(c.election == self.election)
        if self.province_code is not None:
            parts.append(c.province_code == self.province_code)
        if self.region_code is not None:
            parts.append(c.region_code == self.region_code)
        if self.agency is not None:
            parts.append(or_(c.agency_code == self.agency, c.agency_name == self.agency))
        if self.violation_type is not None:
            parts.append(c.violation_type == self.violation_type)
        if self.level is not None:
            parts.append(c.level == self.level)
        if self.position is not None:
            parts.append(position_column() == self.position)
        if self.overdue is not None:
            late = and_(c.state.in_([s.value for s in AWAITING_PPK]),
                        c.next_deadline.is_not(None), c.next_deadline < self.today)
            parts.append(late if self.overdue else ~late)
        if self.needs_review is not None:
            review = c.state == CaseState.NEEDS_REVIEW.value
            parts.append(review if self.needs_review else ~review)
        if self.blocked is not None:
            parts.append(c.blocked.is_(self.blocked))
        if self.deadline_before is not None:
            parts.append(and_(c.next_deadline.is_not(None),
                              c.next_deadline <= self.deadline_before))
        return and_(true(), *parts)


def position_column() -> ColumnElement[Any]:
    """The named person's position (``record.person.position``, kept as a column)."""
    return cases.c.position


# -- cases --------------------------------------------------------------------------------------


class CaseSummary(BaseModel):
    """One row of a case list: the filter columns, not the whole record.

    Also the API's shape of a listed case (``hub.api.models.CaseOut`` adds nothing to it).
    """

    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int
    election: str
    state: str
    nip: str | None
    person_name: str
    agency_name: str
    region_code: str
    province_code: str
    violation_type: str
    level: str | None
    opened_at: datetime
    updated_at: datetime
    next_deadline: date | None
    escalation_step: int
    blocked: bool


@dataclass(frozen=True)
class CasePage:
    items: list[CaseSummary]
    total: int


_SUMMARY = [cases.c[name] for name in CaseSummary.model_fields]


def _ordered(stmt: Select[Any], sort: Sort) -> Select[Any]:
    name = sort.value.lstrip("-")
    column = cases.c[name]
    key = column.desc() if sort.value.startswith("-") else column.asc()
    if name == "next_deadline":  # cases without a deadline last, both ways
        return stmt.order_by(column.is_(None), key, cases.c.case_id)
    return stmt.order_by(key, cases.c.case_id)


def list_cases(conn: Executor, *, scope: Scope, filters: CaseFilter,
               sort: Sort = Sort.UPDATED_DESC, limit: int = 50, offset: int = 0) -> CasePage:
    """A page of cases in scope matching the filters, and how many match in all."""
    where = and_(scope.cases_clause(), filters.clause())
    total = conn.execute(select(func.count()).select_from(cases).where(where)).scalar_one()
    rows = conn.execute(_ordered(select(*_SUMMARY).where(where), sort)
                        .limit(limit).offset(offset)).mappings()
    return CasePage(items=[CaseSummary(**r) for r in rows], total=int(total))


def get_case(conn: Executor, *, case_id: str) -> CaseRecord | None:
    """A case's current record (callers check the scope first, with :func:`in_scope`)."""
    doc = conn.execute(select(cases.c.record).where(cases.c.case_id == case_id)).scalar()
    return None if doc is None else CaseRecord.model_validate(doc)


def in_scope(conn: Executor, *, case_id: str, scope: Scope) -> bool | None:
    """Whether a case is in scope; None when no such case exists."""
    exists = conn.execute(select(cases.c.case_id).where(cases.c.case_id == case_id)).first()
    if exists is None:
        return None
    hit = conn.execute(select(cases.c.case_id).where(cases.c.case_id == case_id,
                                                     scope.cases_clause())).first()
    return hit is not None


def transitions_of(conn: Executor, *, case_id: str) -> list[CaseTransition]:
    """A case's audit trail in time order (the timeline of the case page)."""
    rows = conn.execute(
        select(case_transitions).where(case_transitions.c.case_id == case_id)
        .order_by(case_transitions.c.at, case_transitions.c.version,
                  case_transitions.c.transition_id)).mappings()
    return [CaseTransition.model_validate(dict(r)) for r in rows]


@dataclass(frozen=True)
class OrderView:
    order_id: str
    action: str
    issued_at: datetime
    outcome: str | None
    outcome_at: datetime | None


def orders_of(conn: Executor, *, case_ids: Sequence[str]) -> dict[str, list[OrderView]]:
    """SIASN orders of these cases with their latest outcome, in issue order, by case id."""
    if not case_ids:
        return {}
    rows = conn.execute(
        select(orders.c.case_id, orders.c.order_id, orders.c.action, orders.c.issued_at,
               order_results.c.outcome, order_results.c.at)
        .select_from(orders.outerjoin(order_results,
                                      order_results.c.order_id == orders.c.order_id))
        .where(orders.c.case_id.in_(list(case_ids)))
        .order_by(orders.c.issued_at, orders.c.order_id, order_results.c.at)).all()
    out: dict[str, dict[str, OrderView]] = {}
    for r in rows:
        out.setdefault(r.case_id, {})[r.order_id] = OrderView(
            order_id=r.order_id, action=r.action, issued_at=r.issued_at, outcome=r.outcome,
            outcome_at=r.at)
    return {k: list(v.values()) for k, v in out.items()}


@dataclass(frozen=True)
class PersonView:
    nip: str
    name: str | None
    agency: str | None
    position: str | None
    region: str | None
    cases: list[CaseSummary]
    blocked: bool
    """True while any case of the person holds a block at SIASN."""


def person(conn: Executor, *, nip: str, scope: Scope) -> PersonView | None:
    """A civil servant's cases in scope and block status; None if no case in scope names them."""
    page = list_cases(conn, scope=scope, filters=_by_nip(nip), sort=Sort.OPENED, limit=1000)
    if not page.items:
        return None
    row = conn.execute(select(persons).where(persons.c.nip == nip)).mappings().first()
    return PersonView(
        nip=nip, name=row["name"] if row else page.items[0].person_name,
        agency=row["agency"] if row else page.items[0].agency_name,
        position=row["position"] if row else None, region=row["region"] if row else None,
        cases=page.items, blocked=any(c.blocked for c in page.items))


@dataclass(frozen=True)
class _NipFilter(CaseFilter):
    nip: str = ""

    def clause(self) -> ColumnElement[bool]:
        return and_(super().clause(), cases.c.nip == self.nip)


def _by_nip(nip: str) -> CaseFilter:
    return _NipFilter(nip=nip)


# -- statistics ---------------------------------------------------------------------------------


DIMENSIONS = {
    "state": cases.c.state,
    "province": cases.c.province_code,
    "agency": cases.c.agency_name,
    "violation_type": cases.c.violation_type,
    "level": cases.c.level,
    "election": cases.c.election,
}


@dataclass(frozen=True)
class Stats:
    total: int
    by: dict[str, dict[str, int]]
    """Dimension -> value -> count; a missing value counts under ``"UNKNOWN"``."""
    weekly: list[tuple[date, int]]
    """Cases opened per week (the Monday starting it), oldest first, gaps filled with 0."""


def stats(conn: Executor, *, scope: Scope, filters: CaseFilter | None = None,
          dimensions: Sequence[str] | None = None, weekly: bool = True) -> Stats:
    """Counts of cases in scope (and matching ``filters``) by each dimension and, unless
    ``weekly`` is False (live counters), by week."""
    where = and_(scope.cases_clause(), (filters or CaseFilter()).clause())
    total = conn.execute(select(func.count()).select_from(cases).where(where)).scalar_one()
    columns = {**DIMENSIONS, "position": position_column()}
    wanted = list(dimensions or columns)
    counts: dict[str, Counter[str]] = {name: Counter() for name in wanted}
    # indexed dimensions one query each; the small ones together in one scan (their value
    # combinations are few: at most types x levels x elections x positions)
    joint = [name for name in wanted if name in _SMALL_DIMENSIONS]
    for name in (n for n in wanted if n not in _SMALL_DIMENSIONS):
        column = columns[name]
        for value, n in conn.execute(select(column, func.count()).where(where)
                                     .group_by(column)):
            counts[name][_label(value)] += int(n)
    if joint:
        group = [columns[name] for name in joint]
        for row in conn.execute(select(*group, func.count()).where(where).group_by(*group)):
            for name, value in zip(joint, row[:-1], strict=True):
                counts[name][_label(value)] += int(row[-1])
    by = {name: dict(sorted(counts[name].items())) for name in wanted}
    trend: list[tuple[date, int]] = []
    if weekly:
        # days in SQL (one row per day), weeks here: week arithmetic differs between dialects
        day_of = _wib_day(conn)
        weeks: Counter[date] = Counter()
        for day_value, n in conn.execute(select(day_of, func.count()).where(where)
                                         .group_by(day_of)):
            day_ = day_value if isinstance(day_value, date) else date.fromisoformat(day_value)
            weeks[day_ - timedelta(days=day_.weekday())] += int(n)
        day, last = (min(weeks), max(weeks)) if weeks else (date.max, date.min)
        while day <= last:
            trend.append((day, weeks.get(day, 0)))
            day += timedelta(days=7)
    return Stats(total=int(total), by=by, weekly=trend)


_SMALL_DIMENSIONS = frozenset({"violation_type", "level", "election", "position"})


def _label(value: object) -> str:
    return "UNKNOWN" if value is None else str(value)


def _wib_day(conn: Executor) -> ColumnElement[Any]:
    """The Jakarta (WIB) date a case was opened on, in each dialect's SQL."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    if bind.dialect.name == "postgresql":
        return func.date(func.timezone("Asia/Jakarta", cases.c.opened_at))
    return func.date(cases.c.opened_at, "+7 hours")  # SQLite keeps naive UTC


# -- alerts -------------------------------------------------------------------------------------


def list_alerts(conn: Executor, *, scope: Scope, since: datetime | None = None,
                severity: str | None = None, limit: int = 50, offset: int = 0
                ) -> tuple[list[Alert], int]:
    """Alerts in scope, newest first, and how many match.

    A provincial scope sees its province's alerts; an agency scope sees alerts about its cases
    or naming it.
    """
    parts: list[ColumnElement[bool]] = []
    if scope.province_code is not None:
        parts.append(alerts.c.province_code == scope.province_code)
    if scope.agency is not None:
        own = select(cases.c.case_id).where(scope.cases_clause())
        parts.append(or_(alerts.c.agency_name == scope.agency, alerts.c.case_id.in_(own)))
    if since is not None:
        parts.append(alerts.c.at > since)
    if severity is not None:
        parts.append(alerts.c.severity == severity)
    where = and_(true(), *parts)
    total = conn.execute(select(func.count()).select_from(alerts).where(where)).scalar_one()
    rows = conn.execute(select(alerts).where(where)
                        .order_by(alerts.c.at.desc(), alerts.c.alert_id)
                        .limit(limit).offset(offset)).mappings()
    fields = Alert.model_fields
    return [Alert.model_validate({k: v for k, v in r.items() if k in fields}) for r in rows], \
        int(total)


# -- M&E inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseHistory:
    """What M&E needs of one case: who handles it, its deadline, transitions and block history."""

    case_id: str
    province_code: str
    agency_name: str
    state: str
    opened_at: datetime
    recommendation_deadline: date | None
    escalation_step: int
    transitions: list[tuple[datetime, str, str]] = field(default_factory=list)
    """(at, to_state, rule) in time order."""
    block_confirmed: list[tuple[datetime, str]] = field(default_factory=list)
    """(at, action) of order results SIASN confirmed, in time order."""


def case_histories(conn: Executor, *, scope: Scope) -> list[CaseHistory]:
    """Every case in scope with its transitions and confirmed SIASN results (three queries)."""
    where = scope.cases_clause()
    rows = conn.execute(select(
        cases.c.case_id, cases.c.province_code, cases.c.agency_name, cases.c.state,
        cases.c.opened_at, cases.c.recommendation_deadline, cases.c.escalation_step,
    ).where(where).order_by(cases.c.case_id)).mappings()
    by_id = {r["case_id"]: CaseHistory(**r) for r in rows}
    ids = select(cases.c.case_id).where(where)
    for t in conn.execute(select(case_transitions.c.case_id, case_transitions.c.at,
                                 case_transitions.c.to_state, case_transitions.c.rule)
                          .where(case_transitions.c.case_id.in_(ids))
                          .order_by(case_transitions.c.at, case_transitions.c.version)):
        if t.case_id in by_id:
            by_id[t.case_id].transitions.append((t.at, t.to_state, t.rule))
    for o in conn.execute(select(order_results.c.case_id, order_results.c.at,
                                 order_results.c.action)
                          .where(order_results.c.case_id.in_(ids),
                                 order_results.c.outcome.in_(BLOCK_EFFECTIVE))
                          .order_by(order_results.c.at)):
        if o.case_id in by_id:
            by_id[o.case_id].block_confirmed.append((o.at, o.action))
    return list(by_id.values())


def last_update(conn: Executor) -> datetime | None:
    """When the national record last changed (the newest case update)."""
    value: datetime | None = conn.execute(select(func.max(cases.c.updated_at))).scalar()
    return value


def ping(conn: Executor) -> None:
    """A round trip to the database (health checks)."""
    conn.execute(select(1)).scalar_one()
