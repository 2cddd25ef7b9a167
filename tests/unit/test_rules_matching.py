"""Dedupe, cross-agency joining, name-only matching and operators' review decisions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.models import (
    CanonicalEvent,
    CaseState,
    EventType,
    Position,
    ReviewAction,
    ReviewDecision,
    ViolationType,
)
from streams.rules.cases import CaseBook, InvalidReview, Outputs, handle_event, handle_review
from streams.rules.dedupe import CaseMismatch
from streams.rules.matching import (
    Decision,
    KnownPerson,
    known_person,
    match_person,
    normalise_agency,
    normalise_name,
)
from streams.rules.merge import same_content
from tests.unit.test_rules_factories import (
    CAL,
    NIP_A,
    NIP_B,
    PEMILU,
    PILKADA,
    POLICIES,
    REF,
    at,
    person,
    recommended,
    report,
    review,
    verified,
)

pytestmark = pytest.mark.unit

NOW = at("2024-12-20")
T0 = at("2024-10-01")
REF2 = "0002/Reg/LP/PB/32.73/10/2024"
REF3 = "0003/Reg/LP/PB/32.73/10/2024"
THRESHOLDS = POLICIES[PILKADA].match


def feed(*events: CanonicalEvent, book: CaseBook | None = None
         ) -> tuple[CaseBook, list[Outputs]]:
    book = book or CaseBook()
    outs = []
    for event in events:
        book, out = handle_event(book, event, NOW, CAL, POLICIES)
        outs.append(out)
    return book, outs


# -- exact and cross-agency dedupe ---------------------------------------------------------------


def test_duplicate_event_changes_nothing() -> None:
    event = report("r1", T0, evidence=("https://bawaslu.example/e/1",))
    book, _ = feed(event)
    again, out = handle_event(book, event, NOW, CAL, POLICIES)
    assert again is book and not out


def test_cross_agency_duplicate_by_nip_joins_the_case() -> None:
    first = report("r1", T0, evidence=("https://x/1", "https://x/2"))
    dup = report("r2", T0 + timedelta(days=2), ref=REF2, evidence=("https://x/2", "https://x/3"),
                 incident=(T0 - timedelta(days=3)).date())
    book, outs = feed(first, dup)
    (case,) = book.cases.values()
    assert case.case_refs == (REF, REF2)
    assert [s.event_id for s in case.sources] == ["bawaslu:r1", "bawaslu:r2"]
    assert [e.uri for e in case.evidence] == ["https://x/1", "https://x/2", "https://x/3"]
    assert case.version == 2 and case.state is CaseState.UNDER_BAWASLU_REVIEW
    assert case.incident_date == first.incident_date  # the first report's incident stays
    (t,) = outs[1].transitions
    assert (t.from_state, t.to_state, t.rule) == (case.state, case.state, "bawaslu.reported")
    assert book.by_ref[REF2] == case.case_id


@pytest.mark.parametrize(("change", "why"), [
    ({"incident": (T0 + timedelta(days=20)).date()}, "outside the 14-day window"),
    ({"vtype": ViolationType.SOCIAL_MEDIA}, "another violation type"),
    ({"election": PEMILU}, "another election"),
])
def test_same_nip_but_another_incident_opens_a_new_case(change: dict[str, Any],
                                                        why: str) -> None:
    when = T0 + timedelta(days=25)
    book, _ = feed(report("r1", T0), report("r2", when, ref=REF2, **change))
    assert len(book.cases) == 2, why
    assert len(book.by_nip[NIP_A]) == 2


def test_decision_joins_by_register_number() -> None:
    book, _ = feed(report("r1", T0), review("r1:f", T0 + timedelta(days=1),
                                            EventType.REVIEW_FORWARDED))
    (case,) = book.cases.values()
    assert case.state is CaseState.UNDER_VERIFICATION


def test_register_number_of_another_election_is_bad_data() -> None:
    book, _ = feed(report("r1", T0))
    with pytest.raises(CaseMismatch, match="PILKADA_2024"):
        handle_event(book, verified("v1", T0 + timedelta(days=1), election=PEMILU), NOW, CAL,
                     POLICIES)


def test_decision_before_its_report_waits_and_joins_when_it_arrives() -> None:
    in_order, _ = feed(report("r1", T0), review("r1:f", T0 + timedelta(days=1),
                                                EventType.REVIEW_FORWARDED),
                       verified("v1", T0 + timedelta(days=2)))
    book, outs = feed(verified("v1", T0 + timedelta(days=2)),
                      review("r1:f", T0 + timedelta(days=1), EventType.REVIEW_FORWARDED))
    assert not book.cases and not any(outs) and set(book.orphans) == {REF}
    book, outs = feed(report("r1", T0), book=book)
    assert not book.orphans
    assert set(book.cases) == set(in_order.cases)
    assert all(same_content(book.cases[cid], c) for cid, c in in_order.cases.items())
    assert [c.state for c in outs[0].cases][-1] is CaseState.UNDER_VERIFICATION


def test_orphan_impossible_in_its_case_becomes_a_dead_letter() -> None:
    book, _ = feed(review("r1:r", T0 + timedelta(days=1), EventType.CASE_REJECTED),
                   recommended("rec", T0 + timedelta(days=3)))
    book, (out,) = feed(report("r1", T0), book=book)
    (case,) = book.cases.values()
    assert case.state is CaseState.REJECTED
    (dead,) = out.dead_letters
    assert dead.event.event_id == "bkn:rec" and "REJECTED + recommended" in dead.reason


# -- name-only matching --------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "norm"), [
    ("Drs. H. BUDI SANTOSO, M.Si", "budi santoso"),
    ("Ir. Siti Rahmawati S.Pd", "siti rahmawati"),
    ("Hj. Dewi  Lestari,S.Pd.,M.Pd", "dewi lestari"),
    ("H. Ahmad", "ahmad"),
    ("Nur Hidayat", "nur hidayat"),
])
def test_names_lose_titles_and_degrees(raw: str, norm: str) -> None:
    assert normalise_name(raw) == norm


def test_agency_abbreviations() -> None:
    assert normalise_agency("Pemkot Bandung") == normalise_agency("Pemerintah Kota BANDUNG")


def _known(nip: str, name: str) -> KnownPerson:
    return known_person(person(nip=nip, name=name), key=nip, region_code="32.73",
                        case_ids=(f"case-{nip}",))


def _query(name: str, agency: str = "Pemerintah Kota Bandung", region: str = "32.73",
           position: Position | None = Position.CAMAT_LURAH) -> KnownPerson:
    who = person(nip=None, name=name, agency=agency, region=region, position=position)
    return known_person(who, key="q", region_code=region, case_ids=())


@pytest.mark.parametrize(("name", "kw", "decision"), [
    ("Drs. H. BUDI SANTOSO, M.Si", {"agency": "Pemkot Bandung", "position": None},
     Decision.MERGE),
    ("Budi Santosa", {}, Decision.MERGE),  # a typo
    ("Budiman Santoso", {}, Decision.REVIEW),  # office agrees, the name not enough: review
    ("Budi Santoso", {"agency": "Pemerintah Kota Bogor", "region": "32.71"}, Decision.REVIEW),
    ("Budi Santoso", {"agency": "Pemerintah Kabupaten Aceh Selatan", "region": "11.01"},
     Decision.NEW),  # the same name in another province is someone else
    ("Rina Wijaya", {}, Decision.NEW),
])
def test_match_bands(name: str, kw: dict[str, Any], decision: Decision) -> None:
    match = match_person(_query(name, **kw), [_known(NIP_A, "Budi Santoso")], THRESHOLDS)
    assert match.decision is decision, match
    if decision is not Decision.NEW:
        assert match.candidates[0].nip == NIP_A and match.candidates[0].score == match.score
    if decision is Decision.MERGE:
        assert match.score >= THRESHOLDS.merge and "name" in match.matched_fields
        assert match.chosen is not None and match.chosen.nip == NIP_A


def test_two_close_candidates_are_never_merged_silently() -> None:
    twins = [_known(NIP_A, "Budi Santoso"), _known(NIP_B, "Budi Santoso")]
    match = match_person(_query("Budi Santoso"), twins, THRESHOLDS)
    assert match.score >= THRESHOLDS.merge
    assert match.decision is Decision.REVIEW and match.chosen is None
    assert {c.nip for c in match.candidates} == {NIP_A, NIP_B}


def test_more_groups_score_as_if_they_followed_the_pool() -> None:
    """The name-only matcher passes the known persons slot by slot (``more``): every decision,
    score and candidate order is the one of a single list, namesakes in several groups too."""
    people = [_known(NIP_A, "Budi Santoso"), _known(NIP_B, "Budi Santoso"),
              _known("199001012015031003", "Budi Santosa"),
              _known("199001012015031004", "Rina Wijaya"),
              _known("199001012015031005", "Budiman Santoso")]
    for name in ("Budi Santoso", "Budi Santosa", "Rina Wijaya", "Agus Salim"):
        whole = match_person(_query(name), people, THRESHOLDS)
        for cut in range(len(people) + 1):
            head, tail = people[:cut], people[cut:]
            parts = [(tail[i:i + 2], [p.name_words for p in tail[i:i + 2]])
                     for i in range(0, len(tail), 2)]
            assert match_person(_query(name), head, THRESHOLDS, more=parts) == whole
    assert match_person(_query("Budi Santoso"), [], THRESHOLDS, more=[([], [])]).decision \
        is Decision.NEW
    with pytest.raises(ValueError, match="1 names for 2 known persons"):
        match_person(_query("Budi Santoso"), [], THRESHOLDS,
                     more=[(people[:2], ["budi santoso"])])


def _name_only(sid: str, when: datetime, name: str = "Drs. H. BUDI SANTOSO, M.Si",
               ref: str = REF2) -> CanonicalEvent:
    return report(sid, when, ref=ref, who=person(nip=None, name=name, position=None))


def test_name_only_report_above_merge_joins_the_persons_case() -> None:
    book, _ = feed(report("r1", T0), _name_only("p1", T0 + timedelta(days=1)))
    (case,) = book.cases.values()
    assert len(case.sources) == 2 and case.person.nip == NIP_A
    assert case.match is not None and case.match.score == 1.0
    assert case.match.matched_fields == ("name", "agency", "region")


def test_name_only_report_above_merge_of_a_new_incident_gets_the_nip() -> None:
    other = _name_only("p1", T0 + timedelta(days=40), ref=REF3)
    book, _ = feed(report("r1", T0), other)
    assert len(book.cases) == 2
    new = next(c for c in book.cases.values() if REF3 in c.case_refs)
    assert new.person.nip == NIP_A and new.state is CaseState.UNDER_BAWASLU_REVIEW
    assert sorted(book.by_nip[NIP_A]) == sorted(book.cases)


def test_name_only_report_between_thresholds_goes_to_review_with_an_alert() -> None:
    book, outs = feed(report("r1", T0), _name_only("p1", T0 + timedelta(days=1),
                                                   name="Budiman Santoso"))
    held = next(c for c in book.cases.values() if c.state is CaseState.NEEDS_REVIEW)
    assert held.person.nip is None and held.match is not None
    (candidate,) = held.match.candidates
    assert candidate.nip == NIP_A and candidate.case_id != held.case_id
    (alert,) = outs[1].alerts
    assert alert.rule == "match.needs-review" and alert.case_id == held.case_id


def test_name_only_report_below_review_opens_a_new_case() -> None:
    book, outs = feed(report("r1", T0), _name_only("p1", T0 + timedelta(days=1),
                                                   name="Rina Wijaya"))
    assert len(book.cases) == 2 and not outs[1].alerts
    new = next(c for c in book.cases.values() if c.person.nip is None)
    assert new.state is CaseState.UNDER_BAWASLU_REVIEW and new.match is None


def test_ambiguous_name_only_report_is_held_not_merged() -> None:
    twin = report("r9", T0, ref=REF3, who=person(nip=NIP_B))
    book, _ = feed(report("r1", T0), twin, _name_only("p1", T0 + timedelta(days=1),
                                                      name="Budi Santoso"))
    held = next(c for c in book.cases.values() if c.state is CaseState.NEEDS_REVIEW)
    assert held.match is not None
    assert {c.nip for c in held.match.candidates} == {NIP_A, NIP_B}
    assert all(len(c.sources) == 1 for c in book.cases.values())  # nothing merged


def test_report_with_nip_joins_an_earlier_name_only_case_of_the_same_incident() -> None:
    book, _ = feed(_name_only("p1", T0, ref=REF2), report("r1", T0 + timedelta(days=1)))
    (case,) = book.cases.values()
    assert case.person.nip == NIP_A and case.case_refs == (REF2, REF)
    assert book.by_nip[NIP_A] == (case.case_id,) and not book.nameless


# -- review decisions ----------------------------------------------------------------------------


def _held_book() -> tuple[CaseBook, str, str]:
    book, _ = feed(report("r1", T0), _name_only("p1", T0 + timedelta(days=1),
                                                name="Budiman Santoso"))
    held = next(c for c in book.cases.values() if c.state is CaseState.NEEDS_REVIEW)
    other = next(c for c in book.cases.values() if c.case_id != held.case_id)
    return book, held.case_id, other.case_id


def _decision(action: ReviewAction, case_id: str, **kw: object) -> ReviewDecision:
    return ReviewDecision(command_id=f"cmd-{action}-{case_id[:8]}", case_id=case_id,
                          action=action, decided_by="operator-1", reason="checked by phone",
                          at=T0 + timedelta(days=3), **kw)


def test_review_merge_moves_the_events_and_tombstones_the_held_case() -> None:
    book, held, target = _held_book()
    decision = _decision(ReviewAction.MERGE, held, target_case_id=target)
    after, out = handle_review(book, decision, NOW, CAL, POLICIES)
    assert set(after.cases) == {target} and out.tombstones == (held,)
    merged = after.cases[target]
    assert [s.event_id for s in merged.sources] == ["bawaslu:r1", "bawaslu:p1"]
    assert after.by_ref[REF2] == target and after.seen["bawaslu:p1"] == target
    rules = {(t.case_id, t.rule) for t in out.transitions}
    assert rules == {(held, "review.merged-into"), (target, "review.merge")}
    assert handle_review(after, decision, NOW, CAL, POLICIES) == (after, type(out)())


def test_review_keep_separate_resumes_the_lifecycle_and_applies_parked_events() -> None:
    book, held, _ = _held_book()
    fwd = review("p1:f", T0 + timedelta(days=2), EventType.REVIEW_FORWARDED, ref=REF2)
    book, (out,) = feed(fwd, book=book)
    assert not out and book.cases[held].state is CaseState.NEEDS_REVIEW  # parked meanwhile
    decision = _decision(ReviewAction.SPLIT, held, event_ids=("bawaslu:p1",))
    after, out = handle_review(book, decision, NOW, CAL, POLICIES)
    case = after.cases[held]
    assert case.state is CaseState.UNDER_VERIFICATION
    assert [(t.from_state, t.to_state, t.rule) for t in out.transitions] == [
        (CaseState.NEEDS_REVIEW, CaseState.UNDER_BAWASLU_REVIEW, "review.kept-separate"),
        (CaseState.UNDER_BAWASLU_REVIEW, CaseState.UNDER_VERIFICATION,
         "bawaslu.review-forwarded"),
    ]


def test_review_split_moves_events_into_a_new_case() -> None:
    dup = report("r2", T0 + timedelta(days=1), ref=REF2)
    book, _ = feed(report("r1", T0), dup)
    (case,) = book.cases.values()
    decision = _decision(ReviewAction.SPLIT, case.case_id, event_ids=("bawaslu:r2",))
    after, out = handle_review(book, decision, NOW, CAL, POLICIES)
    assert len(after.cases) == 2
    new = next(c for c in after.cases.values() if c.case_id != case.case_id)
    assert [s.event_id for s in new.sources] == ["bawaslu:r2"] and new.version == 1
    assert [s.event_id for s in after.cases[case.case_id].sources] == ["bawaslu:r1"]
    assert after.by_ref[REF2] == new.case_id and after.by_ref[REF] == case.case_id
    assert {t.case_id for t in out.transitions} == {case.case_id, new.case_id}
    assert any(t.rule == "review.split" for t in out.transitions)


@pytest.mark.parametrize(("kw", "message"), [
    ({"event_ids": ("bawaslu:nope",)}, "has no event"),
    ({"event_ids": ("bawaslu:r1",)}, "leave case"),
])
def test_impossible_review_decisions_are_invalid(kw: dict[str, object], message: str) -> None:
    book, _ = feed(report("r1", T0, who=person(position=Position.JPT)))
    (case,) = book.cases.values()
    with pytest.raises(InvalidReview, match=message):
        handle_review(book, _decision(ReviewAction.SPLIT, case.case_id, **kw), NOW, CAL,
                      POLICIES)
