"""The national-record sink: buffer decoded records, write each batch in one transaction.

It follows the hub's sink protocol (``setup``, ``add``, ``flush``, ``close``; Quix's shape) with one
difference that matters: the buffer is cleared only after the write committed. A failed flush keeps
every record, so the caller can retry the same batch and commits no offsets until it succeeds.

Failures are sorted by what the caller should do:
- the database is unreachable, locked or timed out: :class:`SqlWriteError` (retriable), the batch
  stays buffered;
- a record the database refuses for good (a constraint or a value it cannot store): the batch is
  retried one record per transaction, and the refused records come back in
  :attr:`FlushResult.rejected` for the caller's DLQ, so one bad record never blocks the rest;
- anything else (a missing table, a bug): :class:`SqlSinkError`, fatal; nothing is committed.

SQLAlchemy is synchronous, so ``flush`` runs the write in a worker thread and the event loop (and
the Kafka consumer's heartbeats) keep running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from schemas.errors import ConfigError, FatalError, InvalidMessage, RetriableError
from schemas.models import Alert, CaseRecord, CaseTransition, SiasnOrder, SiasnOrderResult

from . import repository
from .engine import describe_url
from .migrate import check_schema
from .unit_of_work import SqlUnitOfWork

log = logging.getLogger(__name__)

SqlRecord = CaseRecord | CaseTransition | SiasnOrder | SiasnOrderResult | Alert
"""What the national record stores: one model per topic it reads."""


class SqlWriteError(RetriableError):
    """The database did not take the batch for a transient reason; retry the same batch."""


class SqlSinkError(FatalError):
    """The database refused the batch for a reason retrying will not fix (schema, bug)."""


class SqlRejected(InvalidMessage):
    """The database refuses this one record for good; it belongs in ``netral.dlq.sql``."""


@dataclass(frozen=True)
class RecordMeta:
    """Where a record came from, for logs and the DLQ."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None


@dataclass(frozen=True)
class Rejected:
    """A record the database refused for good, and why."""

    record: SqlRecord
    meta: RecordMeta
    error: SqlRejected


@dataclass(frozen=True)
class FlushResult:
    """What one flush did: records taken, rows really changed per table, records refused."""

    records: int
    written: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    seconds: float = 0.0


_RETRIABLE = (OperationalError, InterfaceError, PoolTimeoutError)
_PER_RECORD = (IntegrityError, DataError)


class SqlSink:
    """Writes CaseRecords, transitions, SIASN orders and results, and alerts to the record."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._buffer: list[tuple[SqlRecord, RecordMeta]] = []

    @property
    def pending(self) -> int:
        """Records buffered and not yet written."""
        return len(self._buffer)

    async def setup(self) -> None:
        """Connect and check that the schema is migrated; fails with one line saying what to do."""
        await asyncio.to_thread(self._setup_sync)

    def _setup_sync(self) -> None:
        where = describe_url(self.engine.url)
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                check_schema(conn)
        except SQLAlchemyError as err:
            raise ConfigError(f"database {where} is not reachable: {_short(err)}") from None

    def add(self, record: SqlRecord, meta: RecordMeta) -> None:
        """Buffer one validated record; no I/O."""
        if not isinstance(record, SqlRecord):
            raise TypeError(f"the SQL sink does not store {type(record).__name__}")
        self._buffer.append((record, meta))

    async def flush(self) -> FlushResult:
        """Write everything buffered; the buffer is cleared only once the write committed."""
        return await asyncio.to_thread(self.flush_sync)

    def flush_sync(self) -> FlushResult:
        """:meth:`flush` for callers without an event loop (benchmarks, scripts)."""
        count = len(self._buffer)
        if not count:
            return FlushResult(records=0)
        batch = self._buffer[:count]
        started = time.perf_counter()
        rejected: list[Rejected] = []
        try:
            written = self._write(batch)
        except _PER_RECORD as err:
            log.warning("sql: batch of %d refused (%s); writing record by record", count,
                        _short(err))
            written, rejected = self._write_each(batch)
        except _RETRIABLE as err:
            raise SqlWriteError(f"database write failed, batch of {count} kept: "
                                f"{_short(err)}") from err
        except (DBAPIError, SQLAlchemyError) as err:
            raise SqlSinkError(f"database refused the batch: {_short(err)}") from err
        del self._buffer[:count]  # only now: a failed write above keeps every record
        seconds = time.perf_counter() - started
        log.info("sql: wrote %d records in %.3fs (%s)%s", count, seconds,
                 ", ".join(f"{t}={n}" for t, n in sorted(written.items())) or "no changes",
                 f", {len(rejected)} refused" if rejected else "")
        return FlushResult(records=count, written=written, rejected=rejected, seconds=seconds)

    def _write(self, batch: Sequence[tuple[SqlRecord, RecordMeta]]) -> dict[str, int]:
        """One transaction for the whole batch, cases (and their persons) first."""
        case_records: list[CaseRecord] = []
        transitions: list[CaseTransition] = []
        orders: list[SiasnOrder] = []
        results: list[SiasnOrderResult] = []
        alerts: list[Alert] = []
        for record, _ in batch:
            match record:
                case CaseRecord():
                    case_records.append(record)
                case CaseTransition():
                    transitions.append(record)
                case SiasnOrder():
                    orders.append(record)
                case SiasnOrderResult():
                    results.append(record)
                case Alert():
                    alerts.append(record)
        with SqlUnitOfWork(self.engine) as uow:
            conn = uow.conn
            written = {
                "cases": repository.upsert_cases(conn, records=case_records),
                "case_transitions": repository.insert_transitions(conn, records=transitions),
                "orders": repository.insert_orders(conn, records=orders),
                "order_results": repository.insert_order_results(conn, records=results),
                "alerts": repository.insert_alerts(conn, records=alerts),
            }
            uow.commit()
        return {table: n for table, n in written.items() if n}

    def _write_each(self, batch: Sequence[tuple[SqlRecord, RecordMeta]]
                    ) -> tuple[dict[str, int], list[Rejected]]:
        """Isolate the records the database refuses: one transaction per record."""
        written: Counter[str] = Counter()
        rejected: list[Rejected] = []
        for record, meta in batch:
            try:
                written.update(self._write([(record, meta)]))
            except _PER_RECORD as err:
                reason = SqlRejected(f"database refused {type(record).__name__}: {_short(err)}")
                log.warning("sql: %s[%d]@%d refused: %s", meta.topic, meta.partition,
                            meta.offset, reason)
                rejected.append(Rejected(record=record, meta=meta, error=reason))
        return dict(written), rejected

    async def close(self) -> None:
        """Drop what is still buffered: those offsets were never committed, so Kafka redelivers."""
        if self._buffer:
            log.warning("sql: closing with %d unwritten records (they will be redelivered)",
                        len(self._buffer))
        self._buffer.clear()


def _short(err: BaseException) -> str:
    """The driver's message without SQLAlchemy's parameter dump (which may hold personal data)."""
    orig = getattr(err, "orig", None)
    return " ".join(str(orig if orig is not None else err).split())[:500]
