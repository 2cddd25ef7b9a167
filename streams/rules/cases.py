"""cases: the one entry point of the national record: ``(book, message, now, ...) -> (book, out)``.

A :class:`CaseBook` holds the cases of one partition of ``netral.events`` with the indexes the
rules need: register number -> case, NIP -> cases, known persons (for name-only reports), the event
ids already taken, events waiting for their case (orphans), review commands already applied.

- :func:`handle_event`: one canonical event (dedupe, find or open its case, fold, publish).
- :func:`handle_review`: an operator's MERGE or SPLIT (``netral.commands``).
- :func:`handle_order_result`: SIASN confirmed an UNBLOCK (``netral.orders.siasn.results``).
- :func:`scan_deadlines`: the timer: take every escalation step due ``today``.

Each returns a new book and the :class:`Outputs` to publish: CaseRecords (``netral.cases``),
tombstones (case ids merged away: publish a null value), CaseTransitions (``netral.case-events``),
SiasnOrders, Alerts, and dead letters (orphans that proved impossible once their case arrived).
An impossible event raises :class:`~streams.rules.lifecycle.InvalidTransition` (InvalidMessage)
and the book is untouched: the processor sends the record to the DLQ with the message.

Not case events: POLICY_UPDATED belongs to :func:`streams.rules.policy.apply_policy_update` (the
processor keeps policies in a table every partition sees) and MUTATION_REQUESTED to early warning;
``handle_event`` returns them unchanged.

Cost: the book is immutable but its maps are persistent (:class:`~streams.rules.pmap.PMap`: a
write copies a 256-slot root, one 256-leaf node and one small leaf), so an event costs about
20 small copies plus the fold of its own case (O(events of that case)), whatever the partition
holds; waiting orphans are adopted from ``CaseBook.adoptable``, never by scanning them. A
name-only report also shortlists the partition's known persons by name in rapidfuzz (C, over
each person's pre-sorted words, listed from :meth:`PMap.column`'s per-slot memo): O(persons)
at C speed, about 0.5 ms at
5,000 persons on this machine; block by province first if partitions grow far beyond that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from schemas.errors import InvalidMessage
from schemas.models import (
    Alert,
    CanonicalEvent,
    CaseRecord,
    CaseState,
    CaseTransition,
    EscalationStep,
    EventType,
    MatchCandidate,
    MatchInfo,
    OrderAction,
    OrderOutcome,
    ReviewAction,
    ReviewDecision,
    Severity,
    SiasnOrder,
    SiasnOrderResult,
)

from . import escalation
from .dedupe import closest_incident, event_nip, find_case, same_incident
from .escalation import Calendar
from .lifecycle import (
    InvalidTransition,
    Trigger,
    origin_of,
    rule_name,
    stable_id,
    transitions,
    trigger_of,
)
from .matching import (
    NAME_WORDS,
    Candidate,
    Decision,
    KnownPerson,
    PersonMatch,
    known_person,
    match_person,
)
from .merge import (
    DeadlineStep,
    Entry,
    Fold,
    FoldContext,
    Opening,
    ReviewResolved,
    UnblockConfirmed,
    add,
    entry_id,
    entry_key,
    fold,
    publish,
    with_record,
)
from .pmap import PMap, empty
from .policy import LEVEL_ORDER, ElectionPolicy, Policies, policy_for
from .stored import StoredEvent, keep

_NOT_CASE_EVENTS = frozenset({EventType.POLICY_UPDATED, EventType.MUTATION_REQUESTED})

class InvalidReview(InvalidMessage):
    """A review command that cannot be applied (unknown case, nothing left after a split...)."""


@dataclass(frozen=True, slots=True)
class CaseLog:
    """What a case is folded from: how it was opened, and its entries in (time, id) order."""

    opening: Opening
    entries: tuple[Entry, ...]
    fold: Fold


@dataclass(frozen=True, slots=True)
class CaseBook:
    """The cases of one partition and their indexes, all persistent maps (never mutated).

    ``by_ref``: Bawaslu register number -> case id. ``by_nip``: NIP -> case ids. ``persons``:
    NIP -> the person as the cases know them; ``nameless``: case id -> the person of a case
    without a NIP (both for name-only matching); ``nameless_by_kind``: the same cases by
    ``election:violation_type:week of the incident`` (ids sorted), so a report is compared only
    with cases of its own kind whose incident can be within the dedupe window, not every case
    of its kind.
    ``seen``: event id -> case id ("" while the event waits as an orphan). ``orphans``: register
    number -> events waiting for that case. ``logs``: what each case is folded from.
    ``commands``: review command ids already applied. ``adoptable``: the register numbers that
    are both in ``orphans`` and ``by_ref`` (orphans whose case is known now), kept in step with
    both maps by every write, so adopting them costs O(adoptable), not a scan of the orphans.
    ``by_deadline``: a case's ``next_deadline`` (ISO date) -> the ids of the cases due that day
    (sorted), so a deadline scan reads the days due, not every case (a snapshot does not
    store it: the reader rebuilds it from the cases, :func:`deadline_index`).
    """

    cases: PMap[CaseRecord] = field(default_factory=empty)
    logs: PMap[CaseLog] = field(default_factory=empty)
    by_ref: PMap[str] = field(default_factory=empty)
    by_nip: PMap[tuple[str, ...]] = field(default_factory=empty)
    persons: PMap[KnownPerson] = field(default_factory=empty)
    nameless: PMap[KnownPerson] = field(default_factory=empty)
    nameless_by_kind: PMap[tuple[str, ...]] = field(default_factory=empty)
    seen: PMap[str] = field(default_factory=empty)
    orphans: PMap[tuple[CanonicalEvent, ...]] = field(default_factory=empty)
    commands: frozenset[str] = frozenset()
    adoptable: frozenset[str] = frozenset()
    by_deadline: PMap[tuple[str, ...]] = field(default_factory=empty)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that cannot be applied after all (an orphan impossible in its case)."""

    event: CanonicalEvent
    reason: str


