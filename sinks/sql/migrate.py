"""Alembic driven from code: ``netral db upgrade``, ``netral db current``, the sink's start check.

The migration scripts ship inside the package (``sinks/sql/migrations``), so an installed hub can
migrate its database without a checkout or an ``alembic.ini``. Migrations run on our own engine
(WAL, foreign keys, transactional DDL on both dialects), handed to ``env.py`` as a connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from schemas.errors import ConfigError

from .engine import create_sql_engine, describe_url


def migrations_dir() -> Path:
    """Where the migration scripts live (inside the installed package)."""
    return Path(str(resources.files("sinks.sql").joinpath("migrations")))


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for our scripts; ``connection`` is the one ``env.py`` migrates."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision the shipped scripts know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migration scripts shipped"
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision a database is at, or None when it was never migrated."""
    with _quiet_alembic():  # it logs its dialect on every look, at INFO
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    logger = logging.getLogger("alembic.runtime.migration")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def upgrade(url: str | URL, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` to ``revision``, in one transaction; returns where it is."""
    engine = create_sql_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
        with engine.connect() as conn:
            return current_revision(conn)
    finally:
        engine.dispose()


def current(url: str | URL) -> str | None:
    """The revision the database at ``url`` is at (None: never migrated)."""
    engine = create_sql_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    finally:
        engine.dispose()


def check_schema(conn: Connection) -> None:
    """Refuse to write to a database whose schema is not the one this code expects."""
    at, head = current_revision(conn), head_revision()
    if at != head:
        where = describe_url(conn.engine.url)
        state = "has no national-record schema" if at is None else f"is at revision {at}"
        raise ConfigError(
            f"database {where} {state}, this hub needs {head}: run `netral db upgrade`"
        )
