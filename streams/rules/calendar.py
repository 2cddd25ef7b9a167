"""calendar: Indonesian working days (hari kerja), the unit of every deadline in a case.

The PPK's 14 working days, Bawaslu's 7 working days for a report and the escalation intervals all
count Monday to Friday minus libur nasional (election days included) and cuti bersama. Both come
from the PyPI ``holidays`` package (country ID: category ``public`` for libur nasional and election
days, ``government`` for cuti bersama); a small packaged override file
(``streams/rules/data/calendar_overrides.yaml``) carries only decrees the library lacks, each with
its source. No hand-written holiday list lives in code.

Counting convention, used by every function here: the working days *after* a day, the day itself
not counted. ``add_working_days(d, n)`` is the n-th working day after ``d`` (``n == 0`` returns
``d`` unchanged), ``working_days_between(a, b)`` counts the working days in ``(a, b]``, so
``working_days_between(d, add_working_days(d, n)) == n`` always holds.

Pure: no clock reads; the only I/O is reading the packaged override file once. Dates are local
Indonesian dates: convert a timestamp to WIB/WITA/WIT before asking (23:00 UTC on 13 Feb 2024 is
14 Feb in Jakarta, an election day). Year tables are built lazily, once per year and calendar, so
the hot path (``is_working_day``) is a dict lookup and a set lookup.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple

import holidays
import yaml
from holidays.countries.indonesia import Indonesia

from schemas.errors import ConfigError, InvalidMessage

#: Years a default calendar answers for. Each must have its cuti bersama in the library (a unit test
#: checks): extend ``DEFAULT_LAST_YEAR`` once ``holidays`` carries the next year's SKB.
DEFAULT_FIRST_YEAR = 2019
DEFAULT_LAST_YEAR = 2027
#: Holiday names in Indonesian, as the decrees write them. Always explicit: left unset, the library
#: picks the language from the process locale and names would change with the environment.
DEFAULT_LANGUAGE = "id"
OVERRIDES_PACKAGE = "streams.rules.data"
OVERRIDES_RESOURCE = "calendar_overrides.yaml"

_COUNTRY = "ID"
_WEEKEND_NAMES = {"id": ("Sabtu", "Minggu")}
_WEEKEND_DEFAULT = ("Saturday", "Sunday")


class Category(StrEnum):
    """Why a day is not a working day."""

    PUBLIC = "public"  # libur nasional, election days included
    GOVERNMENT = "government"  # cuti bersama
    WEEKEND = "weekend"


class Action(StrEnum):
    """What an override does to the library's calendar."""

    ADD = "add"
    REMOVE = "remove"


class CalendarRangeError(InvalidMessage):
    """A date outside the years this calendar answers for.

    An ``InvalidMessage``: a record whose deadline cannot be computed goes to the DLQ with this
    reason and can be replayed once the range is extended, rather than getting a wrong deadline.
    """


class NonWorkingDay(NamedTuple):
    """One day off: the date, its name (or the weekday for a plain weekend) and its category."""

    day: date
    reason: str
    category: Category
    source: str | None = None  # the decree, for a day that comes from the override file


@dataclass(frozen=True, slots=True)
class Override:
    """One decree the library lacks: a day added as non-working, or a listed day removed."""

    day: date
    action: Action
    name: str
    source: str
    category: Category = Category.PUBLIC


@dataclass(frozen=True, slots=True)
class _YearTable:
    """One year, precomputed: every holiday (for listings) and the ordinals of those on weekdays."""

    entries: tuple[NonWorkingDay, ...]
    closed: frozenset[int]  # ordinals of weekday holidays: the days that cost a working day
    closed_sorted: tuple[int, ...]  # the same, sorted, to count them in a range with bisect
    last_ordinal: int  # 31 December: where a range count moves on to the next year


