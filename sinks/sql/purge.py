"""Retention of personal data in the national record: purge what closed cases say about persons.

UU 27/2022 wants personal data kept no longer than its purpose needs. A case closed (sanctioned,
not proven, cancelled, rejected) before the cutoff loses the person's identity: NIP, name and
position title in ``cases`` and its JSON record, the match candidates and the evidence links;
the NIP in its orders, order results and alerts; and the ``persons`` row once no remaining case
names it. What aggregates need stays: the case row itself with election, state, region,
province, violation type and level, the person's agency and position category, dates, the
append-only transitions (which hold no personal data) and every order and alert row. The case
is listed in ``purged_cases`` so that a replay of the topics cannot bring the data back, and
each run is recorded in the append-only ``purges`` table.

:func:`~schemas.privacy.scrub_case` (pure, shared with the cases stage, which scrubs
``netral.cases`` the same way) says what a purged case keeps; :func:`purge_personal_data` runs
in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from schemas.models import CaseRecord
from schemas.privacy import CLOSED_STATES, REDACTED, REDACTED_NIP, scrub_case

from .tables import alerts, cases, order_results, orders, persons, purged_cases, purges


@dataclass(frozen=True)
class PurgeReport:
    older_than: datetime
    cases: int
    persons: int
    orders: int
    alerts: int


def purge_personal_data(conn: Connection, *, older_than: datetime, now: datetime,
                        dry_run: bool = False) -> PurgeReport:
    """Purge closed cases last updated before ``older_than``; returns what was (or would be)
    changed. Already purged cases are skipped, so a second run changes nothing."""
    rows = conn.execute(
        select(cases.c.case_id, cases.c.nip, cases.c.record)
        .where(cases.c.state.in_([s.value for s in CLOSED_STATES]),
               cases.c.updated_at < older_than,
               cases.c.case_id.not_in(select(purged_cases.c.case_id)))
        .order_by(cases.c.case_id)
    ).all()
    ids = [r.case_id for r in rows]
    nips = {r.nip for r in rows if r.nip}
    if dry_run or not ids:
        counts = _counts(conn, ids, nips)
        return PurgeReport(older_than, len(ids), *counts)
    for row in rows:
        scrubbed = scrub_case(CaseRecord.model_validate(row.record))
        conn.execute(update(cases).where(cases.c.case_id == row.case_id).values(
            nip=None, person_name=REDACTED, record=scrubbed.model_dump(mode="json")))
    n_orders = 0
    for table in (orders, order_results):
        result = conn.execute(update(table).where(table.c.case_id.in_(ids))
                              .values(nip=REDACTED_NIP))
        n_orders += result.rowcount if table is orders else 0
    n_alerts = conn.execute(update(alerts).where(alerts.c.case_id.in_(ids),
                                                 alerts.c.nip.is_not(None))
                            .values(nip=None)).rowcount
    still_named = select(cases.c.nip).where(cases.c.nip.is_not(None))
    n_persons = conn.execute(delete(persons).where(persons.c.nip.in_(nips),
                                                   persons.c.nip.not_in(still_named))).rowcount
    conn.execute(insert(purged_cases), [{"case_id": i, "purged_at": now} for i in ids])
    report = PurgeReport(older_than, len(ids), n_persons, n_orders, n_alerts)
    conn.execute(insert(purges).values(at=now, older_than=older_than, cases=report.cases,
                                       persons=report.persons, orders=report.orders,
                                       alerts=report.alerts))
    return report


def _counts(conn: Connection, ids: list[str], nips: set[str]) -> tuple[int, int, int]:
    if not ids:
        return 0, 0, 0
    others = select(cases.c.nip).where(cases.c.nip.is_not(None), cases.c.case_id.not_in(ids))
    n_persons = conn.execute(select(func.count()).select_from(persons).where(
        persons.c.nip.in_(nips), persons.c.nip.not_in(others))).scalar_one()
    n_orders = conn.execute(select(func.count()).select_from(orders).where(
        orders.c.case_id.in_(ids))).scalar_one()
    n_alerts = conn.execute(select(func.count()).select_from(alerts).where(
        alerts.c.case_id.in_(ids), alerts.c.nip.is_not(None))).scalar_one()
    return int(n_persons), int(n_orders), int(n_alerts)


def purged_ids(conn: Connection | Session, case_ids: list[str]) -> set[str]:
    """Which of these cases were purged (the SQL sink scrubs their records on replay)."""
    if not case_ids:
        return set()
    return set(conn.execute(select(purged_cases.c.case_id)
                            .where(purged_cases.c.case_id.in_(case_ids))).scalars())


__all__ = ["CLOSED_STATES", "REDACTED", "REDACTED_NIP", "PurgeReport", "purge_personal_data",
           "purged_ids", "scrub_case"]
