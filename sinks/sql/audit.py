"""The personal-data access log: who read which person's data or case, in what role, when and
from where (UU 27/2022). Insert-only in the database itself (triggers refuse UPDATE and DELETE).

These are the repository functions the HTTP API calls for every read of a person or a case;
the API's middleware and ``GET /v1/audit`` belong to the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .tables import audit_log


@dataclass(frozen=True)
class Access:
    """One read of personal data."""

    at: datetime
    principal: str
    role: str
    action: str  # e.g. "read_case", "read_person", "list_cases"
    subject_kind: str  # "case", "person", "cases"
    subject_id: str | None = None
    remote_addr: str | None = None
    request_id: str | None = None
    detail: str | None = None


def record_access(conn: Connection | Session, *, accesses: list[Access]) -> None:
    """Append accesses to the log (in the caller's transaction, with the read they describe)."""
    if accesses:
        conn.execute(insert(audit_log), [vars(a) for a in accesses])


def list_access(conn: Connection | Session, *, since: datetime | None = None,
                subject_id: str | None = None, limit: int = 100) -> list[Access]:
    """The newest accesses first, optionally since an instant or for one subject."""
    query = select(*(audit_log.c[f] for f in Access.__dataclass_fields__))
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if subject_id is not None:
        query = query.where(audit_log.c.subject_id == subject_id)
    rows = conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit)).all()
    return [Access(**row._mapping) for row in rows]
