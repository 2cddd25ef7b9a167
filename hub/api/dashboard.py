"""The Satgas dashboard: server-rendered pages (Jinja2), htmx and Server-Sent Events for the live
alert feed and counters. Labels are Bahasa Indonesia; code is English.

Login is a form taking a monitoring key; the signed session cookie then holds the key's hash (never
the key). Every page reads through the same scoped queries as the API, so a provincial login sees
only its province, and a public login sees only the aggregate overview.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Connection
from sse_starlette.sse import EventSourceResponse

from connectors.keys import hash_key
from schemas import regions
from schemas.models import CaseState
from sinks.sql import queries

from .. import me
from .access import Principal, Role
from .audit import audit
from .deps import Monitor, monitor_of

STATE_LABELS = {
    "REPORTED": "Dilaporkan",
    "UNDER_VERIFICATION": "Verifikasi",
    "UNDER_BAWASLU_REVIEW": "Kajian Bawaslu",
    "NEEDS_REVIEW": "Perlu ditinjau",
    "NOT_PROVEN": "Tidak terbukti",
    "RECOMMENDED": "Menunggu PPK",
    "PERINGATAN": "Peringatan",
    "TEGURAN": "Teguran",
    "BLOCKED": "Diblokir",
    "SANCTIONED": "Disanksi",
    "CLOSED": "Selesai",
    "CANCELLED": "Dibatalkan",
    "REJECTED": "Ditolak",
}
ROLE_LABELS = {Role.NATIONAL: "Satgas Nasional", Role.PROVINCE: "Satgas Provinsi",
               Role.AGENCY: "Instansi", Role.PUBLIC: "Publik"}
FEED_SIZE = 20


def _region_name(code: str | None) -> str:
    if code is None:
        return "-"
    return regions.name_of(code) if regions.is_known(code) else code


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("hub.api", "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters["region"] = _region_name
    env.filters["state"] = lambda s: STATE_LABELS.get(str(s), str(s))
    env.filters["days"] = lambda v: "-" if v is None else f"{v:.1f}".rstrip("0").rstrip(".")
    env.filters["pct"] = lambda v: "-" if v is None else f"{v * 100:.0f}%"
    env.globals["role_labels"] = ROLE_LABELS
    return env


def router() -> APIRouter:
    templates = Jinja2Templates(env=_environment())
    r = APIRouter(prefix="/dashboard", include_in_schema=False)

    def who_of(request: Request) -> Principal:
        monitor = monitor_of(request)
        key_hash = request.session.get("key_hash")
        found = monitor.keys.by_hash(key_hash) if isinstance(key_hash, str) else None
        if found is None:
            raise HTTPException(303, "log in first", headers={"Location": "/dashboard/login"})
        return found

    def page(request: Request, name: str, who: Principal, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"who": who, **context})

    def forbidden(request: Request, who: Principal, status: int = 403) -> HTMLResponse:
        """The refusal page: 403 for a role that may not see it, 404 for what is not there."""
        return templates.TemplateResponse(request, "forbidden.html", {"who": who},
                                          status_code=status)

    def case_page(request: Request, who: Principal, *, title: str, hint: str,
                  filters: queries.CaseFilter, sort: queries.Sort) -> HTMLResponse:
        if not who.sees_cases:
            return forbidden(request, who)
        province = request.query_params.get("province")
        if province is not None:
            if not (len(province) == 2 and province.isdigit() and regions.is_known(province)):
                return forbidden(request, who, 404)
            if who.province_code not in (None, province):
                return forbidden(request, who)
            filters = replace(filters, province_code=province)
            title = f"{title} · {regions.name_of(province)}"
        monitor = monitor_of(request)
        with monitor.engine.connect() as conn:
            listed = queries.list_cases(conn, scope=who.scope, filters=filters, sort=sort,
                                        limit=200)
        audit(request, who, "list_cases", "cases", None, f"dashboard {title}"[:1000])
        return page(request, "cases.html", who, title=title, hint=hint, page=listed,
                    today=monitor.today())

    @r.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"who": None, "error": None})

    @r.post("/login", response_class=HTMLResponse)
    def login(request: Request, api_key: Annotated[str, Form(max_length=500)] = "") -> Response:
        found = monitor_of(request).keys.principal_of(api_key) if api_key else None
        if found is None:
            return templates.TemplateResponse(
                request, "login.html", {"who": None, "error": "Kunci API tidak dikenal."},
                status_code=401)
        request.session.clear()
        request.session["key_hash"] = hash_key(api_key)
        return RedirectResponse("/dashboard", status_code=303)

    @r.post("/logout")
    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/dashboard/login", status_code=303)

    @r.get("", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        who = who_of(request)
        monitor = monitor_of(request)
        with monitor.engine.connect() as conn:
            result = queries.stats(conn, scope=who.scope,
                                   dimensions=["state", "province", "violation_type"])
        peak = max((n for _, n in result.weekly), default=0)
        return page(request, "overview.html", who, stats=result, peak=peak,
                    counters=_counters(result))

    @r.get("/deadlines", response_class=HTMLResponse)
    def deadlines(request: Request) -> HTMLResponse:
        who = who_of(request)
        monitor = monitor_of(request)
        today = monitor.today()
        horizon = monitor.calendar.add_working_days(today, monitor.deadline_risk_days)
        return case_page(request, who, title="Tenggat berisiko",
                         hint=f"Tenggat PPK dalam {monitor.deadline_risk_days} hari kerja "
                              f"(sampai {horizon:%d-%m-%Y}) atau sudah lewat.",
                         filters=queries.CaseFilter(
                             state=tuple(s.value for s in queries.AWAITING_PPK),
                             deadline_before=horizon, today=today),
                         sort=queries.Sort.DEADLINE)

    @r.get("/ppk", response_class=HTMLResponse)
    def awaiting_ppk(request: Request) -> HTMLResponse:
        return case_page(request, who_of(request), title="Menunggu PPK",
                         hint="Rekomendasi sudah dikirim; PPK belum menjatuhkan sanksi.",
                         filters=queries.CaseFilter(
                             state=tuple(s.value for s in queries.AWAITING_PPK)),
                         sort=queries.Sort.DEADLINE)

    @r.get("/blocked", response_class=HTMLResponse)
    def blocked(request: Request) -> HTMLResponse:
        return case_page(request, who_of(request), title="ASN diblokir",
                         hint="Data kepegawaian diblokir di SIASN (Peraturan BKN 1/2023).",
                         filters=queries.CaseFilter(blocked=True),
                         sort=queries.Sort.UPDATED_DESC)

    @r.get("/review", response_class=HTMLResponse)
    def review_queue(request: Request) -> HTMLResponse:
        return case_page(request, who_of(request), title="Antrean tinjauan",
                         hint="Kecocokan nama yang meragukan: gabungkan atau pisahkan.",
                         filters=queries.CaseFilter(state=(CaseState.NEEDS_REVIEW.value,)),
                         sort=queries.Sort.OPENED)

    @r.get("/cases/{case_id}", response_class=HTMLResponse)
    def case_detail(request: Request, case_id: str) -> HTMLResponse:
        who = who_of(request)
        if not who.sees_cases:
            return forbidden(request, who)
        monitor = monitor_of(request)
        with monitor.engine.connect() as conn:
            visible = queries.in_scope(conn, case_id=case_id[:100], scope=who.scope)
            if not visible:
                return forbidden(request, who, 404 if visible is None else 403)
            found = queries.get_case(conn, case_id=case_id)
            assert found is not None
            timeline = queries.transitions_of(conn, case_id=case_id)
            orders = queries.orders_of(conn, case_ids=[case_id]).get(case_id, [])
        audit(request, who, "read_case", "case", case_id, "dashboard")
        return page(request, "case.html", who, case=found, timeline=timeline, orders=orders)

    @r.get("/alerts", response_class=HTMLResponse)
    def alert_feed(request: Request) -> HTMLResponse:
        who = who_of(request)
        if not who.sees_cases:
            return forbidden(request, who)
        monitor = monitor_of(request)
        with monitor.engine.connect() as conn:
            items, total = queries.list_alerts(conn, scope=who.scope, limit=FEED_SIZE)
        return page(request, "alerts.html", who, alerts=items, total=total)

    @r.get("/me", response_class=HTMLResponse)
    def evaluation(request: Request) -> HTMLResponse:
        who = who_of(request)
        if not who.sees_cases:
            return forbidden(request, who)
        monitor = monitor_of(request)
        with monitor.engine.connect() as conn:
            histories = queries.case_histories(conn, scope=who.scope)
        result = me.evaluate(histories, monitor.calendar, monitor.today())
        return page(request, "me.html", who, result=result)

    @r.get("/pipeline", response_class=HTMLResponse)
    def pipeline(request: Request) -> HTMLResponse:
        who = who_of(request)
        if who.role is not Role.NATIONAL:
            return forbidden(request, who)
        monitor = monitor_of(request)
        with monitor.engine.connect() as conn:
            last = queries.last_update(conn)
        return page(request, "pipeline.html", who, lag=monitor.lag.snapshot,
                    lag_error=monitor.lag.error, last_update=last,
                    groups=monitor.lag.snapshot.by_group() if monitor.lag.snapshot else {})

    @r.get("/stream")
    async def stream(request: Request) -> Response:
        """Server-Sent Events: ``alert`` (a new feed item) and ``counters`` (state totals)."""
        who = who_of(request)
        monitor = monitor_of(request)
        return EventSourceResponse(_events(request, who, monitor, templates), ping=15)

    return r


def _counters(result: queries.Stats) -> dict[str, int]:
    by_state = result.by.get("state", {})
    return {
        "total": result.total,
        "ppk": sum(by_state.get(s.value, 0) for s in queries.AWAITING_PPK),
        "blocked": by_state.get(CaseState.BLOCKED.value, 0),
        "review": by_state.get(CaseState.NEEDS_REVIEW.value, 0),
        "sanctioned": by_state.get(CaseState.SANCTIONED.value, 0)
        + by_state.get(CaseState.CLOSED.value, 0),
    }


def _snapshot(conn: Connection, who: Principal) -> tuple[list[Any], dict[str, int]]:
    alerts: list[Any] = []
    if who.sees_cases:
        alerts, _ = queries.list_alerts(conn, scope=who.scope, limit=FEED_SIZE)
    counters = _counters(queries.stats(conn, scope=who.scope, dimensions=["state"],
                                       weekly=False))
    return alerts, counters


async def _events(request: Request, who: Principal, monitor: Monitor,
                  templates: Jinja2Templates) -> AsyncIterator[dict[str, str]]:
    """Poll the national record every ``poll_s``; send what changed (in the caller's scope)."""
    seen: set[str] | None = None
    last_counters: dict[str, int] | None = None
    alert_item = templates.env.get_template("_alert.html")
    counters_part = templates.env.get_template("_counters.html")
    while not await request.is_disconnected():
        def read() -> tuple[list[Any], dict[str, int]]:
            with monitor.engine.connect() as conn:
                return _snapshot(conn, who)
        alerts, counters = await asyncio.to_thread(read)
        ids = {a.alert_id for a in alerts}
        if seen is not None:
            for alert in reversed([a for a in alerts if a.alert_id not in seen]):
                yield {"event": "alert", "data": alert_item.render(alert=alert, live=True)}
        seen = ids if seen is None else seen | ids
        if counters != last_counters:
            yield {"event": "counters", "data": counters_part.render(counters=counters)}
            yield {"event": "counters-json", "data": json.dumps(counters)}
            last_counters = counters
        await asyncio.sleep(monitor.poll_s)

