"""The delivery ledger in the national-record database: what was sent to whom, once.

One row per (dedupe key, recipient, channel). A delivery is claimed (``PENDING``, or ``QUEUED``
for a digest) before it is sent and finished (``SENT`` or ``FAILED``, with the attempts and the
error) right after, so a redelivered or replayed alert finds its row and is not sent again. The
only repeat left is a crash between a send and its record: that row stays ``PENDING`` and is sent
again on the next delivery of the alert, with the same delivery id for the receiver to spot.

SQLAlchemy is synchronous; every call runs in a worker thread so the event loop (and the Kafka
consumer's heartbeats) keep going. Database trouble surfaces as :class:`LedgerUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from schemas.errors import FatalError, RetriableError
from schemas.models.hub import Alert
from sinks.sql.migrate import check_schema
from sinks.sql.tables import alert_deliveries, cases, persons

T = TypeVar("T")
_CHUNK = 300  # keys per IN (...) query: well under SQLite's variable limit


class Status(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    SENT = "SENT"
    FAILED = "FAILED"


DONE = frozenset({Status.SENT, Status.FAILED})


class LedgerUnavailable(RetriableError):
    """The database did not answer (down, locked, timed out): retry the same batch later."""


@dataclass(frozen=True, order=True)
class Key:
    """What makes one delivery: the alert's dedupe key, the recipient and its channel."""

    dedupe_key: str
    recipient: str
    channel: str


@dataclass(frozen=True)
class Claim:
    """A delivery about to be made now (``due_at`` None) or queued for a digest."""

    key: Key
    alert_id: str
    delivery_id: str
    due_at: datetime | None = None
    view: dict[str, Any] | None = None


@dataclass(frozen=True)
class Queued:
    """A delivery waiting in a digest."""

    key: Key
    due_at: datetime
    view: dict[str, Any]


class DeliveryLedger:
    """Reads and writes ``alert_deliveries`` (and reads names for masking) on one engine."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    async def _run(self, work: Callable[[Connection], T]) -> T:
        def go() -> T:
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except (OperationalError, PoolTimeoutError) as err:
                first = str(err).splitlines()[0]
                raise LedgerUnavailable(f"delivery ledger unavailable: {first}") from err
            except SQLAlchemyError as err:
                raise FatalError(f"delivery ledger refused a write: {err}".splitlines()[0]
                                 ) from err
        return await asyncio.to_thread(go)

    async def setup(self) -> None:
        """Refuse a database without the ledger's migration (`netral db upgrade`)."""
        def check(conn: Connection) -> None:
            check_schema(conn)
        await self._run(check)

    async def statuses(self, keys: Iterable[Key]) -> dict[Key, Status]:
        """The recorded status of each key that has a row."""
        wanted = sorted(set(keys))

        def read(conn: Connection) -> dict[Key, Status]:
            found: dict[Key, Status] = {}
            t = alert_deliveries.c
            for i in range(0, len(wanted), _CHUNK):
                chunk = [(k.dedupe_key, k.recipient, k.channel) for k in wanted[i:i + _CHUNK]]
                rows = conn.execute(select(t.dedupe_key, t.recipient, t.channel, t.status).where(
                    tuple_(t.dedupe_key, t.recipient, t.channel).in_(chunk)))
                for row in rows:
                    found[Key(row.dedupe_key, row.recipient, row.channel)] = Status(row.status)
            return found
        return await self._run(read)

    async def claim(self, claims: Sequence[Claim]) -> None:
        """Insert the new rows (repeats are no-ops), PENDING or QUEUED, in one transaction."""
        if not claims:
            return
        now = self.clock()
        rows = [{"dedupe_key": c.key.dedupe_key, "recipient": c.key.recipient,
                 "channel": c.key.channel, "alert_id": c.alert_id,
                 "status": (Status.PENDING if c.due_at is None else Status.QUEUED).value,
                 "attempts": 0, "digest_due_at": c.due_at, "delivery_id": c.delivery_id,
                 "view": c.view, "error": None, "created_at": now, "updated_at": now}
                for c in sorted(claims, key=lambda c: c.key)]

        def write(conn: Connection) -> None:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(alert_deliveries).on_conflict_do_nothing(
                index_elements=[c.name for c in alert_deliveries.primary_key.columns])
            conn.execute(stmt, rows)
        await self._run(write)

    async def finish(self, keys: Sequence[Key], status: Status, *, attempts: int,
                     error: str | None = None, delivery_id: str | None = None) -> None:
        """Record the outcome of the deliveries ``keys`` (one message: one outcome)."""
        assert status in DONE
        now = self.clock()
        values: dict[str, Any] = {"status": status.value, "attempts": attempts,
                                  "error": error[:4000] if error else None, "updated_at": now}
        if delivery_id is not None:
            values["delivery_id"] = delivery_id

        def write(conn: Connection) -> None:
            t = alert_deliveries.c
            for i in range(0, len(keys), _CHUNK):
                match = [and_(t.dedupe_key == k.dedupe_key, t.recipient == k.recipient,
                              t.channel == k.channel) for k in keys[i:i + _CHUNK]]
                conn.execute(update(alert_deliveries).where(or_(*match)).values(**values))
        await self._run(write)

    async def queued(self, due_by: datetime | None) -> list[Queued]:
        """Deliveries waiting in a digest, due by ``due_by`` (None: all of them), oldest first."""
        def read(conn: Connection) -> list[Queued]:
            t = alert_deliveries.c
            query = select(t.dedupe_key, t.recipient, t.channel, t.digest_due_at, t.view).where(
                t.status == Status.QUEUED.value)
            if due_by is not None:
                query = query.where(t.digest_due_at <= due_by)
            query = query.order_by(t.digest_due_at, t.created_at, t.dedupe_key)
            return [Queued(Key(r.dedupe_key, r.recipient, r.channel), r.digest_due_at, r.view)
                    for r in conn.execute(query)]
        return await self._run(read)

    async def names_for(self, alert: Alert) -> list[str]:
        """The names the national record knows for the alert's person (to mask in free text)."""
        if alert.nip is None and alert.case_id is None:
            return []

        def read(conn: Connection) -> list[str]:
            names: set[str] = set()
            if alert.nip is not None:
                names.update(conn.execute(select(persons.c.name).where(
                    persons.c.nip == alert.nip)).scalars())
            if alert.case_id is not None:
                names.update(conn.execute(select(cases.c.person_name).where(
                    cases.c.case_id == alert.case_id)).scalars())
            return sorted(names)
        return await self._run(read)
