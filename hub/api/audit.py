"""The personal-data access log of the API (UU 27/2022): who read which person or case, in
what role, when and from where. Every read of personal data writes one row to the append-only
``audit_log`` table (sinks/sql/audit.py), in its own transaction so a failed read is logged too
only when it returned data. ``GET /v1/audit`` (national Satgas only) reads it back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from sinks.sql.audit import Access, list_access, record_access

from .access import Principal, Role
from .deps import CaseReaderDep, ConnDep, Monitor, monitor_of


def audit(request: Request, who: Principal, action: str, kind: str,
          subject: str | None = None, detail: str | None = None) -> None:
    """Record one access to personal data by ``who`` through this request."""
    monitor: Monitor = monitor_of(request)
    access = Access(at=monitor.clock(), principal=who.label, role=who.role.value, action=action,
                    subject_kind=kind, subject_id=subject,
                    remote_addr=request.client.host if request.client else None,
                    request_id=request.headers.get("x-request-id"), detail=detail)
    with monitor.engine.begin() as conn:
        record_access(conn, accesses=[access])


def describe_query(request: Request) -> str | None:
    """The filters of a list read, as given (no personal data is a filter)."""
    text = str(request.query_params)
    return text[:1000] or None


def router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["audit"])

    @r.get("/audit")
    def read_audit(who: CaseReaderDep, conn: ConnDep,
                   since: datetime | None = None,
                   subject_id: Annotated[str | None, Query(max_length=100)] = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """The newest personal-data accesses (national Satgas only)."""
        if who.role is not Role.NATIONAL:
            raise HTTPException(403, "the access log is for the national Satgas only")
        rows = list_access(conn, since=since, subject_id=subject_id, limit=limit)
        return {"items": [vars(a) for a in rows]}

    return r
