"""``netral purge --older-than 365d``: remove persons from closed cases, keep the aggregates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console

from schemas.errors import ConfigError
from sinks.sql.engine import create_sql_engine, describe_url
from sinks.sql.migrate import check_schema
from sinks.sql.purge import purge_personal_data

from ..settings import get_settings

console = Console()
UNITS = {"d": 1, "w": 7, "y": 365}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12w`` or ``5y`` (365-day years) as a duration."""
    match = re.fullmatch(r"(\d+)([dwy])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"--older-than {text!r}: give a positive age like 365d, 52w or 5y")
    return timedelta(days=int(match.group(1)) * UNITS[match.group(2)])


def purge(
    older_than: str | None = typer.Option(
        None, "--older-than",
        help="Age of the last update of a closed case, e.g. 365d, 52w, 5y "
             "(default NETRAL_PERSONAL_DATA_RETENTION_DAYS)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count only; change nothing."),
) -> None:
    """Purge the personal data of closed cases from the national record; counts stay."""
    settings = get_settings()
    if older_than is None:
        if settings.personal_data_retention_days is None:
            raise ConfigError("give --older-than (e.g. 5y) or set "
                              "NETRAL_PERSONAL_DATA_RETENTION_DAYS")
        age = timedelta(days=settings.personal_data_retention_days)
    else:
        age = parse_age(older_than)
    url = settings.resolved_database_url()
    now = datetime.now(UTC)
    engine = create_sql_engine(url)
    try:
        with engine.begin() as conn:
            check_schema(conn)
            report = purge_personal_data(conn, older_than=now - age, now=now, dry_run=dry_run)
    finally:
        engine.dispose()
    verb = "would purge" if dry_run else "purged"
    console.print(f"{describe_url(url)}: {verb} the personal data of {report.cases} closed cases "
                  f"last updated before {report.older_than:%Y-%m-%d} ({report.persons} persons "
                  f"removed, {report.orders} orders and {report.alerts} alerts without NIP)")
