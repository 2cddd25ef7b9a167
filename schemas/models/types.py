"""Field types with the checks an Avro schema cannot express.

Instants are aware and normalised to UTC at millisecond precision (what ``timestamp-millis``
keeps), so a model survives an Avro round trip unchanged. Times an agency reports must not lie in
the future: that is a clock or data-entry error the DLQ should show, not a case to act on. The
"now" bound allows a little clock skew, and for calendar dates Indonesia's easternmost zone (WIT,
UTC+9), where the local date runs ahead of the UTC one.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from .. import regions
from ..nip import parse_nip

CLOCK_SKEW = timedelta(minutes=5)
LATEST_UTC_OFFSET = timedelta(hours=9)  # WIT: the latest local date anywhere in Indonesia

MAX_ID = 100
MAX_NAME = 200
MAX_REF = 200
MAX_TITLE = 300
MAX_TEXT = 5000
MAX_URI = 2048
MAX_EVIDENCE = 50
MAX_CASE_LIST = 1000  # sources, timeline, case_refs of one case


def latest_local_date() -> date:
    """The latest calendar date it can be anywhere in Indonesia right now, plus skew."""
    return (datetime.now(UTC) + LATEST_UTC_OFFSET + CLOCK_SKEW).date()


def _utc_millis(value: datetime) -> datetime:
    if value.tzinfo is UTC and not value.microsecond % 1000:
        return value  # what the Avro reader gives: every instant of every record takes this path
    if value.tzinfo is None or value.utcoffset() is None:
        # Indonesia spans three zones (WIB, WITA, WIT): a naive time is ambiguous by hours.
        raise ValueError("timestamp has no timezone; send UTC or an explicit offset")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _not_future_instant(value: datetime) -> datetime:
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError(f"{value.isoformat()} is in the future")
    return value


def _not_future_date(value: date) -> date:
    if value > latest_local_date():
        raise ValueError(f"{value.isoformat()} is in the future")
    return value


def _valid_nip(value: str) -> str:
    return _checked_nip(value, latest_local_date())


@lru_cache(maxsize=1 << 16)
def _checked_nip(value: str, today: date) -> str:
    """A NIP is checked again in every record naming it: the same NIP on the same day is the
    same answer (an invalid one raises, which is never cached)."""
    parse_nip(value, today)
    return value


def _known_region(value: str) -> str:
    regions.get(value)
    return value


def _known_province(value: str) -> str:
    if regions.get(value).level is not regions.RegionLevel.PROVINCE:
        raise ValueError(f"{value!r} is not a province code (2 digits, e.g. '32')")
    return value


UtcMillis = Annotated[datetime, AfterValidator(_utc_millis)]
"""An instant (Avro timestamp-millis): aware, UTC, millisecond precision."""
PastInstant = Annotated[datetime, AfterValidator(_utc_millis), AfterValidator(_not_future_instant)]
"""An instant that has already happened (clock skew allowed)."""
PastDate = Annotated[date, AfterValidator(_not_future_date)]
"""A calendar date (Avro date) that has already begun somewhere in Indonesia."""

# Identifiers, names, references and codes are interned (one string object per value): the
# book holds each many times (an event id in the log, the index of events seen, the case's
# sources and timeline; an agency's name in every person of it; a rule's name in every
# timeline entry), decoded anew from every record, snapshot or journal entry: without it
# 2.1 KiB of a restored case's 11.4 were copies of strings the book already held.
_interned = AfterValidator(sys.intern)
Interned = Annotated[str, _interned]
"""A string the rules keep many copies of (a known person's names, an index key)."""

Nip = Annotated[str, AfterValidator(_valid_nip), _interned]
RegionCode = Annotated[str, AfterValidator(_known_region), _interned]
ProvinceCode = Annotated[str, AfterValidator(_known_province), _interned]

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID), _interned]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME), _interned]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=MAX_REF), _interned]
Title = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URI)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
