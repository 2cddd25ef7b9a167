"""A unit of work over one connection: everything inside commits together, or not at all.

It rolls back on exit unless :meth:`SqlUnitOfWork.commit` was called, so an exception, an early
return or a forgotten commit can never leave half a batch behind (Cosmic Python's UoW). The engine
is injected: the sink, the API and the tests each pass their own.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import RootTransaction


class SqlUnitOfWork:
    """``with SqlUnitOfWork(engine) as uow: repository.f(uow.conn, ...); uow.commit()``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    @property
    def conn(self) -> Connection:
        """The connection of the open unit of work (only inside ``with``)."""
        if self._conn is None:
            raise RuntimeError("the unit of work is not open: use it in a `with` block")
        return self._conn

    def __enter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("this unit of work is already open")
        self._conn = self.engine.connect()
        self._tx = self._conn.begin()
        return self

    def commit(self) -> None:
        """Make everything done in this unit of work durable."""
        if self._tx is None:
            raise RuntimeError("the unit of work is not open: use it in a `with` block")
        self._tx.commit()

    def rollback(self) -> None:
        """Discard everything not yet committed (a no-op after commit)."""
        if self._tx is not None and self._tx.is_active:
            self._tx.rollback()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._tx = None
