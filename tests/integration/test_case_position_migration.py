"""Migration 0003 adds ``cases.position`` and backfills it from the stored record, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import column, insert, select, table

from sinks.sql import migrate
from sinks.sql.engine import create_sql_engine
from sinks.sql.repository import case_row
from sinks.sql.tables import cases, persons
from tests.fixtures.monitor_data import stories

pytestmark = pytest.mark.integration


def test_position_is_backfilled(database_url: str) -> None:
    migrate.upgrade(database_url, "0002")
    engine = create_sql_engine(database_url)
    try:
        story = next(s for s in stories() if s.case_id == "A2")  # a JPT with a NIP
        row = case_row(story.record())
        del row["position"]
        # the 0002 shape of the table, with the real column types
        old_cases = table("cases", *(column(c.name, c.type) for c in cases.c
                                     if c.name != "position"))
        record = story.record()
        with engine.begin() as conn:
            conn.execute(insert(persons).values(
                nip=record.person.nip, name=record.person.name, agency=record.person.agency_name,
                updated_at=record.updated_at))
            conn.execute(insert(old_cases).values(**row))
        assert migrate.upgrade(database_url) == migrate.head_revision()
        with engine.connect() as conn:
            assert conn.execute(select(cases.c.position)).scalar_one() == "JPT"
    finally:
        engine.dispose()