def parse_overrides(text: str, where: str = OVERRIDES_RESOURCE) -> tuple[Override, ...]:
    """The override file's entries; a malformed one raises ConfigError naming the entry."""
    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as err:  # PyYAML raises ValueError for 2024-13-01
        reason = str(err).replace("\n", " ")
        raise ConfigError(f"{where}: not valid YAML or a bad date ({reason})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("overrides"), list):
        raise ConfigError(f"{where}: expected a mapping with an 'overrides' list")
    result: list[Override] = []
    seen: set[date] = set()
    for i, raw in enumerate(doc["overrides"], start=1):
        entry = _parse_entry(raw, f"{where} entry {i}")
        if entry.day in seen:
            raise ConfigError(f"{where} entry {i}: {entry.day} appears twice")
        seen.add(entry.day)
        result.append(entry)
    return tuple(sorted(result, key=lambda o: o.day))


def _parse_entry(raw: Any, where: str) -> Override:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with date, action, name, source")
    unknown = set(raw) - {"date", "action", "category", "name", "source"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    day = raw.get("date")
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise ConfigError(f"{where}: date {day!r} is not YYYY-MM-DD") from None
    if not isinstance(day, date):
        raise ConfigError(f"{where}: date is missing or not YYYY-MM-DD")
    try:
        action = Action(str(raw.get("action")))
    except ValueError:
        raise ConfigError(f"{where}: action must be 'add' or 'remove'") from None
    try:
        category = Category(str(raw.get("category", Category.PUBLIC.value)))
    except ValueError:
        category = Category.WEEKEND  # rejected just below, with the same message
    if category is Category.WEEKEND:
        raise ConfigError(f"{where}: category must be 'public' or 'government'")
    name, source = raw.get("name"), raw.get("source")
    for label, value in (("name", name), ("source", source)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {label} is required (cite the decree in source)")
    assert isinstance(name, str) and isinstance(source, str)  # narrowed by the loop above
    return Override(day, action, name.strip(), source.strip(), category)


@lru_cache(maxsize=1)
def packaged_overrides() -> tuple[Override, ...]:
    """The packaged override file, read once per process."""
    text = resources.files(OVERRIDES_PACKAGE).joinpath(OVERRIDES_RESOURCE).read_text("utf-8")
    return parse_overrides(text)


def _library_year(year: int, language: str) -> dict[date, tuple[str, Category]]:
    """The library's holidays of one year with their category; ``public`` wins a shared date."""
    days: dict[date, tuple[str, Category]] = {}
    for category in (Category.PUBLIC, Category.GOVERNMENT):
        table = holidays.country_holidays(
            _COUNTRY, years=year, categories=(category.value,), language=language
        )
        for day, name in table.items():
            if day in days:
                days[day] = (f"{days[day][0]}; {name}", days[day][1])
            else:
                days[day] = (name, category)
    return days


def _weekdays_through(ordinal: int) -> int:
    """Mondays to Fridays from 1 Jan of year 1 (a Monday, ordinal 1) through ``ordinal``."""
    weeks, rest = divmod(ordinal, 7)
    return 5 * weeks + min(rest, 5)


def _add_weekdays(ordinal: int, n: int) -> int:
    """The ordinal of the n-th Monday-to-Friday after ``ordinal`` (n >= 1)."""
    weeks, rest = divmod(_weekdays_through(ordinal) + n - 1, 5)
    return 7 * weeks + rest + 1


@dataclass(frozen=True)
class WorkingCalendar:
    """Indonesia's national working days for ``first_year`` to ``last_year`` (both included).

    Cheap to share and to call: build one (or use :func:`default_calendar`) and keep it. Every
    date passed in must fall inside the year range, else :class:`CalendarRangeError`. Regional
    holidays (a local re-vote, a provincial day off) are out of scope: deadlines are national.
    """

    first_year: int = DEFAULT_FIRST_YEAR
    last_year: int = DEFAULT_LAST_YEAR
    overrides: tuple[Override, ...] = field(default_factory=packaged_overrides)
    language: str = DEFAULT_LANGUAGE
    _years: dict[int, _YearTable] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        lib = Indonesia  # the class carries the years and languages it covers
        if not lib.start_year <= self.first_year <= self.last_year <= lib.end_year:
            raise ConfigError(
                f"calendar years {self.first_year}-{self.last_year} must be ascending and within "
                f"{lib.start_year}-{lib.end_year}, the years the holidays package covers"
            )
        if self.language not in lib.supported_languages:
            raise ConfigError(
                f"calendar language {self.language!r} is not one of "
                f"{', '.join(lib.supported_languages)}"
            )

    # -- queries -------------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        """True for a Monday to Friday that is neither libur nasional nor cuti bersama."""
        table = self._table(d.year)
        return d.weekday() < 5 and d.toordinal() not in table.closed

    def add_working_days(self, start: date, n: int) -> date:
        """The deadline: the n-th working day after ``start`` (``start`` itself never counts).

        ``n == 0`` returns ``start`` unchanged, working day or not, so that
        ``working_days_between(start, add_working_days(start, n)) == n`` holds for every n >= 0.
        For n >= 1 the result is always a working day.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self._table(start.year)
        if n == 0:
            return start
        # Jump n weekdays, then once more for each holiday crossed on a weekday, until none is.
        lo = start.toordinal()
        hi = _add_weekdays(lo, n)
        while missing := self._closed_in(lo, hi):
            lo, hi = hi, _add_weekdays(hi, missing)
        return date.fromordinal(hi)

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in ``(a, b]``: how long a step took (M&E); negative when ``b < a``."""
        if b < a:
            return -self.working_days_between(b, a)
        self._table(a.year)
        lo, hi = a.toordinal(), b.toordinal()
        return _weekdays_through(hi) - _weekdays_through(lo) - self._closed_in(lo, hi)

    def skipped_between(self, a: date, b: date) -> list[NonWorkingDay]:
        """The holidays on weekdays in ``(a, b]``: why a deadline is later than a weekday count."""
        self._table(a.year)
        lo, hi = a.toordinal(), b.toordinal()
        result: list[NonWorkingDay] = []
        if hi <= lo:
            return result
        for year in range(date.fromordinal(lo + 1).year, b.year + 1):
            result.extend(
                e for e in self._table(year).entries
                if lo < e.day.toordinal() <= hi and e.day.weekday() < 5
            )
        return result

    def non_working_days(self, year: int, *, include_weekends: bool = False) -> list[NonWorkingDay]:
        """Every holiday of ``year`` with its name and category, in date order.

        Holidays that fall on a weekend are listed (they are in the decrees) though they cost no
        working day; plain Saturdays and Sundays only with ``include_weekends``.
        """
        entries = list(self._table(year).entries)
        if include_weekends:
            names = _WEEKEND_NAMES.get(self.language.split("_")[0], _WEEKEND_DEFAULT)
            listed = {e.day for e in entries}
            first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
            entries.extend(
                NonWorkingDay(d, names[d.weekday() - 5], Category.WEEKEND)
                for d in map(date.fromordinal, range(first, last + 1))
                if d.weekday() >= 5 and d not in listed
            )
            entries.sort(key=lambda e: e.day)
        return entries

    def redundant_overrides(self) -> list[Override]:
        """Overrides in range that the library now reflects by itself: delete them from the file."""
        result: list[Override] = []
        for o in self.overrides:
            if not self.first_year <= o.day.year <= self.last_year:
                continue
            in_library = o.day in _library_year(o.day.year, self.language)
            if in_library == (o.action is Action.ADD):
                result.append(o)
        return result

    # -- internals -----------------------------------------------------------------------------

    def _closed_in(self, lo: int, hi: int) -> int:
        """How many weekday holidays fall in the ordinal range ``(lo, hi]``."""
        if hi <= lo:
            return 0
        count, year = 0, date.fromordinal(lo + 1).year
        while True:
            table = self._table(year)
            count += bisect_right(table.closed_sorted, hi) - bisect_right(table.closed_sorted, lo)
            if hi <= table.last_ordinal:
                return count
            year += 1

    def _table(self, year: int) -> _YearTable:
        table = self._years.get(year)
        if table is None:
            table = self._years[year] = self._build(year)  # idempotent: a race only rebuilds
        return table

    def _build(self, year: int) -> _YearTable:
        if not self.first_year <= year <= self.last_year:
            raise CalendarRangeError(
                f"{year} is outside the working-day calendar ({self.first_year}-{self.last_year})"
            )
        days: dict[date, NonWorkingDay] = {
            d: NonWorkingDay(d, name, category)
            for d, (name, category) in _library_year(year, self.language).items()
        }
        for o in self.overrides:
            if o.day.year != year:
                continue
            if o.action is Action.REMOVE:
                days.pop(o.day, None)
            else:
                days[o.day] = NonWorkingDay(o.day, o.name, o.category, o.source)
        entries = tuple(sorted(days.values(), key=lambda e: e.day))
        closed = tuple(e.day.toordinal() for e in entries if e.day.weekday() < 5)
        return _YearTable(entries, frozenset(closed), closed, date(year, 12, 31).toordinal())


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    """The shared calendar: default years, packaged overrides, Indonesian names."""
    return WorkingCalendar()
