"""dedupe: is this event already known, and which existing case does it belong to?

Exact: the event id is ``<agency>:<source_id>[:suffix]``, so an event id already seen is the same
source record delivered again (a connector retry, a re-import, a replayed partition): it changes
nothing. Cross-agency ("satu data"): the same incident reported through several channels joins one
case, found in this order:

1. by Bawaslu register number: a case that lists the event's ``case_ref``;
2. for a violation report with a NIP: a case of the same election about the same NIP with the same
   violation type and an incident date within the policy window (the closest date wins, then the
   smaller case id, so the answer never depends on dict order).

Name-only reports go through :mod:`streams.rules.matching` instead; BKN and PPK decisions join
only by register number (they carry no violation type or incident date to compare).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.errors import InvalidMessage
from schemas.models import CanonicalEvent, CaseRecord, Election, EventType, ViolationType


class CaseMismatch(InvalidMessage):
    """An event names a case of another election: bad data, not a new case."""


class CaseHit(BaseModel):
    """The case an event joins, and by which rule."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    by: Literal["case_ref", "nip"]
    gap_days: int | None = None


def is_duplicate(event_id: str, seen: Mapping[str, str]) -> bool:
    """True for an event id the partition has already taken (in a case, or waiting for one)."""
    return event_id in seen


def event_nip(event: CanonicalEvent) -> str | None:
    """The NIP an event gives: the accused's, else the decision's."""
    if event.person is not None and event.person.nip:
        return event.person.nip
    return event.nip


def same_incident(case: CaseRecord, election: Election, violation_type: ViolationType,
                  incident_date: date, window_days: int) -> bool:
    """Same election, same violation type, incident dates at most ``window_days`` apart."""
    return (case.election is election and case.violation_type is violation_type
            and abs((case.incident_date - incident_date).days) <= window_days)


def closest_incident(case_ids: Iterable[str], cases: Mapping[str, CaseRecord], *,
                     election: Election, violation_type: ViolationType, incident_date: date,
                     window_days: int) -> CaseHit | None:
    """Among ``case_ids``, the case of the same incident with the closest date."""
    best: tuple[int, str] | None = None
    for case_id in case_ids:
        case = cases.get(case_id)
        if case is None or not same_incident(case, election, violation_type, incident_date,
                                             window_days):
            continue
        key = (abs((case.incident_date - incident_date).days), case_id)
        best = key if best is None or key < best else best
    return CaseHit(case_id=best[1], by="nip", gap_days=best[0]) if best else None


def find_case(event: CanonicalEvent, *, by_ref: Mapping[str, str],
              by_nip: Mapping[str, Iterable[str]], cases: Mapping[str, CaseRecord],
              window_days: int) -> CaseHit | None:
    """The existing case ``event`` belongs to, by register number, then NIP + incident."""
    if event.case_ref is not None and event.case_ref in by_ref:
        case_id = by_ref[event.case_ref]
        case = cases[case_id]
        if case.election is not event.election:
            raise CaseMismatch(
                f"{event.event_id}: register number {event.case_ref} belongs to case {case_id} "
                f"of {case.election}, but the event is about {event.election}"
            )
        return CaseHit(case_id=case_id, by="case_ref")
    nip = event_nip(event)
    if (event.event_type is not EventType.VIOLATION_REPORTED or nip is None
            or event.violation_type is None or event.incident_date is None):
        return None
    return closest_incident(by_nip.get(nip, ()), cases, election=event.election,
                            violation_type=event.violation_type,
                            incident_date=event.incident_date, window_days=window_days)
