"""Working-day calendar: the domain's deadlines, hand-checked, and the counting laws as properties.

How the hand checks were made: weekday names from a printed 2024 calendar (1 Jan 2024 is a Monday,
so 3 Apr is a Wednesday, 14 Feb a Wednesday, 27 Nov a Wednesday, 25 Dec a Wednesday), holidays from
SKB 3 Menteri 855/2023 (libur nasional and cuti bersama 2024, cuti bersama ASN as Keppres 7/2024)
and the election-day Keppres; then counting the working days after the start day on paper, the
start day itself not counted. Each test spells out its count.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import ConfigError, InvalidMessage
from streams.rules.calendar import (
    DEFAULT_FIRST_YEAR,
    DEFAULT_LAST_YEAR,
    Action,
    CalendarRangeError,
    Category,
    Override,
    WorkingCalendar,
    default_calendar,
    packaged_overrides,
    parse_overrides,
)

pytestmark = pytest.mark.unit
CAL = default_calendar()


# -- the domain example ------------------------------------------------------------------------


def test_ppk_deadline_over_idul_fitri_2024() -> None:
    # domain.md: a recommendation on Wed 3 Apr 2024 with 14 working days is due Thu 2 May 2024.
    # Counting after Wed 3 Apr: Thu 4 (1), Fri 5 (2); Sat 6, Sun 7 weekend; Mon 8 and Tue 9 cuti
    # bersama, Wed 10 and Thu 11 Idul Fitri, Fri 12 cuti bersama, Sat 13, Sun 14, Mon 15 cuti
    # bersama (the 6 weekdays Idul Fitri takes out); Tue 16 (3), Wed 17 (4), Thu 18 (5), Fri 19 (6),
    # Mon 22 (7), Tue 23 (8), Wed 24 (9), Thu 25 (10), Fri 26 (11), Mon 29 (12), Tue 30 (13);
    # Wed 1 May is Labour Day (a 7th weekday out); Thu 2 May (14).
    due = CAL.add_working_days(date(2024, 4, 3), 14)
    assert due == date(2024, 5, 2)
    assert due.weekday() == 3  # Thursday
    assert CAL.working_days_between(date(2024, 4, 3), due) == 14
    skipped = [e.day for e in CAL.skipped_between(date(2024, 4, 3), due)]
    assert skipped == [date(2024, 4, d) for d in (8, 9, 10, 11, 12, 15)] + [date(2024, 5, 1)]


def test_idul_fitri_2024_week_is_all_off() -> None:
    # Mon 8 to Mon 15 Apr 2024: every weekday is Idul Fitri (10, 11) or cuti bersama (8, 9, 12, 15).
    for d in (8, 9, 10, 11, 12, 13, 14, 15):
        assert not CAL.is_working_day(date(2024, 4, d)), d
    assert CAL.is_working_day(date(2024, 4, 5))  # Fri before
    assert CAL.is_working_day(date(2024, 4, 16))  # Tue after
    # One working day after Fri 5 Apr skips Sat 6 to Mon 15 and lands on Tue 16.
    assert CAL.add_working_days(date(2024, 4, 5), 1) == date(2024, 4, 16)
    # The clock may start on a holiday: one working day after Wed 10 Apr (Idul Fitri) is Tue 16.
    assert CAL.add_working_days(date(2024, 4, 10), 1) == date(2024, 4, 16)


def test_pemilu_day_and_imlek_cuti_bersama_2024() -> None:
    # Thu 8 Feb Isra Mikraj, Fri 9 Feb cuti bersama Imlek, Sat 10 Feb Imlek, Wed 14 Feb election.
    assert not CAL.is_working_day(date(2024, 2, 8))
    assert not CAL.is_working_day(date(2024, 2, 9))
    assert not CAL.is_working_day(date(2024, 2, 14))
    assert CAL.is_working_day(date(2024, 2, 13))  # Tue, the eve of the vote, is a normal day
    # After Wed 7 Feb: Thu 8 and Fri 9 off, weekend, Mon 12 (1), Tue 13 (2), Wed 14 off, Thu 15 (3).
    assert CAL.add_working_days(date(2024, 2, 7), 1) == date(2024, 2, 12)
    assert CAL.add_working_days(date(2024, 2, 7), 3) == date(2024, 2, 15)
    # A timestamp on polling day: a datetime counts by its (local) date.
    assert not CAL.is_working_day(datetime(2024, 2, 14, 9, 30))


def test_pilkada_day_2024() -> None:
    # Wed 27 Nov 2024, the simultaneous regional elections, is a libur nasional.
    assert not CAL.is_working_day(date(2024, 11, 27))
    # After Tue 26 Nov: Wed 27 off, Thu 28 (1).
    assert CAL.add_working_days(date(2024, 11, 26), 1) == date(2024, 11, 28)
    assert CAL.working_days_between(date(2024, 11, 25), date(2024, 11, 29)) == 3  # Tue, Thu, Fri


def test_christmas_2024_and_new_year_2025() -> None:
    # Wed 25 Dec Natal, Thu 26 Dec cuti bersama, Wed 1 Jan 2025 Tahun Baru.
    assert not CAL.is_working_day(date(2024, 12, 25))
    assert not CAL.is_working_day(date(2024, 12, 26))
    assert not CAL.is_working_day(date(2025, 1, 1))
    # After Tue 24 Dec: Wed 25, Thu 26 off, Fri 27 (1), weekend, Mon 30 (2), Tue 31 (3),
    # Wed 1 Jan off, Thu 2 Jan 2025 (4): the count crosses the year boundary.
    assert CAL.add_working_days(date(2024, 12, 24), 1) == date(2024, 12, 27)
    assert CAL.add_working_days(date(2024, 12, 24), 3) == date(2024, 12, 31)
    assert CAL.add_working_days(date(2024, 12, 24), 4) == date(2025, 1, 2)
    # After Fri 20 Dec, 14 days: Mon 23 (1), Tue 24 (2), Fri 27 (3), Mon 30 (4), Tue 31 (5),
    # Thu 2 (6), Fri 3 (7), Mon 6 to Fri 10 (8-12), Mon 13 (13), Tue 14 Jan 2025 (14).
    assert CAL.add_working_days(date(2024, 12, 20), 14) == date(2025, 1, 14)


def test_new_year_2024() -> None:
    # After Fri 29 Dec 2023: Sat 30, Sun 31, Mon 1 Jan 2024 Tahun Baru, Tue 2 Jan (1).
    assert CAL.add_working_days(date(2023, 12, 29), 1) == date(2024, 1, 2)


def test_working_days_in_2024() -> None:
    # 2024 has 366 days from a Monday: 52 weeks + Mon, Tue = 262 weekdays. Of its 29 listed
    # holidays, 5 fall on a weekend (Sat 10 Feb, Sun 31 Mar, Sat 1 Jun, Sun 7 Jul, Sat 17 Aug),
    # so 24 cost a working day: 262 - 24 = 238.
    listed = CAL.non_working_days(2024)
    assert len(listed) == 29
    assert sum(1 for e in listed if e.day.weekday() < 5) == 24
    assert CAL.working_days_between(date(2023, 12, 31), date(2024, 12, 31)) == 238
    # With the plain weekends too: 104 weekend days, 5 of them already listed as holidays.
    with_weekends = CAL.non_working_days(2024, include_weekends=True)
    assert len(with_weekends) == 29 + 104 - 5
    assert [e.day for e in with_weekends] == sorted(e.day for e in with_weekends)
    assert with_weekends[0].day == date(2024, 1, 1)
    saturday = next(e for e in with_weekends if e.day == date(2024, 1, 6))
    assert (saturday.reason, saturday.category) == ("Sabtu", Category.WEEKEND)


# -- what the library carries (domain.md, "Working days") --------------------------------------


def test_library_has_2024_elections_and_ten_cuti_bersama() -> None:
    listed = {e.day: e for e in CAL.non_working_days(2024)}
    assert listed[date(2024, 2, 14)].category is Category.PUBLIC
    assert listed[date(2024, 2, 14)].reason == "Hari Pemilihan Umum"
    assert listed[date(2024, 11, 27)].category is Category.PUBLIC
    assert listed[date(2024, 11, 27)].reason == "Hari Pemilihan Kepala Daerah"
    cuti = sorted(d for d, e in listed.items() if e.category is Category.GOVERNMENT)
    assert len(cuti) == 10
    assert (cuti[0], cuti[-1]) == (date(2024, 2, 9), date(2024, 12, 26))


def test_library_has_2025_including_added_18_august() -> None:
    # SKB 2025 (eleven cuti bersama once Mon 18 Aug 2025 was added in July 2025).
    cuti = [e.day for e in CAL.non_working_days(2025) if e.category is Category.GOVERNMENT]
    assert len(cuti) == 11
    assert date(2025, 8, 18) in cuti
    assert not CAL.is_working_day(date(2025, 8, 18))


@pytest.mark.parametrize("year", range(DEFAULT_FIRST_YEAR, DEFAULT_LAST_YEAR + 1))
def test_every_default_year_has_its_cuti_bersama(year: int) -> None:
    """Guards the default range: without its cuti bersama a year would give early deadlines."""
    assert any(e.category is Category.GOVERNMENT for e in CAL.non_working_days(year))


def test_names_do_not_follow_the_process_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.setenv(var, "uk_UA.UTF-8")
    fresh = WorkingCalendar()
    assert fresh.non_working_days(2024)[0].reason == "Tahun Baru Masehi"
    english = WorkingCalendar(language="en_US")
    assert english.non_working_days(2024)[0].reason == "New Year's Day"


# -- conventions and bad input -----------------------------------------------------------------


def test_zero_days_returns_the_start_even_on_a_day_off() -> None:
    assert CAL.add_working_days(date(2024, 4, 13), 0) == date(2024, 4, 13)  # Sat, Lebaran week
    assert CAL.working_days_between(date(2024, 4, 13), date(2024, 4, 13)) == 0


def test_between_is_antisymmetric() -> None:
    assert CAL.working_days_between(date(2024, 5, 2), date(2024, 4, 3)) == -14


def test_negative_n_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        CAL.add_working_days(date(2024, 4, 3), -1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: CAL.is_working_day(date(DEFAULT_FIRST_YEAR - 1, 12, 31)),
        lambda: CAL.is_working_day(date(DEFAULT_LAST_YEAR + 1, 1, 1)),
        lambda: CAL.non_working_days(DEFAULT_LAST_YEAR + 1),
        # Starts inside the range but the deadline lands outside it: refused, not guessed.
        lambda: CAL.add_working_days(date(DEFAULT_LAST_YEAR, 12, 30), 5),
        lambda: CAL.working_days_between(date(2024, 1, 1), date(DEFAULT_LAST_YEAR + 1, 1, 5)),
    ],
)
def test_outside_the_years_is_an_invalid_message(call: object) -> None:
    assert callable(call)
    with pytest.raises(CalendarRangeError, match="outside the working-day calendar") as info:
        call()
    assert isinstance(info.value, InvalidMessage)  # a stream sends the record to the DLQ


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"first_year": 2025, "last_year": 2024}, "ascending"),
        ({"first_year": 1900}, "within"),
        ({"language": "xx"}, "language"),
    ],
)
def test_bad_construction_is_a_config_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        WorkingCalendar(**kwargs)  # type: ignore[arg-type]


# -- overrides ---------------------------------------------------------------------------------


def test_packaged_override_file_loads_and_holds_nothing_redundant() -> None:
    overrides = packaged_overrides()
    assert CAL.overrides == overrides
    assert CAL.redundant_overrides() == []


def test_overrides_add_and_remove_days() -> None:
    # Fictional decrees: Fri 1 Mar 2024 made cuti bersama; the Tue 12 Mar 2024 cuti bersama
    # (Nyepi) cancelled. Neither is real; they only exercise the mechanism.
    cal = WorkingCalendar(
        overrides=(
            Override(date(2024, 3, 1), Action.ADD, "Cuti Bersama Uji", "Keppres Uji 1/2024",
                     Category.GOVERNMENT),
            Override(date(2024, 3, 12), Action.REMOVE, "dibatalkan", "Keppres Uji 2/2024"),
        )
    )
    assert not cal.is_working_day(date(2024, 3, 1))
    assert cal.is_working_day(date(2024, 3, 12))
    added = next(e for e in cal.non_working_days(2024) if e.day == date(2024, 3, 1))
    assert (added.category, added.source) == (Category.GOVERNMENT, "Keppres Uji 1/2024")
    # After Thu 29 Feb: Fri 1 Mar now off, so Mon 4 Mar (1) instead of Fri 1 Mar.
    assert cal.add_working_days(date(2024, 2, 29), 1) == date(2024, 3, 4)
    assert CAL.add_working_days(date(2024, 2, 29), 1) == date(2024, 3, 1)
    # After Fri 8 Mar: Mon 11 Nyepi off; Tue 12 is a working day again (1).
    assert cal.add_working_days(date(2024, 3, 8), 1) == date(2024, 3, 12)
    assert CAL.add_working_days(date(2024, 3, 8), 1) == date(2024, 3, 13)
    assert cal.redundant_overrides() == []


def test_redundant_overrides_are_reported() -> None:
    cal = WorkingCalendar(
        overrides=(
            Override(date(2024, 2, 14), Action.ADD, "Pemilu", "Keppres 10/2024"),  # library has it
            Override(date(2024, 3, 1), Action.REMOVE, "not a holiday", "none"),  # nothing to remove
        )
    )
    assert [o.day for o in cal.redundant_overrides()] == [date(2024, 2, 14), date(2024, 3, 1)]


def test_parse_overrides_reads_the_documented_format() -> None:
    text = """