@dataclass(frozen=True, slots=True)
class Outputs:
    """Everything one call publishes, in the order to publish it."""

    cases: tuple[CaseRecord, ...] = ()
    tombstones: tuple[str, ...] = ()
    transitions: tuple[CaseTransition, ...] = ()
    orders: tuple[SiasnOrder, ...] = ()
    alerts: tuple[Alert, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()

    def __add__(self, other: Outputs) -> Outputs:
        return Outputs(*(getattr(self, f) + getattr(other, f) for f in _OUTPUT_FIELDS))

    def __bool__(self) -> bool:
        return any(getattr(self, f) for f in _OUTPUT_FIELDS)


_OUTPUT_FIELDS = ("cases", "tombstones", "transitions", "orders", "alerts", "dead_letters")
NONE = Outputs()


def batch_outputs(parts: Iterable[Outputs]) -> Outputs:
    """The outputs of a batch of inputs, to publish once: every transition, order, alert and
    dead letter in order, and of each case only its last version or its tombstone, whichever
    came last (``netral.cases`` is compacted and the sinks upsert by version: the versions in
    between would be encoded and sent only to be overwritten)."""
    latest: dict[str, CaseRecord | None] = {}
    rest: dict[str, list[Any]] = {f: [] for f in _OUTPUT_FIELDS[2:]}
    for part in parts:
        for record in part.cases:
            latest.pop(record.case_id, None)
            latest[record.case_id] = record
        for case_id in part.tombstones:
            latest.pop(case_id, None)
            latest[case_id] = None
        for name, items in rest.items():
            items.extend(getattr(part, name))
    order = list(latest.items())
    return Outputs(cases=tuple(r for _, r in order if r is not None),
                   tombstones=tuple(c for c, r in order if r is None),
                   **{name: tuple(items) for name, items in rest.items()})


def case_id_for(event_id: str) -> str:
    """A case's id: uuid5 of the event that opened it (stable across replays)."""
    return stable_id(event_id)


# -- the entry points --------------------------------------------------------------------------


def handle_event(state: CaseBook, event: CanonicalEvent, now: datetime, calendar: Calendar,
                 policies: Policies, *, avro: bytes | None = None) -> tuple[CaseBook, Outputs]:
    """Take one canonical event into the partition's national record. ``avro``: the event's
    bytes as consumed, which its case's log keeps (see :mod:`streams.rules.stored`)."""
    if event.event_type in _NOT_CASE_EVENTS or event.event_id in state.seen:
        return state, NONE
    policy = policy_for(policies, event.election)
    draft = _Draft(state)
    if avro is not None:
        draft.avro[event.event_id] = avro
    hit = find_case(event, by_ref=state.by_ref, by_nip=state.by_nip, cases=state.cases,
                    window_days=policy.dedupe_window_days)
    if hit is not None:
        out = draft.apply(hit.case_id, [event], now, calendar, policy, newcomer=event)
    elif event.event_type is EventType.VIOLATION_REPORTED:
        out = _place_report(draft, event, now, calendar, policy)
    elif event.case_ref is not None:
        # A decision about a report not seen yet (sent late, or on its way): it waits for it.
        draft.park_orphan(event)
        return draft.freeze(), NONE
    else:
        raise InvalidMessage(f"{event.event_id}: a {event.event_type} without a register number "
                             "(case_ref) cannot be tied to any case")
    out += _adopt_orphans(draft, now, calendar, policies)
    return draft.freeze(), out


def handle_review(state: CaseBook, decision: ReviewDecision, now: datetime, calendar: Calendar,
                  policies: Policies) -> tuple[CaseBook, Outputs]:
    """Apply an operator's MERGE (case into target) or SPLIT (event ids out into a new case).

    A SPLIT of a NEEDS_REVIEW case that lists all its reports means "a different person or
    incident, keep it": the case leaves review with its events. Any decision on a held case
    resolves its review.
    """
    if decision.command_id in state.commands:
        return state, NONE
    case = state.cases.get(decision.case_id)
    if case is None:
        raise InvalidReview(f"review {decision.command_id}: unknown case {decision.case_id}")
    policy = policy_for(policies, case.election)
    draft = _Draft(state)
    if decision.action is ReviewAction.MERGE:
        out = _merge_cases(draft, decision, now, calendar, policy)
    else:
        out = _split_case(draft, decision, now, calendar, policy)
    draft.commands = draft.commands | {decision.command_id}
    return draft.freeze(), out


def handle_order_result(state: CaseBook, result: SiasnOrderResult, now: datetime,
                        calendar: Calendar, policies: Policies) -> tuple[CaseBook, Outputs]:
    """SIASN confirmed an UNBLOCK: the sanctioned case closes. Other results change no case."""
    confirmed = result.outcome in (OrderOutcome.CONFIRMED, OrderOutcome.ALREADY_IN_EFFECT)
    case = state.cases.get(result.case_id)
    if result.action is not OrderAction.UNBLOCK or not confirmed or case is None:
        return state, NONE
    entry = UnblockConfirmed(order_id=result.order_id, at=result.at)
    if any(entry_id(e) == entry.entry_id for e in state.logs[case.case_id].entries):
        return state, NONE
    draft = _Draft(state)
    out = draft.apply(case.case_id, [entry], now, calendar,
                      policy_for(policies, case.election), rule="siasn.unblocked", at=result.at)
    return draft.freeze(), out


def scan_deadlines(state: CaseBook, today: date, now: datetime, calendar: Calendar,
                   policies: Policies) -> tuple[CaseBook, Outputs]:
    """Take every escalation step due on ``today`` (Jakarta date); idempotent and restart-safe:
    a step taken is an entry of its case, so the next scan finds nothing due until the next
    interval has run. The cases due are read from ``by_deadline`` (the days up to ``today``),
    in case id order: O(days with a deadline + cases due) per scan, where a pass over every
    case cost ~4 s at a million (measured: the sort and the lookups alone)."""
    draft = _Draft(state)
    out = NONE
    day = today.isoformat()  # ISO dates sort as the days do
    for case_id in sorted(c for d, ids in state.by_deadline.items() if d <= day for c in ids):
        case = state.cases[case_id]
        if case.next_deadline is None or case.next_deadline > today:  # never: in step
            continue
        policy = policy_for(policies, case.election)
        step = escalation.due_step(case, today)
        if step is None:
            continue
        if step is EscalationStep.BLOCK and case.person.nip is None:
            due = escalation.due_steps(case, today, calendar, policy, now=now)
            out += Outputs(alerts=tuple(o for o in due if isinstance(o, Alert)))
            continue
        rule = f"deadline.{escalation.STEP_TRIGGER[step].value}"
        entry = DeadlineStep(step=step, on=today, at=now)
        applied = draft.apply(case_id, [entry], now, calendar, policy, rule=rule, at=now)
        after = draft.cases[case_id]
        extra = escalation.step_outputs(case, after, step, now)
        out += applied + Outputs(alerts=tuple(o for o in extra if isinstance(o, Alert)),
                                 orders=tuple(o for o in extra if isinstance(o, SiasnOrder)))
    return draft.freeze(), out


# -- placing a report ----------------------------------------------------------------------------


def _place_report(draft: _Draft, event: CanonicalEvent, now: datetime, calendar: Calendar,
                  policy: ElectionPolicy) -> Outputs:
    """A report no register number or NIP ties to a case: match by person, then join or open."""
    if event.person is None or event.violation_type is None or event.incident_date is None:
        raise InvalidMessage(f"{event.event_id}: a report needs person, violation_type and "
                             "incident_date")
    nip = event_nip(event)
    person = event.person if event.person.nip == nip else event.person.model_copy(
        update={"nip": nip})
    query = known_person(person, key=nip or f"event:{event.event_id}",
                         region_code=event.region_code, case_ids=())
    pool = [draft.nameless[c]
            for kind in _kinds_near(event.election.value, event.violation_type.value,
                                    event.incident_date, policy.dedupe_window_days)
            for c in draft.nameless_by_kind.get(kind, ())
            if same_incident(draft.cases[c], event.election, event.violation_type,
                             event.incident_date, policy.dedupe_window_days)]
    names = [p.name_words for p in pool]
    # a NIP is one person in every election: without one, compare with every known person
    everyone = draft.persons.column_slots(NAME_WORDS) if nip is None else ()
    match = match_person(query, pool, policy.match, names=names, more=everyone)
    info = MatchInfo(score=match.score, matched_fields=match.matched_fields)
    chosen = match.chosen
    if chosen is not None:
        if chosen.nip is None:  # a case whose person has no NIP yet: the same incident
            return draft.apply(chosen.case_ids[0], [event], now, calendar, policy,
                               newcomer=event, match=info)
        hit = closest_incident(draft.by_nip.get(chosen.nip, ()), draft.cases,
                               election=event.election, violation_type=event.violation_type,
                               incident_date=event.incident_date,
                               window_days=policy.dedupe_window_days)
        if hit is not None:
            return draft.apply(hit.case_id, [event], now, calendar, policy, newcomer=event,
                               match=info)
        opening = Opening(case_id_for(event.event_id), match=info, matched_nip=chosen.nip)
    elif match.decision is Decision.REVIEW:
        info = info.model_copy(update={"candidates": _candidates(draft, match, event, policy)})
        opening = Opening(case_id_for(event.event_id), held=True, match=info)
    else:
        opening = Opening(case_id_for(event.event_id))
    out = draft.apply(opening.case_id, [event], now, calendar, policy, newcomer=event,
                      opening=opening)
    if opening.held:
        out += Outputs(alerts=(_review_alert(draft.cases[opening.case_id], match, now),))
    return out


def _candidates(draft: _Draft, match: PersonMatch, event: CanonicalEvent,
                policy: ElectionPolicy) -> tuple[MatchCandidate, ...]:
    """One candidate case per matched person: the same incident if they have one, else the
    latest case."""
    result = []
    for c in match.candidates:
        case_id = _candidate_case(draft, c, event, policy)
        result.append(MatchCandidate(case_id=case_id, nip=c.nip, score=c.score,
                                     matched_fields=c.matched_fields))
    return tuple(result)


def _candidate_case(draft: _Draft, c: Candidate, event: CanonicalEvent,
                    policy: ElectionPolicy) -> str:
    assert event.violation_type is not None and event.incident_date is not None
    hit = closest_incident(c.case_ids, draft.cases, election=event.election,
                           violation_type=event.violation_type,
                           incident_date=event.incident_date,
                           window_days=policy.dedupe_window_days)
    if hit is not None:
        return hit.case_id
    return max(c.case_ids, key=lambda i: (draft.cases[i].opened_at, i))


def _review_alert(case: CaseRecord, match: PersonMatch, now: datetime) -> Alert:
    names = ", ".join(f"{c.key} ({c.score:.2f}: {'/'.join(c.matched_fields) or '-'})"
                      for c in match.candidates[:5])
    return escalation.case_alert(
        case, "match.needs-review", Severity.WARNING,
        f"Identity needs review: {case.person.name} ({case.person.agency_name})",
        f"A report without a clear NIP match opened case {case.case_id} in NEEDS_REVIEW. "
        f"Best score {match.score:.2f}; candidates: {names}. Merge it into a candidate's case, "
        "or keep it separate (SPLIT listing its report).", now)


# -- review decisions ----------------------------------------------------------------------------


def _merge_cases(draft: _Draft, decision: ReviewDecision, now: datetime, calendar: Calendar,
                 policy: ElectionPolicy) -> Outputs:
    source = draft.cases[decision.case_id]
    assert decision.target_case_id is not None  # ReviewDecision guarantees it for MERGE
    target = draft.cases.get(decision.target_case_id)
    if target is None:
        raise InvalidReview(f"review {decision.command_id}: unknown target case "
                            f"{decision.target_case_id}")
    if target.election is not source.election:
        raise InvalidReview(f"review {decision.command_id}: cannot merge a {source.election} "
                            f"case into a {target.election} case")
    if source.escalation_step or source.blocked:
        raise InvalidReview(f"review {decision.command_id}: case {source.case_id} has escalation "
                            "steps of its own; split the target instead")
    events = [e for e in draft.logs[source.case_id].entries
              if isinstance(e, CanonicalEvent | StoredEvent)]
    try:
        out = draft.apply(target.case_id, events, now, calendar, policy, rule="review.merge",
                          at=decision.at)
    except InvalidTransition as err:
        raise InvalidReview(f"review {decision.command_id}: merging {source.case_id} into "
                            f"{target.case_id} is impossible: {err}") from None
    merged = draft.cases[target.case_id]
    draft.remove(source.case_id)
    gone = CaseTransition(
        transition_id=stable_id(source.case_id, source.version + 1, 0), case_id=source.case_id,
        version=source.version + 1, from_state=source.state, to_state=merged.state,
        cause_event_id=None, at=decision.at, rule="review.merged-into")
    return Outputs(tombstones=(source.case_id,), transitions=(gone,)) + out


def _split_case(draft: _Draft, decision: ReviewDecision, now: datetime, calendar: Calendar,
                policy: ElectionPolicy) -> Outputs:
    case = draft.cases[decision.case_id]
    log = draft.logs[case.case_id]
    events = {e.event_id: e for e in log.entries if isinstance(e, CanonicalEvent | StoredEvent)}
    unknown = sorted(set(decision.event_ids) - set(events))
    if unknown:
        raise InvalidReview(f"review {decision.command_id}: case {case.case_id} has no event(s) "
                            f"{', '.join(unknown[:5])}")
    held = case.state is CaseState.NEEDS_REVIEW or log.opening.held
    reports = {i for i, e in events.items() if e.event_type is EventType.VIOLATION_REPORTED}
    if set(decision.event_ids) == set(events) or (held and reports <= set(decision.event_ids)):
        if not held:
            raise InvalidReview(f"review {decision.command_id}: splitting every event out would "
                                f"leave case {case.case_id} empty")
        resolved = ReviewResolved(decision.command_id, decision.at, "review.kept-separate")
        return draft.apply(case.case_id, [resolved], now, calendar, policy,
                           rule="review.kept-separate", at=decision.at)
    moved = [events[i] for i in decision.event_ids]
    kept = [e for e in log.entries if entry_id(e) not in set(decision.event_ids)]
    for label, part in (("moved", moved), ("remaining", kept)):
        if not any(isinstance(e, CanonicalEvent | StoredEvent)
                   and e.event_type is EventType.VIOLATION_REPORTED for e in part):
            raise InvalidReview(f"review {decision.command_id}: the {label} events of case "
                                f"{case.case_id} include no violation report to open a case")
    if held:
        kept.append(ReviewResolved(decision.command_id, decision.at, "review.split"))
    new_id = stable_id("split", decision.command_id)
    try:
        out = draft.replace_entries(case.case_id, kept, now, calendar, policy,
                                    rule="review.split", at=decision.at)
        out += draft.apply(new_id, moved, now, calendar, policy, rule="review.split",
                           at=decision.at, opening=Opening(new_id))
    except InvalidTransition as err:
        raise InvalidReview(f"review {decision.command_id}: split of {case.case_id} is "
                            f"impossible: {err}") from None
    return out


# -- orphans -------------------------------------------------------------------------------------


def _adopt_orphans(draft: _Draft, now: datetime, calendar: Calendar,
                   policies: Policies) -> Outputs:
    """Events that waited for a register number now known join their case, one by one."""
    out = NONE
    for ref in sorted(draft.adoptable):
        case_id = draft.by_ref[ref]
        policy = policy_for(policies, draft.cases[case_id].election)
        for orphan in sorted(draft.take_orphans(ref), key=entry_key):
            try:
                out += draft.apply(case_id, [orphan], now, calendar, policy, newcomer=orphan)
            except InvalidMessage as err:
                draft.seen = draft.seen.set(orphan.event_id, case_id)
                out += Outputs(dead_letters=(DeadLetter(orphan, str(err)),))
    return out


# -- the working copy ----------------------------------------------------------------------------


class _Draft:
    """The working state of one call, built on the book's persistent maps; ``freeze()`` makes
    the new book. ``apply`` folds a case completely before it writes anything, so an
    InvalidTransition leaves the draft (and the caller's book) as it was.
    """

    def __init__(self, book: CaseBook) -> None:
        self.cases = book.cases
        self.logs = book.logs
        self.by_ref = book.by_ref
        self.by_nip = book.by_nip
        self.persons = book.persons
        self.nameless = book.nameless
        self.nameless_by_kind = book.nameless_by_kind
        self.seen = book.seen
        self.orphans = book.orphans
        self.commands = book.commands
        self.adoptable = book.adoptable
        self.by_deadline = book.by_deadline
        self.avro: dict[str, bytes] = {}  # event id -> its bytes as consumed (the input's)

    def freeze(self) -> CaseBook:
        return CaseBook(cases=self.cases, logs=self.logs, by_ref=self.by_ref,
                        by_nip=self.by_nip, persons=self.persons, nameless=self.nameless,
                        nameless_by_kind=self.nameless_by_kind, seen=self.seen,
                        orphans=self.orphans, commands=self.commands,
                        adoptable=self.adoptable, by_deadline=self.by_deadline)

    def park_orphan(self, event: CanonicalEvent) -> None:
        assert event.case_ref is not None
        waiting = self.orphans.get(event.case_ref, ())
        self.orphans = self.orphans.set(event.case_ref, (*waiting, event))
        if event.case_ref in self.by_ref:
            self.adoptable = self.adoptable | {event.case_ref}
        self.seen = self.seen.set(event.event_id, "")

    def take_orphans(self, ref: str) -> tuple[CanonicalEvent, ...]:
        waiting = self.orphans.get(ref, ())
        self.orphans = self.orphans.delete(ref)
        self.adoptable = self.adoptable - {ref}
        return waiting

    def apply(self, case_id: str, new: Sequence[Entry], now: datetime, calendar: Calendar,
              policy: ElectionPolicy, *, newcomer: CanonicalEvent | None = None,
              opening: Opening | None = None, match: MatchInfo | None = None,
              rule: str | None = None, at: datetime | None = None) -> Outputs:
        """Add entries to a case (opening it with ``opening``), publish the change."""
        log = self.logs.get(case_id)
        if log is None and opening is None:
            raise InvalidMessage(f"no case {case_id}")
        start = opening or (log.opening if log else Opening(case_id))
        if match is not None:
            start = replace(start, match=match)
        kept = tuple(self._kept(e) for e in new)
        entries = tuple(sorted((*(log.entries if log else ()), *kept), key=entry_key))
        ctx = FoldContext(start, policy, calendar)
        try:
            if (log is not None and len(new) == 1 and start == log.opening
                    and log.fold.last is not None and entry_key(new[0]) > log.fold.last):
                # The entry as the log keeps it (a parked one is then the same object, which
                # a snapshot shares); keep() left it decoded in the memo, so no decoding again.
                folded = add(log.fold, kept[0], ctx)
            else:
                folded = fold(entries, ctx)
        except InvalidTransition as err:
            if newcomer is None or err.entry_id == newcomer.event_id:
                raise
            raise InvalidTransition(err.case_id, err.state, err.trigger, newcomer.event_id,
                                    policy.regime, f"it would make entry {err.entry_id} "
                                    f"impossible ({err})") from None
        return self._store(case_id, CaseLog(start, entries, folded), new, now, policy,
                           newcomer=newcomer, rule=rule, at=at)

    def _kept(self, entry: Entry) -> Entry:
        """An entry as the case's log keeps it: an event as a StoredEvent."""
        if isinstance(entry, CanonicalEvent):
            return keep(entry, self.avro.get(entry.event_id))
        return entry

    def replace_entries(self, case_id: str, entries: Iterable[Entry], now: datetime,
                        calendar: Calendar, policy: ElectionPolicy, *, rule: str,
                        at: datetime) -> Outputs:
        """Re-fold a case from another set of entries (a split)."""
        log = self.logs[case_id]
        ordered = tuple(sorted(entries, key=entry_key))
        folded = fold(ordered, FoldContext(log.opening, policy, calendar))
        return self._store(case_id, CaseLog(log.opening, ordered, folded), (), now, policy,
                           newcomer=None, rule=rule, at=at)

    def _store(self, case_id: str, log: CaseLog, new: Sequence[Entry], now: datetime,
               policy: ElectionPolicy, *, newcomer: CanonicalEvent | None, rule: str | None,
               at: datetime | None) -> Outputs:
        before = self.cases.get(case_id)
        for entry in new:
            if isinstance(entry, CanonicalEvent | StoredEvent):
                self.seen = self.seen.set(entry.event_id, case_id)
        record = log.fold.record
        if record is None:  # nothing but waiting entries
            self.logs = self.logs.set(case_id, log)
            return NONE
        if record.match != log.opening.match:  # the fold opened it with the opening's match
            record = record.model_copy(update={"match": log.opening.match})
        published = publish(record, before, now)
        # The fold goes on from the record the book publishes (the same content; the fold
        # never reads version or updated_at): one record per case in memory, not two.
        kept = published or before
        assert kept is not None  # publish gives None only for an unchanged case of the book
        self.logs = self.logs.set(case_id, CaseLog(log.opening, log.entries,
                                                   with_record(log.fold, kept)))
        if published is None:
            return NONE
        self.cases = self.cases.set(case_id, published)
        self._reindex(before, published)
        if newcomer is not None:
            trigger = trigger_of(newcomer, log.fold.primary_ref)
            rule = rule_name(origin_of(newcomer), trigger, newcomer)
        out = Outputs(cases=(published,), transitions=transitions(
            before, published, rule=rule or "case.updated",
            cause=newcomer.event_id if newcomer else None,
            at=at or (newcomer.occurred_at if newcomer else now)))
        if escalation.owes_unblock(published) and not (before and escalation.owes_unblock(before)):
            order = escalation.unblock_order(published, now)
            out += Outputs(orders=(order,) if order else ())
        if newcomer is not None and newcomer.recommendation is not None:
            out += _proportionality(published, newcomer, policy, now)
        return out

    def remove(self, case_id: str) -> None:
        before = self.cases[case_id]
        self.cases = self.cases.delete(case_id)
        self.logs = self.logs.delete(case_id)
        self._reindex(before, None)
        for source in before.sources:
            if self.seen.get(source.event_id) == case_id:
                self.seen = self.seen.delete(source.event_id)

    def _reindex(self, before: CaseRecord | None, after: CaseRecord | None) -> None:
        """Keep the register-number, NIP, person and deadline indexes in step with one case."""
        current = after or before
        assert current is not None
        case_id = current.case_id
        old_day = before.next_deadline if before else None
        new_day = after.next_deadline if after else None
        if old_day != new_day:
            if old_day is not None:
                rest = tuple(c for c in self.by_deadline.get(old_day.isoformat(), ())
                             if c != case_id)
                self.by_deadline = (self.by_deadline.set(old_day.isoformat(), rest) if rest
                                    else self.by_deadline.delete(old_day.isoformat()))
            if new_day is not None:
                ids = self.by_deadline.get(new_day.isoformat(), ())
                self.by_deadline = self.by_deadline.set(new_day.isoformat(),
                                                        tuple(sorted((*ids, case_id))))
        old_refs = set(before.case_refs) if before else set()
        new_refs = set(after.case_refs) if after else set()
        for ref in old_refs - new_refs:
            if self.by_ref.get(ref) == case_id:
                self.by_ref = self.by_ref.delete(ref)
                self.adoptable = self.adoptable - {ref}
        for ref in new_refs:
            if self.by_ref.get(ref) != case_id:
                self.by_ref = self.by_ref.set(ref, case_id)
                if ref in self.orphans:
                    self.adoptable = self.adoptable | {ref}
        old_nip = before.person.nip if before else None
        new_nip = after.person.nip if after else None
        if old_nip != new_nip and old_nip is not None:
            rest = tuple(c for c in self.by_nip.get(old_nip, ()) if c != case_id)
            self.by_nip = self.by_nip.set(old_nip, rest) if rest else self.by_nip.delete(old_nip)
            self._refresh_person(old_nip)
        if new_nip is not None and after is not None:
            ids = self.by_nip.get(new_nip, ())
            if case_id not in ids:
                self.by_nip = self.by_nip.set(new_nip, tuple(sorted((*ids, case_id))))
            if old_nip != new_nip or before is None or before.person != after.person:
                self._refresh_person(new_nip, after)
        old_kind = _kind_of(before) if before and before.person.nip is None else None
        new_kind = _kind_of(after) if after and after.person.nip is None else None
        if old_kind != new_kind:
            if old_kind is not None:
                rest = tuple(c for c in self.nameless_by_kind.get(old_kind, ()) if c != case_id)
                self.nameless_by_kind = (self.nameless_by_kind.set(old_kind, rest) if rest
                                         else self.nameless_by_kind.delete(old_kind))
            if new_kind is not None:
                ids = self.nameless_by_kind.get(new_kind, ())
                self.nameless_by_kind = self.nameless_by_kind.set(
                    new_kind, tuple(sorted((*ids, case_id))))
        if after is not None and new_nip is None:
            if before is None or before.person != after.person or case_id not in self.nameless:
                self.nameless = self.nameless.set(case_id, known_person(
                    after.person, key=f"case:{case_id}", region_code=after.region_code,
                    case_ids=(case_id,)))
        elif case_id in self.nameless:
            self.nameless = self.nameless.delete(case_id)

    def _refresh_person(self, nip: str, latest: CaseRecord | None = None) -> None:
        ids = self.by_nip.get(nip, ())
        if not ids:
            self.persons = self.persons.delete(nip)
            return
        record = latest or max((self.cases[i] for i in ids),
                               key=lambda r: (r.updated_at, r.case_id))
        self.persons = self.persons.set(nip, known_person(
            record.person, key=nip, region_code=record.region_code, case_ids=ids))


_WEEK = 7  # days per bucket of nameless_by_kind; any size works, the window picks the buckets


def _kind(election: str, violation_type: str, incident_date: date) -> str:
    return f"{election}:{violation_type}:{incident_date.toordinal() // _WEEK}"


def _kinds_near(election: str, violation_type: str, incident_date: date,
                window_days: int) -> list[str]:
    """The buckets of every incident date within ``window_days`` of ``incident_date``."""
    day = incident_date.toordinal()
    return [f"{election}:{violation_type}:{week}"
            for week in range((day - window_days) // _WEEK, (day + window_days) // _WEEK + 1)]


def _kind_of(case: CaseRecord) -> str:
    return _kind(case.election.value, case.violation_type.value, case.incident_date)


def nameless_by_kind(cases: Iterable[CaseRecord]) -> PMap[tuple[str, ...]]:
    """The index of cases without a NIP, built from scratch (a snapshot of format 1 kept it
    by kind alone)."""
    index: dict[str, list[str]] = {}
    for case in cases:
        if case.person.nip is None:
            index.setdefault(_kind_of(case), []).append(case.case_id)
    return PMap({k: tuple(sorted(v)) for k, v in index.items()})


def deadline_index(cases: Iterable[CaseRecord]) -> PMap[tuple[str, ...]]:
    """``CaseBook.by_deadline`` built from scratch (a snapshot's reader)."""
    index: dict[str, list[str]] = {}
    for case in cases:
        if case.next_deadline is not None:
            index.setdefault(case.next_deadline.isoformat(), []).append(case.case_id)
    return PMap({k: tuple(sorted(v)) for k, v in index.items()})


def _proportionality(case: CaseRecord, event: CanonicalEvent, policy: ElectionPolicy,
                     now: datetime) -> Outputs:
    """An alert when a recommendation is lighter than the policy's level for the violation."""
    assert event.recommendation is not None
    given = LEVEL_ORDER.get(event.recommendation.level)
    wanted_level = policy.recommended_level(case.violation_type)
    wanted = LEVEL_ORDER.get(wanted_level)
    if given is None or wanted is None or given >= wanted:
        return NONE
    return Outputs(alerts=(escalation.case_alert(
        case, "recommendation.below-policy", Severity.INFO,
        f"Recommendation lighter than policy for {case.violation_type}",
        f"{event.event_id} recommends {event.recommendation.level} for "
        f"{case.violation_type}; the proportionality table says {wanted_level}.", now,
        event.event_id),))


__all__ = [
    "CaseBook",
    "CaseLog",
    "DeadLetter",
    "InvalidReview",
    "InvalidTransition",
    "Outputs",
    "Trigger",
    "batch_outputs",
    "case_id_for",
    "handle_event",
    "handle_order_result",
    "handle_review",
    "scan_deadlines",
]
