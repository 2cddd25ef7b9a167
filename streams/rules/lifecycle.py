"""lifecycle: the case state machine of both 2024 regimes, as a table (state x trigger -> state).

A canonical event becomes a :class:`Trigger` (a verification is ``proven`` or ``not-proven``; a
Bawaslu outcome on a secondary register number is informational and triggers nothing). The table
of the election's regime says where the case goes. The hub's own deadline steps (peringatan,
teguran, pemblokiran) use the same triggers as BKN's letters, so either source moves the case once.

States (CaseState) and where they come from:

- Pemilu 2024 (KASN_2024): report -> REPORTED; KASN rules ``proven`` -> UNDER_VERIFICATION (still
  with KASN until it recommends) or ``not-proven`` -> NOT_PROVEN; the recommendation ->
  RECOMMENDED (a recommendation implies proof, so it may come without a separate verification).
- Pilkada 2024 (SATGAS_2024): report -> UNDER_BAWASLU_REVIEW; Bawaslu forwards -> UNDER_VERIFICATION
  ("awaiting BKN"), rejects -> REJECTED, cancels -> CANCELLED; the Satgas rules ``proven`` (also
  accepted before Bawaslu's review: domain.md lists the Satgas' 7 days first) or ``not-proven``;
  BKN's recommendation -> RECOMMENDED.
- Both, after RECOMMENDED (awaiting the PPK): peringatan -> PERINGATAN -> teguran -> TEGURAN ->
  pemblokiran -> BLOCKED; the PPK's sanction from any of these -> SANCTIONED. SANCTIONED is
  terminal for a case that was never blocked (the 2024 statistics count "sanctioned"); a blocked
  one still owes the unblock, and its confirmation (BKN's lifting letter or SIASN's result) ->
  CLOSED. So CLOSED always means: sanctioned, and the block lifted.
- NEEDS_REVIEW: a case opened by an ambiguous name match; an operator's decision resumes the
  regime's first state. Events that arrive meanwhile wait (they are parked, see below).
- NOT_PROVEN, CANCELLED, REJECTED and CLOSED are terminal.

Out of order: a case is a fold of its entries sorted by (time, id). An entry the table refuses
at its place in time, but that some state reachable from there accepts, is **parked**: an older
event may still arrive (a late forwarding, a missing teguran) and the fold retries parked entries
after every transition (a retry never rejects: the missing event may rewrite the path before
it). An entry no state reachable from its place accepts is **impossible**:
:class:`InvalidTransition`, an InvalidMessage. The newcomer that caused it (itself, or an
earlier entry it made impossible) goes to the DLQ with the reason and the case stays untouched.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from functools import cache
from types import MappingProxyType

from schemas.errors import InvalidMessage
from schemas.models import (
    CanonicalEvent,
    CaseRecord,
    CaseState,
    CaseTransition,
    EventType,
    PolicyRegime,
    TimelineEntry,
)

S = CaseState

#: Namespace of every id the rules derive (case, transition, order, alert ids): uuid5 of a stable
#: text, so a replay or a re-emission after a crash yields the same id.
NAMESPACE = uuid.UUID("6f1d3c52-8a57-5d0e-9b8e-6e65747261ac")

#: Western Indonesia Time: BKN, KASN and most PPK letters are dated in Jakarta.
WIB = timezone(timedelta(hours=7), "WIB")


_NAMESPACE_BYTES = NAMESPACE.bytes


def stable_id(*parts: object) -> str:
    """A deterministic id (uuid5 in :data:`NAMESPACE`) of the parts, joined by ``:``.

    ``str(uuid.uuid5(NAMESPACE, text))`` computed directly (RFC 4122 section 4.3: SHA-1 of
    namespace + name, version 5, variant bits), without building a UUID object: the same
    text, 3-4x faster, and the cases stage derives one or more ids per event.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES
                                    + ":".join(map(str, parts)).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def local_date(at: datetime) -> date:
    """The calendar date of an instant in Jakarta (WIB), the date a letter carries."""
    return at.astimezone(WIB).date()


