"""The cases stage's purge: closed, old cases lose their person (a new version on netral.cases),
the book forgets the person, counts stay, and a purge replays and repeats to the same book."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage
from schemas.models import (
    AvroRecord,
    CaseState,
    EventType,
    OrderAction,
    OrderOutcome,
    PurgeCommand,
    ReviewAction,
    ReviewDecision,
    SiasnOrderResult,
)
from schemas.privacy import REDACTED, scrub_case
from streams.rules.purge import handle_purge, is_purged, purgeable
from streams.rules.stage import CaseStage, InputKind, pack
from tests.unit.test_rules_factories import (
    CAL,
    NIP_A,
    NIP_B,
    POLICIES,
    at,
    person,
    recommended,
    report,
    review,
)

pytestmark = pytest.mark.unit
CODEC = AvroCodec()
REF_B = "0002/Reg/LP/PB/32.73/10/2024"
REF_C = "0003/Reg/LP/PB/32.73/11/2024"


def enc(record: AvroRecord) -> bytes:
    return CODEC.encode(record.avro_name, record.to_avro())


def purge(cutoff: str, command_id: str = "p1", when: str = "2025-06-01") -> PurgeCommand:
    return PurgeCommand(command_id=command_id, older_than=at(cutoff), issued_by="test",
                        at=at(when))


def inputs() -> list[tuple[InputKind, bytes]]:
    """A rejected case of NIP_A (closed 3 Oct 2024, evidence attached), an open recommended
    case of NIP_B, and a rejected name-only case."""
    events = [
        report("r1", at("2024-10-01"), who=person(NIP_A), evidence=("https://x.id/1",)),
        review("r1:x", at("2024-10-03"), EventType.CASE_REJECTED),
        report("r2", at("2024-10-01"), ref=REF_B, who=person(NIP_B, name="Siti Aminah")),
        review("r2:f", at("2024-10-02"), EventType.REVIEW_FORWARDED, ref=REF_B),
        recommended("rec2", at("2024-10-04"), ref=REF_B, nip=NIP_B),
        report("r3", at("2024-11-01"), ref=REF_C, who=person(None, name="Agus Salim")),
        review("r3:x", at("2024-11-02"), EventType.CASE_REJECTED, ref=REF_C),
    ]
    return [(InputKind.EVENT, enc(e)) for e in events]


def stage_with(items: list[tuple[InputKind, bytes]]) -> CaseStage:
    stage = CaseStage(CODEC, CAL, POLICIES)
    for kind, value in items:
        stage.take(kind, value)
    return stage


def by_nip(stage: CaseStage, nip: str) -> str:
    return next(c.case_id for c in stage.book.cases.values() if c.person.nip == nip)


def test_closed_old_cases_are_republished_without_the_person() -> None:
    stage = stage_with(inputs())
    closed_id = by_nip(stage, NIP_A)
    before = stage.book.cases[closed_id]
    assert before.state is CaseState.REJECTED and before.evidence
    states = Counter(c.state for c in stage.book.cases.values())
    out = stage.take(InputKind.PURGE, enc(purge("2025-01-01")))
    assert len(out.cases) == 2 and not out.transitions and not out.orders
    scrubbed = {c.case_id: c for c in out.cases}[closed_id]
    assert scrubbed.version == before.version + 1  # compaction keeps this one
    assert scrubbed.person.nip is None and scrubbed.person.name == REDACTED
    assert scrubbed.person.position_title is None and scrubbed.evidence == () and not scrubbed.match
    for field in ("state", "election", "region_code", "province_code", "violation_type",
                  "incident_date", "opened_at", "updated_at", "timeline"):
        assert getattr(scrubbed, field) == getattr(before, field), field
    assert scrubbed.person.agency_name == before.person.agency_name
    assert scrubbed.person.position is before.person.position
    assert scrubbed == scrub_case(before).model_copy(update={"version": before.version + 1})
    # the open case keeps its person; counts by state are unchanged
    assert stage.book.cases[by_nip(stage, NIP_B)].person.name == "Siti Aminah"
    assert Counter(c.state for c in stage.book.cases.values()) == states
    # the book forgot the person: no NIP index, no known person, no log to fold it back
    book = stage.book
    assert NIP_A not in book.by_nip and NIP_A not in book.persons
    assert is_purged(book, closed_id) and not is_purged(book, by_nip(stage, NIP_B))
    assert all("Agus" not in p.name for p in book.nameless.values())
    assert all(closed_id not in ids for ids in book.nameless_by_kind.values())


def test_only_cases_last_updated_before_the_cutoff_are_purged() -> None:
    stage = stage_with(inputs())
    out = stage.take(InputKind.PURGE, enc(purge("2024-10-15")))  # r3 closed on 2 Nov
    (only,) = out.cases
    assert only.case_refs == ("0001/Reg/LP/PB/32.73/10/2024",) and only.person.name == REDACTED
    assert [c for c in stage.book.cases if is_purged(stage.book, c)] == [only.case_id]


def test_a_purge_taken_again_or_repeated_changes_nothing() -> None:
    stage = stage_with(inputs())
    stage.take(InputKind.PURGE, enc(purge("2025-01-01")))
    book = stage.book
    assert not stage.take(InputKind.PURGE, enc(purge("2025-01-01")))  # redelivered
    assert not stage.take(InputKind.PURGE, enc(purge("2025-01-01", "p2", "2025-07-01")))
    assert stage.book.cases == book.cases and stage.book.by_nip == book.by_nip


def test_the_journal_replays_a_purge_to_the_same_book() -> None:
    items = [*inputs(), (InputKind.PURGE, enc(purge("2025-01-01")))]
    live = stage_with(items)
    rebuilt = CaseStage(CODEC, CAL, POLICIES)
    rebuilt.replay([pack(items[:4]), pack(items[4:])])
    assert rebuilt.book == live.book and rebuilt.clock == live.clock == at("2025-06-01")


def test_a_new_report_of_the_purged_person_opens_a_new_case() -> None:
    stage = stage_with([*inputs(), (InputKind.PURGE, enc(purge("2025-01-01")))])
    purged = [c for c in stage.book.cases if is_purged(stage.book, c)]
    assert purged
    out = stage.take(InputKind.EVENT, enc(report(
        "r9", at("2025-06-02"), ref="0009/Reg/LP/PB/32.73/06/2025", who=person(NIP_A))))
    (case,) = out.cases
    assert case.case_id not in purged and case.person.nip == NIP_A and case.version == 1


def test_inputs_about_a_purged_case_are_refused_or_ignored() -> None:
    stage = stage_with([*inputs(), (InputKind.PURGE, enc(purge("2025-01-01")))])
    closed_id = next(c for c in stage.book.cases if is_purged(stage.book, c)
                     and stage.book.cases[c].case_refs == ("0001/Reg/LP/PB/32.73/10/2024",))
    book = stage.book
    with pytest.raises(InvalidMessage):  # a late event on its register number: to the DLQ
        stage.take(InputKind.EVENT, enc(recommended("rec1", at("2025-06-02"))))
    decision = ReviewDecision(command_id="c1", case_id=closed_id, action=ReviewAction.SPLIT,
                              event_ids=("bawaslu:r1",), decided_by="op", reason="x",
                              at=at("2025-06-02"))
    with pytest.raises(InvalidMessage, match="purged"):
        stage.take(InputKind.REVIEW, enc(decision))
    result = SiasnOrderResult(order_id="o1", case_id=closed_id, nip=NIP_A,
                              action=OrderAction.UNBLOCK, outcome=OrderOutcome.ALREADY_IN_EFFECT,
                              at=at("2025-06-02"), attempts=1)
    assert not stage.take(InputKind.RESULT, enc(result))
    assert stage.book.cases == book.cases


def test_open_or_still_owed_cases_are_never_purgeable() -> None:
    stage = stage_with(inputs())
    open_case = stage.book.cases[by_nip(stage, NIP_B)]
    assert not purgeable(open_case, at("2099-01-01"))
    closed = stage.book.cases[by_nip(stage, NIP_A)]
    assert purgeable(closed, at("2025-01-01"))
    assert not purgeable(closed.model_copy(update={"blocked": True}), at("2025-01-01"))
    assert not purgeable(scrub_case(closed), at("2025-01-01"))  # already scrubbed


def test_the_pure_rule_leaves_the_given_book_untouched() -> None:
    stage = stage_with(inputs())
    book = stage.book
    cases = dict(book.cases.items())
    new, out = handle_purge(book, purge("2025-01-01"))
    assert out.cases and new is not book and dict(book.cases.items()) == cases


def test_a_purge_command_is_consistent_and_never_from_the_future() -> None:
    with pytest.raises(ValidationError, match="older_than"):
        purge("2025-07-01", when="2025-06-01")
    future = {"command_id": "p", "older_than": datetime(2024, 1, 1, tzinfo=UTC),
              "issued_by": "x", "at": datetime(2999, 1, 1, tzinfo=UTC)}
    with pytest.raises(InvalidMessage, match="future"):
        CaseStage(CODEC, CAL, POLICIES).take(InputKind.PURGE,
                                             CODEC.encode(PurgeCommand.avro_name, future))
