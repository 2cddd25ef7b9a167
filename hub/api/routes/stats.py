"""Aggregates and alerts: ``/v1/stats`` (every role, in its scope), ``/v1/me`` (M&E) and
``/v1/alerts``. A provincial key's statistics are computed inside its province in SQL, so no
filter combination can count a case elsewhere."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from schemas.models import CaseState, Election, SanctionLevel, Severity, ViolationType
from sinks.sql import queries

from ... import me
from ..deps import CaseReaderDep, ConnDep, MonitorDep, PrincipalDep
from ..models import AlertOut, AlertsOut, MeOut, ScoreOut, StatsOut, WeekCount
from .cases import ERRORS, AgencyQ, ProvinceQ, RegencyQ, _known_region, check_scope_filters


def score_out(s: me.GroupScore) -> ScoreOut:
    return ScoreOut(**{k: v for k, v in s.__dict__.items()}, ppk_within_share=s.ppk_within_share)


def router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["statistics"], responses=ERRORS)

    @r.get("/stats", response_model=StatsOut)
    def stats(
        who: PrincipalDep, conn: ConnDep, monitor: MonitorDep,
        election: Election | None = None,
        state: Annotated[list[CaseState] | None, Query()] = None,
        province: ProvinceQ = None,
        regency: RegencyQ = None,
        agency: AgencyQ = None,
        violation_type: ViolationType | None = None,
        level: SanctionLevel | None = None,
    ) -> StatsOut:
        """Case counts by state, province, agency, violation type, level, position and
        election, and cases opened per week; public keys get these, and only these."""
        check_scope_filters(who, province=province, regency=regency, agency=agency)
        _known_region(province)
        _known_region(regency)
        filters = queries.CaseFilter(
            state=tuple(s.value for s in state or ()), election=election, province_code=province,
            region_code=regency, agency=agency, violation_type=violation_type, level=level,
            today=monitor.today())
        result = queries.stats(conn, scope=who.scope, filters=filters)
        return StatsOut(total=result.total, by=result.by,
                        weekly=[WeekCount(week=w, count=n) for w, n in result.weekly])

    @r.get("/me", response_model=MeOut)
    def evaluation(who: CaseReaderDep, conn: ConnDep, monitor: MonitorDep) -> MeOut:
        """M&E per province (Satgas) and per agency, in working days, with a ranking."""
        today = monitor.today()
        result = me.evaluate(queries.case_histories(conn, scope=who.scope), monitor.calendar,
                             today)
        return MeOut(today=today, overall=score_out(result.overall),
                     provinces=[score_out(s) for s in result.provinces],
                     agencies=[score_out(s) for s in result.agencies])

    @r.get("/alerts", response_model=AlertsOut, tags=["alerts"])
    def alerts(
        who: CaseReaderDep, conn: ConnDep,
        since: datetime | None = None,
        severity: Severity | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> AlertsOut:
        """Early-warning alerts in the caller's scope, newest first."""
        if since is not None and since.tzinfo is None:
            raise HTTPException(422, "since: give a timezone (e.g. 2024-11-05T02:00:00Z)")
        items, total = queries.list_alerts(conn, scope=who.scope, since=since,
                                           severity=severity, limit=limit, offset=offset)
        return AlertsOut(items=[AlertOut(**a.model_dump()) for a in items], total=total)

    return r
