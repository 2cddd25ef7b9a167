"""Cases, persons and review decisions: ``/v1/cases``, ``/v1/asn/{nip}``, ``/v1/review/{case_id}``.

Scope first: a provincial or agency key sees only its own cases. A filter naming another province
or agency, or a case id outside the scope, is a 403 that says why. A NIP with no case in the
caller's scope is a 404 (whether that person has cases elsewhere is itself outside the scope).
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import ValidationError

from schemas import regions
from schemas.errors import RetriableError, explain
from schemas.models import (
    CaseState,
    Election,
    Position,
    ReviewDecision,
    SanctionLevel,
    ViolationType,
)
from schemas.topics import COMMANDS
from sinks.sql import queries

from ...export import MEDIA_TYPES, ExportFormat, render
from ..access import Principal
from ..audit import audit, describe_query
from ..deps import CaseReaderDep, ConnDep, MonitorDep, Send
from ..models import (
    CaseDetailOut,
    CaseOut,
    CasesOut,
    OrderOut,
    PersonOut,
    Problem,
    ReviewAccepted,
    ReviewIn,
    TransitionOut,
)

log = logging.getLogger(__name__)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 422)}

ProvinceQ = Annotated[str | None, Query(pattern=r"^\d{2}$", description="Province code, e.g. 32")]
RegencyQ = Annotated[str | None, Query(pattern=r"^\d{2}\.\d{2}$",
                                       description="Regency/city code, e.g. 32.73")]
AgencyQ = Annotated[str | None, Query(min_length=1, max_length=200,
                                      description="Agency code or name")]
CaseIdP = Annotated[str, Path(min_length=1, max_length=100)]


def check_scope_filters(who: Principal, *, province: str | None = None,
                        regency: str | None = None, agency: str | None = None) -> None:
    """403 when a filter names a province or agency outside the caller's scope."""
    if who.province_code is not None:
        if province is not None and province != who.province_code:
            raise HTTPException(403, f"this key sees province {who.province_code} only")
        if regency is not None and regency[:2] != who.province_code:
            raise HTTPException(403, f"this key sees province {who.province_code} only")
    if who.agency is not None and agency is not None and agency != who.agency:
        raise HTTPException(403, f"this key sees the cases of {who.agency} only")


def _known_region(code: str | None) -> None:
    if code is not None and not regions.is_known(code):
        raise HTTPException(422, f"unknown Kemendagri region code {code!r}")


def case_out(s: queries.CaseSummary) -> CaseOut:
    return CaseOut(**s.model_dump())


def require_case(conn: ConnDep, who: Principal, case_id: str) -> None:
    """404 for an unknown case, 403 for one outside the caller's scope."""
    visible = queries.in_scope(conn, case_id=case_id, scope=who.scope)
    if visible is None:
        raise HTTPException(404, f"no case {case_id!r}")
    if not visible:
        raise HTTPException(403, f"case {case_id!r} is outside this key's scope")


def case_filter(
    who: CaseReaderDep, monitor: MonitorDep,
    state: Annotated[list[CaseState] | None, Query(description="One or more states")] = None,
    election: Election | None = None,
    province: ProvinceQ = None,
    regency: RegencyQ = None,
    agency: AgencyQ = None,
    violation_type: ViolationType | None = None,
    level: SanctionLevel | None = None,
    position: Position | None = None,
    overdue: Annotated[bool | None, Query(description="PPK deadline passed, no sanction")]
    = None,
    needs_review: bool | None = None,
    blocked: bool | None = None,
) -> queries.CaseFilter:
    """The list's filters, checked against the caller's scope (403 outside it)."""
    check_scope_filters(who, province=province, regency=regency, agency=agency)
    _known_region(province)
    _known_region(regency)
    return queries.CaseFilter(
        state=tuple(s.value for s in state or ()), election=election, province_code=province,
        region_code=regency, agency=agency, violation_type=violation_type, level=level,
        position=position, overdue=overdue, needs_review=needs_review, blocked=blocked,
        today=monitor.today())

FilterDep = Annotated[queries.CaseFilter, Depends(case_filter)]


