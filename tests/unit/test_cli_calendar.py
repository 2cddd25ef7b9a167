"""``netral calendar``: due dates and year listings, and one line plus exit 2 for bad input."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hub.cli_calendar import calendar_app
from streams.rules.calendar import DEFAULT_FIRST_YEAR, DEFAULT_LAST_YEAR

pytestmark = pytest.mark.unit
runner = CliRunner()
ENV = {"COLUMNS": "200"}  # rich wraps table cells at 80 columns otherwise


def test_deadline_prints_iso_date_and_weekday() -> None:
    # The domain example: Wed 3 Apr 2024 + 14 working days (hand count in test_calendar.py).
    args = ["deadline", "--from", "2024-04-03", "--working-days", "14"]
    result = runner.invoke(calendar_app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == "2024-05-02 (Thursday)\n"


def test_deadline_explain_lists_the_skipped_holidays() -> None:
    args = ["deadline", "--from", "2024-04-03", "-n", "14", "--explain", "--lang", "en_US"]
    result = runner.invoke(calendar_app, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "2024-05-02 (Thursday)"
    assert len(lines) == 1 + 7  # six Idul Fitri weekdays and Labour Day
    assert "2024-04-10 (Wednesday): Eid al-Fitr [public]" in lines[3]
    assert "2024-04-08 (Monday): Eid al-Fitr Joint Holiday [government]" in lines[1]
    assert "International Labor Day" in lines[-1]


def test_deadline_zero_days_is_the_start() -> None:
    result = runner.invoke(calendar_app, ["deadline", "--from", "2024-02-14", "-n", "0"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "2024-02-14 (Wednesday)\n"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["deadline", "--from", "3/4/2024", "-n", "14"], "--from '3/4/2024' is not a date"),
        (["deadline", "--from", "2024-02-30", "-n", "14"], "is not a date"),
        (["deadline", "--from", "2024-04-03", "-n", "-1"], "must be 0 or more, got -1"),
        (["deadline", "--from", "2024-04-03", "-n", "ten"], "'ten' is not a whole number"),
        (["deadline", "--from", f"{DEFAULT_LAST_YEAR + 1}-01-02", "-n", "1"],
         "outside the working-day calendar"),
        # Inside the range, but the due date would not be: refused, not guessed.
        (["deadline", "--from", f"{DEFAULT_LAST_YEAR}-12-30", "-n", "5"],
         "outside the working-day calendar"),
        (["deadline", "--from", "2024-04-03", "-n", "1", "--lang", "xx"], "--lang"),
        (["show", str(DEFAULT_LAST_YEAR + 1)],
         f"outside the supported range {DEFAULT_FIRST_YEAR}-{DEFAULT_LAST_YEAR}"),
        (["show", str(DEFAULT_FIRST_YEAR - 1)], "outside the supported range"),
        (["show", "twenty"], "'twenty' is not a number"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(args: list[str], needle: str) -> None:
    result = runner.invoke(calendar_app, args, env=ENV)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback, a clean exit
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("netral calendar: ")
    assert needle in result.stderr


def test_show_lists_the_year_with_names_and_categories() -> None:
    result = runner.invoke(calendar_app, ["show", "2024"], env=ENV)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for needle in ("2024-02-14", "Wednesday", "Hari Pemilihan Umum", "Hari Pemilihan Kepala Daerah",
                   "Cuti Bersama Hari Raya Natal", "government", "public"):
        assert needle in out, needle
    assert "Sabtu" not in out  # plain weekends only on request
    assert "24 holidays fall on weekdays; 238 working days in 2024." in out


def test_show_in_english_with_weekends() -> None:
    result = runner.invoke(calendar_app, ["show", "2024", "--weekends", "--lang", "en_US"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "General Election Day" in result.stdout
    assert "2024-01-06 │ Saturday" in result.stdout
    assert "weekend" in result.stdout
