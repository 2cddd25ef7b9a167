"""purge: the cases stage's side of ``netral purge``: ``(book, command) -> (book, out)``.

``netral purge --older-than`` cleans the SQL national record and sends a :class:`PurgeCommand`
to ``netral.commands.purge``. The stage applies it here: every case that is over (a closed
state, nothing still owed on it: not blocked, no deadline) and was last updated before the
cutoff is republished scrubbed (:func:`schemas.privacy.scrub_case`: no NIP, name, position title,
match details or evidence; state, election, region, agency, violation type and dates stay) as
a new version, so compaction of ``netral.cases`` drops the old value with the person in it.

The book forgets the person too: the case leaves the NIP and name-matching indexes (a new report
is never matched to a purged person) and its log (the events it was folded from) is dropped, so
nothing can fold the person back into it. A purged case is thus a record without a log
(:func:`is_purged`): a later input about it is refused (the stage sends it to the DLQ) rather
than reopening it. Deterministic, no clock: the journal replays a purge to the same book.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from schemas.models import CaseRecord, PurgeCommand
from schemas.privacy import CLOSED_STATES, is_scrubbed, scrub_case

from .cases import CaseBook, Outputs
from .matching import known_person

NONE = Outputs()


def purgeable(case: CaseRecord, older_than: datetime) -> bool:
    """Whether a purge with this cutoff removes the case's person (and has not already)."""
    return (case.state in CLOSED_STATES and case.updated_at < older_than and not case.blocked
            and case.next_deadline is None and not is_scrubbed(case))


def is_purged(book: CaseBook, case_id: str) -> bool:
    """A case whose person was purged: still counted, never folded again."""
    return case_id in book.cases and case_id not in book.logs


def handle_purge(book: CaseBook, command: PurgeCommand) -> tuple[CaseBook, Outputs]:
    """Scrub every purgeable case; returns the new book and the scrubbed records to publish.

    Applying the same command again (a redelivery) or a second purge with the same cutoff
    changes nothing and publishes nothing.
    """
    if command.command_id in book.commands:
        return book, NONE
    targets = sorted(c for c, case in book.cases.items() if purgeable(case, command.older_than))
    cases, logs, by_nip, nameless, by_kind = (book.cases, book.logs, book.by_nip, book.nameless,
                                              book.nameless_by_kind)
    published: list[CaseRecord] = []
    nips: set[str] = set()
    for case_id in targets:
        before = cases[case_id]
        after = scrub_case(before).model_copy(update={"version": before.version + 1})
        cases = cases.set(case_id, after)
        logs = logs.delete(case_id)
        if before.person.nip is not None:
            nip = before.person.nip
            rest = tuple(c for c in by_nip.get(nip, ()) if c != case_id)
            by_nip = by_nip.set(nip, rest) if rest else by_nip.delete(nip)
            nips.add(nip)
        nameless = nameless.delete(case_id)
        for kind, ids in list(by_kind.items()):
            if case_id in ids:
                rest = tuple(c for c in ids if c != case_id)
                by_kind = by_kind.set(kind, rest) if rest else by_kind.delete(kind)
        published.append(after)
    persons = book.persons
    for nip in sorted(nips):  # the person as the remaining cases know them, or gone
        ids = by_nip.get(nip, ())
        if not ids:
            persons = persons.delete(nip)
            continue
        latest = max((cases[i] for i in ids), key=lambda r: (r.updated_at, r.case_id))
        persons = persons.set(nip, known_person(latest.person, key=nip,
                                                region_code=latest.region_code, case_ids=ids))
    new = replace(book, cases=cases, logs=logs, by_nip=by_nip, persons=persons,
                  nameless=nameless, nameless_by_kind=by_kind,
                  commands=book.commands | {command.command_id})
    return new, Outputs(cases=tuple(published))