def router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["cases"], responses=ERRORS)

    @r.get("/cases", response_model=CasesOut)
    def list_cases(
        request: Request, who: CaseReaderDep, conn: ConnDep, monitor: MonitorDep,
        filters: FilterDep,
        sort: queries.Sort = queries.Sort.UPDATED_DESC,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> CasesOut:
        """Cases in the caller's scope, filtered, sorted and paged (with the total)."""
        if limit > monitor.page_max:
            raise HTTPException(422, f"limit {limit} exceeds the largest page, "
                                f"{monitor.page_max}")
        page = queries.list_cases(conn, scope=who.scope, filters=filters, sort=sort,
                                  limit=limit, offset=offset)
        audit(request, who, "list_cases", "cases", None, describe_query(request))
        more = offset + len(page.items) < page.total
        return CasesOut(items=[case_out(s) for s in page.items], total=page.total, limit=limit,
                        offset=offset, next_offset=offset + len(page.items) if more else None)

    @r.get("/cases.{fmt}", response_class=Response,
           responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}}})
    def export_cases(
        request: Request, fmt: ExportFormat, who: CaseReaderDep, conn: ConnDep, monitor: MonitorDep,
        filters: FilterDep, sort: queries.Sort = queries.Sort.UPDATED_DESC,
    ) -> Response:
        """The filtered case list as a CSV or XLSX file (every match, up to the export cap)."""
        page = queries.list_cases(conn, scope=who.scope, filters=filters, sort=sort,
                                  limit=monitor.export_max, offset=0)
        if page.total > monitor.export_max:
            raise HTTPException(422, f"{page.total} cases match; an export holds at most "
                                f"{monitor.export_max}: narrow the filters")
        audit(request, who, f"export_cases_{fmt.value}", "cases", None, describe_query(request))
        return Response(render(fmt, page.items), media_type=MEDIA_TYPES[fmt], headers={
            "Content-Disposition": f'attachment; filename="netral-cases.{fmt.value}"'})

    @r.get("/cases/{case_id}", response_model=CaseDetailOut)
    def get_case(request: Request, case_id: CaseIdP, who: CaseReaderDep,
                 conn: ConnDep) -> CaseDetailOut:
        """One case: its record, its timeline (audit transitions), sources and SIASN orders."""
        require_case(conn, who, case_id)
        audit(request, who, "read_case", "case", case_id)
        record = queries.get_case(conn, case_id=case_id)
        assert record is not None  # require_case saw it
        timeline = [TransitionOut(at=t.at, from_state=t.from_state, to_state=t.to_state,
                                  rule=t.rule, cause_event_id=t.cause_event_id,
                                  version=t.version)
                    for t in queries.transitions_of(conn, case_id=case_id)]
        orders = queries.orders_of(conn, case_ids=[case_id]).get(case_id, [])
        doc = record.model_dump(mode="json")
        return CaseDetailOut(case=doc, timeline=timeline, sources=doc["sources"],
                             orders=[OrderOut(**o.__dict__) for o in orders])

    @r.get("/asn/{nip}", response_model=PersonOut)
    def get_person(
        nip: Annotated[str, Path(pattern=r"^\d{18}$", description="18-digit NIP")],
        request: Request, who: CaseReaderDep, conn: ConnDep,
    ) -> PersonOut:
        """A civil servant's cases (in the caller's scope) and whether SIASN holds a block."""
        view = queries.person(conn, nip=nip, scope=who.scope)
        if view is None:
            raise HTTPException(404, f"no case in this key's scope names NIP {nip}")
        audit(request, who, "read_person", "person", nip)
        return PersonOut(nip=view.nip, name=view.name, agency=view.agency,
                         position=view.position, region=view.region, blocked=view.blocked,
                         cases=[case_out(c) for c in view.cases])

    @r.post("/review/{case_id}", status_code=202, response_model=ReviewAccepted,
            responses={503: {"model": Problem}})
    async def review(case_id: CaseIdP, body: ReviewIn, request: Request, who: CaseReaderDep,
                     monitor: MonitorDep) -> ReviewAccepted:
        """Merge or split a case under review; answered once the command is on netral.commands
        (acks=all). The cases processor applies it."""
        if not who.may_review:
            raise HTTPException(403, f"a {who.role.value} key cannot decide reviews")
        with monitor.engine.connect() as conn:
            require_case(conn, who, case_id)
            if body.target_case_id is not None:
                require_case(conn, who, body.target_case_id)
        try:
            decision = ReviewDecision(
                command_id=str(uuid.uuid4()), case_id=case_id, action=body.action,
                target_case_id=body.target_case_id, event_ids=tuple(body.event_ids),
                decided_by=who.label, reason=body.reason, at=monitor.clock())
        except ValidationError as err:
            raise HTTPException(422, explain(err)) from None
        send: Send = request.app.state.send
        codec = request.app.state.codec
        value = codec.encode_record(decision, topic=COMMANDS)
        try:
            partition, offset = await send(COMMANDS, case_id.encode(), value)
        except RetriableError as err:
            raise HTTPException(503, f"broker unavailable, the decision was not recorded: {err}",
                                headers={"Retry-After": "5"}) from None
        log.info("review %s of case %s by %s: %s", body.action.value, case_id, who.label,
                 decision.command_id)
        return ReviewAccepted(command_id=decision.command_id, topic=COMMANDS,
                              partition=partition, offset=offset)

    return r
