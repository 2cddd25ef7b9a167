"""``netral calendar``: check a deadline or a year's days off the way the hub computes them.

For the Satgas and PPK staff who ask "why is this case due on that day": the same
:class:`~streams.rules.calendar.WorkingCalendar` the stream processors use, on the command line.
Bad input prints one line to stderr and exits 2, never a traceback.
"""

from __future__ import annotations

from datetime import date
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from schemas.errors import ConfigError, InvalidMessage
from streams.rules.calendar import (
    DEFAULT_LANGUAGE,
    NonWorkingDay,
    WorkingCalendar,
    default_calendar,
)

# Fixed names: strftime("%A") follows the process locale, and output must not change with it.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

calendar_app = typer.Typer(
    help="Indonesian working days (hari kerja): deadlines and the holidays behind them "
    "(libur nasional and election days = public, cuti bersama = government).",
    no_args_is_help=True,
)

_LANG_HELP = "Holiday names: id (as in the decrees) or en_US."


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit code 2 (a usage error, like click's own)."""
    typer.echo(f"netral calendar: {message}", err=True)
    raise typer.Exit(2)


def _calendar(lang: str) -> WorkingCalendar:
    if lang == DEFAULT_LANGUAGE:
        return default_calendar()
    try:
        return WorkingCalendar(language=lang)
    except ConfigError as err:
        _fail(f"--lang: {err}")


def _day(d: date) -> str:
    return f"{d.isoformat()} ({WEEKDAYS[d.weekday()]})"


def _reason(entry: NonWorkingDay) -> str:
    return f"{entry.reason} [override: {entry.source}]" if entry.source else entry.reason


@calendar_app.command()
def deadline(
    from_: str = typer.Option(
        ..., "--from", metavar="YYYY-MM-DD", help="The day the clock starts (not counted)."
    ),
    working_days: str = typer.Option(
        ..., "--working-days", "-n", metavar="N", help="Working days allowed, e.g. 14 for the PPK."
    ),
    explain: bool = typer.Option(
        False, "--explain", help="Also list the weekday holidays the count skipped."
    ),
    lang: str = typer.Option(DEFAULT_LANGUAGE, "--lang", help=_LANG_HELP),
) -> None:
    """Print the due date: the N-th working day after --from (N=0: --from itself)."""
    try:
        start = date.fromisoformat(from_)
    except ValueError:
        _fail(f"--from {from_!r} is not a date; use YYYY-MM-DD, e.g. 2024-04-03")
    try:
        n = int(working_days)
    except ValueError:
        _fail(f"--working-days {working_days!r} is not a whole number")
    if n < 0:
        _fail(f"--working-days must be 0 or more, got {n}")
    cal = _calendar(lang)
    try:
        due = cal.add_working_days(start, n)
    except InvalidMessage as err:  # CalendarRangeError: start or due date outside the years
        _fail(str(err))
    typer.echo(_day(due))
    if explain:
        for entry in cal.skipped_between(start, due):
            typer.echo(f"  skipped {_day(entry.day)}: {_reason(entry)} [{entry.category}]")


@calendar_app.command()
def show(
    year: str = typer.Argument(..., metavar="YEAR", help="The year to list, e.g. 2024."),
    weekends: bool = typer.Option(False, "--weekends", help="Also list plain Saturdays/Sundays."),
    lang: str = typer.Option(DEFAULT_LANGUAGE, "--lang", help=_LANG_HELP),
) -> None:
    """List a year's non-working days: date, weekday, name and category."""
    try:
        y = int(year)
    except ValueError:
        _fail(f"year {year!r} is not a number, e.g. 2024")
    cal = _calendar(lang)
    if not cal.first_year <= y <= cal.last_year:
        _fail(f"year {y} is outside the supported range {cal.first_year}-{cal.last_year}")
    entries = cal.non_working_days(y, include_weekends=weekends)
    table = Table("date", "weekday", "reason", "category", title=f"Non-working days {y}")
    for e in entries:
        table.add_row(e.day.isoformat(), WEEKDAYS[e.day.weekday()], _reason(e), e.category.value)
    console = Console()
    console.print(table)
    on_weekdays = sum(1 for e in entries if e.day.weekday() < 5)
    working = sum(
        cal.is_working_day(date.fromordinal(o))
        for o in range(date(y, 1, 1).toordinal(), date(y, 12, 31).toordinal() + 1)
    )
    console.print(f"{on_weekdays} holidays fall on weekdays; {working} working days in {y}.")
