"""Alembic environment for the national record.

``netral db upgrade`` (``sinks.sql.migrate``) hands over an open connection from our own engine.
Developers can also run Alembic's CLI for new revisions, e.g.
``alembic -c sinks/sql/migrations/alembic.ini revision --autogenerate -m "..."``, against the URL
in ``NETRAL_DATABASE_URL`` (or the ini's ``sqlalchemy.url``).
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import Connection

from sinks.sql.engine import create_sql_engine
from sinks.sql.tables import UtcDateTime, metadata

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Autogenerate writes plain SQLAlchemy types, so revisions never import our code."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _options(dialect: str) -> dict[str, Any]:
    return {
        "target_metadata": metadata,
        "compare_type": True,
        "render_item": _render_item,
        # SQLite cannot ALTER most things: later revisions copy-and-move tables instead
        "render_as_batch": dialect == "sqlite",
        # our SQLite engine emits BEGIN itself, so DDL is transactional there too
        "transactional_ddl": True,
    }


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = os.environ.get("NETRAL_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: set NETRAL_DATABASE_URL or sqlalchemy.url")
    return url


def run_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    url = _url()
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
                      **_options(url.split(":", 1)[0].split("+", 1)[0]))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_sql_engine(_url())
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
