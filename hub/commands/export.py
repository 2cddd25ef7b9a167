"""``netral export``: the national record's case list as CSV or XLSX, for operators."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from schemas.errors import ConfigError
from schemas.models import CaseState, Election
from sinks.sql import queries
from sinks.sql.engine import create_sql_engine
from streams.rules.lifecycle import local_date

from ..export import ExportFormat, render
from ..settings import get_settings


def export(
    out: Path = typer.Option(..., "--out", "-o", help="File to write (.csv or .xlsx)."),
    fmt: ExportFormat = typer.Option(None, "--format", help="csv or xlsx (default: from --out)."),
    state: list[CaseState] = typer.Option([], help="Only cases in these states (repeatable)."),
    election: Election | None = typer.Option(None, help="Only this election."),
    province: str | None = typer.Option(None, help="Only this province code, e.g. 32."),
    overdue: bool = typer.Option(False, help="Only cases past their PPK deadline."),
    blocked: bool = typer.Option(False, help="Only cases whose ASN is blocked."),
) -> None:
    """Write every case matching the filters (national scope) to a CSV or XLSX file."""
    chosen = fmt or _format_of(out)
    settings = get_settings()
    filters = queries.CaseFilter(
        state=tuple(s.value for s in state), election=election, province_code=province,
        overdue=overdue or None, blocked=blocked or None, today=local_date(datetime.now(UTC)))
    engine = create_sql_engine(settings.resolved_database_url())
    try:
        with engine.connect() as conn:
            page = queries.list_cases(conn, scope=queries.Scope(), filters=filters,
                                      limit=settings.api_export_max)
    finally:
        engine.dispose()
    if page.total > settings.api_export_max:
        raise ConfigError(f"{page.total} cases match; an export holds at most "
                          f"{settings.api_export_max} (NETRAL_API_EXPORT_MAX): narrow the filters")
    out.write_bytes(render(chosen, page.items))
    typer.echo(f"{len(page.items)} cases written to {out} ({chosen.value}, "
               f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")


def _format_of(path: Path) -> ExportFormat:
    try:
        return ExportFormat(path.suffix.lstrip(".").lower())
    except ValueError:
        raise typer.BadParameter(f"{path.name}: say --format csv|xlsx, or name the file "
                                 ".csv or .xlsx") from None
