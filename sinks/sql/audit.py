"""The personal-data access log: who read which person's data or case, in what role, when and
from where (UU 27/2022). Insert-only in the database itself (triggers refuse UPDATE and DELETE).

These are the repository functions the HTTP API calls for every read of a person or a case;
the API's middleware and ``GET /v1/audit`` belong to the API. Each entry is also queued in
``audit_outbox`` in the same transaction: the relay (hub/audit_relay.py) publishes the queue to
``netral.audit`` and marks each entry only after the broker acknowledged it, so the table is the
source of truth and a broker outage delays the topic but never loses an entry or fails a read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .tables import audit_log, audit_outbox


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
        ids = conn.execute(insert(audit_log).returning(audit_log.c.id),
                           [vars(a) for a in accesses]).scalars().all()
        conn.execute(insert(audit_outbox), [{"audit_id": i, "entry_id": str(uuid.uuid4())}
                                            for i in ids])


@dataclass(frozen=True)
class Unpublished:
    """An entry of the log not yet acknowledged by ``netral.audit``: its row id, its id on the
    topic (a uuid) and the access itself."""

    audit_id: int
    entry_id: str
    access: Access


def unpublished(conn: Connection | Session, *, limit: int) -> list[Unpublished]:
    """The oldest entries the relay has not published yet, in id order."""
    rows = conn.execute(
        select(audit_log.c.id, audit_outbox.c.entry_id,
               *(audit_log.c[f] for f in Access.__dataclass_fields__))
        .join(audit_outbox, audit_outbox.c.audit_id == audit_log.c.id)
        .where(audit_outbox.c.published_at.is_(None))
        .order_by(audit_log.c.id).limit(limit)).all()
    return [Unpublished(r.id, r.entry_id,
                        Access(**{f: r._mapping[f] for f in Access.__dataclass_fields__}))
            for r in rows]


def mark_published(conn: Connection, *, at: datetime,
                   placed: list[tuple[str, int, int]]) -> int:
    """Mark entries published: ``(entry id, partition, offset)`` as the broker acknowledged
    them. An entry already marked stays as it was; returns how many were newly marked."""
    marked = 0
    for entry_id, partition, offset in placed:
        marked += conn.execute(
            update(audit_outbox).where(audit_outbox.c.entry_id == entry_id,
                                       audit_outbox.c.published_at.is_(None))
            .values(published_at=at, kafka_partition=partition, kafka_offset=offset)).rowcount
    return marked


def published_offsets(conn: Connection | Session) -> dict[int, int]:
    """The highest offset per partition of ``netral.audit`` that the outbox knows it wrote."""
    part, offset = audit_outbox.c.kafka_partition, audit_outbox.c.kafka_offset
    rows = conn.execute(select(part, func.max(offset)).where(part.is_not(None))
                        .group_by(part)).all()
    return {int(p): int(o) for p, o in rows}


def pending_count(conn: Connection | Session) -> int:
    """How many entries wait for the relay."""
    return int(conn.execute(select(func.count()).select_from(audit_outbox)
                            .where(audit_outbox.c.published_at.is_(None))).scalar_one())


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