overrides:
  - date: 2024-03-01
    action: add
    category: government
    name: Cuti Bersama Uji
    source: Keppres Uji 1/2024
  - date: "2024-03-12"
    action: remove
    name: dibatalkan
    source: Keppres Uji 2/2024
"""
    parsed = parse_overrides(text)
    assert parsed == (
        Override(date(2024, 3, 1), Action.ADD, "Cuti Bersama Uji", "Keppres Uji 1/2024",
                 Category.GOVERNMENT),
        Override(date(2024, 3, 12), Action.REMOVE, "dibatalkan", "Keppres Uji 2/2024"),
    )


_ENTRY = "  - {{date: 2024-03-01, action: add, name: X, source: Y{extra}}}\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("overrides: [", "not valid YAML"),
        ("- 1\n", "'overrides' list"),
        ("overrides:\n  - 7\n", "entry 1: expected a mapping"),
        ("overrides:\n  - {date: 2024-03-01, action: add, name: X}\n",
         "entry 1: source is required"),
        ("overrides:\n  - {date: 2024-13-01, action: add, name: X, source: Y}\n", "date"),
        ("overrides:\n  - {action: add, name: X, source: Y}\n", "date is missing"),
        ("overrides:\n" + _ENTRY.format(extra=", action: move").replace("action: add, ", ""),
         "action must be"),
        ("overrides:\n" + _ENTRY.format(extra=", category: weekend"), "category must be"),
        ("overrides:\n" + _ENTRY.format(extra=", note: z"), "unknown field"),
        ("overrides:\n" + _ENTRY.format(extra="") * 2, "entry 2: 2024-03-01 appears twice"),
    ],
)
def test_bad_override_files_fail_with_one_line(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_overrides(text, where="test.yaml")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("test.yaml")


# -- properties --------------------------------------------------------------------------------

_STARTS = st.dates(min_value=date(DEFAULT_FIRST_YEAR, 1, 1), max_value=date(2026, 12, 31))


def _naive_add(start: date, n: int) -> date:
    """The obvious day-by-day loop, as an oracle for the jump-and-correct implementation."""
    d = start
    while n > 0:
        d += timedelta(days=1)
        n -= CAL.is_working_day(d)
    return d


@settings(max_examples=400, deadline=None)
@given(_STARTS, st.integers(min_value=0, max_value=200))
def test_add_then_count_gives_back_n(start: date, n: int) -> None:
    due = CAL.add_working_days(start, n)
    assert CAL.working_days_between(start, due) == n
    assert due == _naive_add(start, n)
    if n >= 1:
        assert CAL.is_working_day(due)
        assert due > start
        assert CAL.add_working_days(start, n - 1) < due


@settings(max_examples=200, deadline=None)
@given(_STARTS, st.integers(min_value=0, max_value=365))
def test_between_counts_weekdays_minus_skipped_holidays(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    days = [start + timedelta(days=i) for i in range(1, span + 1)]
    assert CAL.working_days_between(start, end) == sum(CAL.is_working_day(d) for d in days)
    weekdays = sum(d.weekday() < 5 for d in days)
    assert len(CAL.skipped_between(start, end)) == weekdays - CAL.working_days_between(start, end)