def start_of_day(day: date) -> datetime:
    """00:00 WIB of ``day``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=WIB).astimezone(UTC)


class Trigger(StrEnum):
    """What an entry does to a case, independent of who sent it."""

    REPORT = "reported"
    REPORT_HELD = "reported-ambiguous"  # opened by a name match in the review band
    REVIEW_RESOLVED = "review-resolved"  # an operator decided a NEEDS_REVIEW case
    FORWARD = "review-forwarded"  # Bawaslu's review sends the case on (Pilkada)
    PROVEN = "proven"  # terbukti
    NOT_PROVEN = "not-proven"  # tidak terbukti
    RECOMMEND = "recommended"
    WARNING = "peringatan"
    REPRIMAND = "teguran"
    BLOCK = "pemblokiran"
    SANCTION = "sanctioned"
    UNBLOCK = "unblocked"  # the block is lifted (BKN's letter or SIASN's confirmation)
    CANCEL = "cancelled"
    REJECT = "rejected"


T = Trigger
TERMINAL = frozenset({S.NOT_PROVEN, S.CANCELLED, S.REJECTED, S.CLOSED})
INITIAL: Mapping[PolicyRegime, CaseState] = MappingProxyType({
    PolicyRegime.KASN_2024: S.REPORTED,
    PolicyRegime.SATGAS_2024: S.UNDER_BAWASLU_REVIEW,
})

Table = Mapping[tuple[CaseState | None, Trigger], CaseState]

# Rows shared by both regimes: from the recommendation to the end.
_TAIL: tuple[tuple[CaseState, Trigger, CaseState], ...] = (
    (S.RECOMMENDED, T.RECOMMEND, S.RECOMMENDED),  # a revised recommendation restarts the clock
    (S.RECOMMENDED, T.WARNING, S.PERINGATAN),
    (S.PERINGATAN, T.WARNING, S.PERINGATAN),  # the hub's step and BKN's letter: one step
    (S.PERINGATAN, T.REPRIMAND, S.TEGURAN),
    (S.TEGURAN, T.WARNING, S.TEGURAN),  # BKN's letter dated after the hub's next step
    (S.TEGURAN, T.REPRIMAND, S.TEGURAN),
    (S.TEGURAN, T.BLOCK, S.BLOCKED),
    (S.BLOCKED, T.WARNING, S.BLOCKED),
    (S.BLOCKED, T.REPRIMAND, S.BLOCKED),
    (S.BLOCKED, T.BLOCK, S.BLOCKED),
    (S.RECOMMENDED, T.SANCTION, S.SANCTIONED),
    (S.PERINGATAN, T.SANCTION, S.SANCTIONED),
    (S.TEGURAN, T.SANCTION, S.SANCTIONED),
    (S.BLOCKED, T.SANCTION, S.SANCTIONED),  # and the UNBLOCK order goes out
    (S.SANCTIONED, T.SANCTION, S.SANCTIONED),  # the same sanction through a second channel
    (S.SANCTIONED, T.UNBLOCK, S.CLOSED),  # guarded: only when the case is blocked
    (S.CLOSED, T.SANCTION, S.CLOSED),
    (S.CLOSED, T.UNBLOCK, S.CLOSED),  # BKN's letter and SIASN's result both confirm
    (S.NEEDS_REVIEW, T.REPORT, S.NEEDS_REVIEW),
)

_PEMILU: tuple[tuple[CaseState | None, Trigger, CaseState], ...] = (
    (None, T.REPORT, S.REPORTED),
    (None, T.REPORT_HELD, S.NEEDS_REVIEW),
    (S.NEEDS_REVIEW, T.REVIEW_RESOLVED, S.REPORTED),
    (S.REPORTED, T.PROVEN, S.UNDER_VERIFICATION),  # proven, KASN's recommendation pending
    (S.UNDER_VERIFICATION, T.PROVEN, S.UNDER_VERIFICATION),
    (S.REPORTED, T.NOT_PROVEN, S.NOT_PROVEN),
    (S.UNDER_VERIFICATION, T.NOT_PROVEN, S.NOT_PROVEN),  # the latest verification wins
    (S.REPORTED, T.RECOMMEND, S.RECOMMENDED),
    (S.UNDER_VERIFICATION, T.RECOMMEND, S.RECOMMENDED),
    (S.REPORTED, T.CANCEL, S.CANCELLED),
    (S.REPORTED, T.REJECT, S.REJECTED),
    *_TAIL,
)

_PILKADA: tuple[tuple[CaseState | None, Trigger, CaseState], ...] = (
    (None, T.REPORT, S.UNDER_BAWASLU_REVIEW),
    (None, T.REPORT_HELD, S.NEEDS_REVIEW),
    (S.NEEDS_REVIEW, T.REVIEW_RESOLVED, S.UNDER_BAWASLU_REVIEW),
    (S.UNDER_BAWASLU_REVIEW, T.FORWARD, S.UNDER_VERIFICATION),
    (S.UNDER_BAWASLU_REVIEW, T.CANCEL, S.CANCELLED),
    (S.UNDER_BAWASLU_REVIEW, T.REJECT, S.REJECTED),
    (S.UNDER_BAWASLU_REVIEW, T.PROVEN, S.UNDER_BAWASLU_REVIEW),  # Satgas before the review
    (S.UNDER_BAWASLU_REVIEW, T.NOT_PROVEN, S.NOT_PROVEN),
    (S.UNDER_VERIFICATION, T.PROVEN, S.UNDER_VERIFICATION),
    (S.UNDER_VERIFICATION, T.NOT_PROVEN, S.NOT_PROVEN),
    (S.UNDER_VERIFICATION, T.RECOMMEND, S.RECOMMENDED),
    *_TAIL,
)


def _table(rows: tuple[tuple[CaseState | None, Trigger, CaseState], ...]) -> Table:
    table: dict[tuple[CaseState | None, Trigger], CaseState] = {}
    for state, trigger, target in rows:
        assert (state, trigger) not in table, f"duplicate row {state} x {trigger}"
        table[(state, trigger)] = target
    # A second report of the same incident (another agency, another register number) joins the
    # case in any state: it adds sources and evidence, never moves the case.
    for state in CaseState:
        table.setdefault((state, T.REPORT), state)
    return MappingProxyType(table)


TABLES: Mapping[PolicyRegime, Table] = MappingProxyType({
    PolicyRegime.KASN_2024: _table(_PEMILU),
    PolicyRegime.SATGAS_2024: _table(_PILKADA),
})
"""The transition table of each regime: (state or None for a new case, trigger) -> next state."""


class InvalidTransition(InvalidMessage):
    """An event no state of its case can accept, now or after any event still to come."""

    def __init__(self, case_id: str, state: CaseState | None, trigger: Trigger, entry_id: str,
                 regime: PolicyRegime, detail: str = "") -> None:
        self.case_id, self.state, self.trigger, self.entry_id = case_id, state, trigger, entry_id
        where = state.value if state else "no case yet"
        text = (f"impossible transition in case {case_id}: {where} + {trigger.value} "
                f"(entry {entry_id}, regime {regime.value})")
        super().__init__(text + (f": {detail}" if detail else ""))


def next_state(regime: PolicyRegime, state: CaseState | None, trigger: Trigger, *,
               blocked: bool = False) -> CaseState | None:
    """Where ``trigger`` takes a case in ``state``, or None when the table refuses it now."""
    if trigger is T.UNBLOCK and state is S.SANCTIONED and not blocked:
        return None  # nothing to lift yet: a BLOCK older than the sanction may still arrive
    return TABLES[regime].get((state, trigger))


@cache
def _reachable(regime: PolicyRegime, state: CaseState | None) -> frozenset[CaseState | None]:
    table = TABLES[regime]
    seen: set[CaseState | None] = {state}
    todo = [state]
    while todo:
        current = todo.pop()
        for (source, _), target in table.items():
            if source == current and target not in seen:
                seen.add(target)
                todo.append(target)
    return frozenset(seen)


def can_wait(regime: PolicyRegime, state: CaseState | None, trigger: Trigger) -> bool:
    """True when a state reachable from ``state`` accepts ``trigger``: the entry may be parked."""
    table = TABLES[regime]
    return any((r, trigger) in table for r in _reachable(regime, state))


def trigger_of(event: CanonicalEvent, primary_ref: str | None) -> Trigger | None:
    """The trigger of an event, or None for an event that only adds information.

    Bawaslu reviews each register number: an outcome for a *secondary* one (a duplicate report
    that joined the case) must not cancel or move the case the first report opened.
    """
    kind = event.event_type
    if kind in _REVIEW_OUTCOMES:
        if primary_ref is not None and event.case_ref not in (None, primary_ref):
            return None
        return _REVIEW_OUTCOMES[kind]
    if kind is EventType.VERIFIED:
        assert event.verification is not None  # CanonicalEvent guarantees the detail
        return T.PROVEN if event.verification.proven else T.NOT_PROVEN
    return _TRIGGERS.get(kind)  # None: MUTATION_REQUESTED, POLICY_UPDATED are not case events


_REVIEW_OUTCOMES = {EventType.REVIEW_FORWARDED: T.FORWARD, EventType.CASE_CANCELLED: T.CANCEL,
                    EventType.CASE_REJECTED: T.REJECT}
_TRIGGERS = {EventType.VIOLATION_REPORTED: T.REPORT, EventType.RECOMMENDED: T.RECOMMEND,
             EventType.SANCTIONED: T.SANCTION, EventType.WARNING_ISSUED: T.WARNING,
             EventType.REPRIMAND_ISSUED: T.REPRIMAND, EventType.BLOCK_ISSUED: T.BLOCK,
             EventType.UNBLOCK_ISSUED: T.UNBLOCK}


def origin_of(event: CanonicalEvent) -> str:
    """Who acted, for rule names: the issuing body (kasn, satgas, bkn), else the agency."""
    return (event.issued_by.value if event.issued_by else event.agency.value).lower()


def rule_name(origin: str, trigger: Trigger | None, event: CanonicalEvent | None = None) -> str:
    """``<who>.<what>``, e.g. ``kasn.proven``, ``deadline.peringatan``, ``bkn.unblocked``."""
    if trigger is not None:
        return f"{origin}.{trigger.value}"
    assert event is not None
    return f"{origin}.{event.event_type.value.lower()}.info"


def enter(record: CaseRecord, state: CaseState, *, at: datetime, cause: str | None,
          rule: str) -> CaseRecord:
    """The record in ``state``, with a timeline entry when the state changes."""
    if state is record.state:
        return record
    entry = TimelineEntry(at=at, state=state, cause_event_id=cause, rule=rule)
    return record.model_copy(update={"state": state, "timeline": (*record.timeline, entry)})


def transitions(before: CaseRecord | None, after: CaseRecord, *, rule: str, cause: str | None,
                at: datetime) -> tuple[CaseTransition, ...]:
    """The audit records of one change from ``before`` to ``after`` (version ``after.version``).

    One per timeline entry the change added (a re-fold may insert one mid-timeline: its
    ``from_state`` is the entry before it); a change that moved no state gives one transition
    from the state to itself, with the rule of what changed it.
    """
    old: dict[TimelineEntry, int] = {}
    for entry in before.timeline if before else ():
        old[entry] = old.get(entry, 0) + 1
    out: list[CaseTransition] = []
    previous: CaseState | None = None
    for entry in after.timeline:
        if old.get(entry, 0) > 0:
            old[entry] -= 1
        else:
            out.append(CaseTransition(
                transition_id=stable_id(after.case_id, after.version, len(out)),
                case_id=after.case_id, version=after.version, from_state=previous,
                to_state=entry.state, cause_event_id=entry.cause_event_id, at=entry.at,
                rule=entry.rule))
        previous = entry.state
    if not out:
        out.append(CaseTransition(
            transition_id=stable_id(after.case_id, after.version, 0), case_id=after.case_id,
            version=after.version, from_state=before.state if before else None,
            to_state=after.state, cause_event_id=cause, at=at, rule=rule))
    return tuple(out)
