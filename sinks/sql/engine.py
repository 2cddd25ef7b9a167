"""Engines for the national record: SQLite (embedded default) or PostgreSQL through psycopg 3.

SQLite is tuned for one writer (the sink) beside readers (the API): WAL so readers never block the
writer, a busy timeout instead of immediate "database is locked" errors, foreign keys on (SQLite
leaves them off), and real transactions: the driver's legacy mode skips BEGIN before reads and
savepoints, so SQLAlchemy emits BEGIN itself (the recipe in SQLAlchemy's SQLite docs).

Nothing here runs at import; callers build an engine from a URL they got from the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from schemas.errors import ConfigError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
DEFAULT_BUSY_TIMEOUT_MS = 10_000


def normalise_url(url: str | URL) -> URL:
    """Parse a database URL; bare ``postgresql://`` (and ``postgres://``) use psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise ConfigError(f"database URL {str(url)!r} is not a SQLAlchemy URL: {err}") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"database URL {describe_url(parsed)!r}: unsupported backend "
            f"{parsed.get_backend_name()!r}; use sqlite:///path/netral.db or "
            f"postgresql://user:password@host/db"
        )
    return parsed


def describe_url(url: str | URL) -> str:
    """The URL with its password hidden, for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def _sqlite_in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def create_sql_engine(
    url: str | URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, echo: bool = False
) -> Engine:
    """An engine for the national record (SQLite or PostgreSQL); raises ConfigError on a bad URL."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_ms=busy_timeout_ms, echo=echo)
    try:
        return create_engine(parsed, echo=echo, pool_pre_ping=True)
    except (ArgumentError, ImportError) as err:
        raise ConfigError(f"database URL {describe_url(parsed)!r} is not usable: {err}") from None


def _sqlite_engine(url: URL, *, busy_timeout_ms: int, echo: bool) -> Engine:
    in_memory = _sqlite_in_memory(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if in_memory:
        # one shared connection, so every thread (the sink flushes off the event loop) sees the
        # same database; fine for tests, which are the only users of an in-memory record
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        assert url.database is not None
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": busy_timeout_ms / 1000}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: object) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _on_begin)
        cur = dbapi_conn.cursor()
        if not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine
