"""Merging events into a case: precedence, versions and times, and arrival order not mattering."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.models import (
    CanonicalEvent,
    CaseRecord,
    CaseState,
    EscalationStep,
    EventType,
    SanctionLevel,
)
from streams.rules.cases import CaseBook, handle_event
from streams.rules.merge import same_content
from tests.unit.test_rules_factories import (
    CAL,
    NIP_A,
    NIP_B,
    PEMILU,
    POLICIES,
    at,
    escalated,
    person,
    recommended,
    report,
    review,
    sanctioned,
    verified,
)

pytestmark = pytest.mark.unit

T0 = at("2024-04-01")
NOW = at("2024-12-20")
REF2 = "0002/Reg/LP/PB/32.73/04/2024"


def run(events: list[CanonicalEvent], *, now_step: timedelta = timedelta(0)
        ) -> tuple[CaseBook, CaseRecord]:
    book, now = CaseBook(), NOW
    for event in events:
        book, _ = handle_event(book, event, now, CAL, POLICIES)
        now += now_step
    (case,) = book.cases.values()
    return book, case


def d(days: float) -> datetime:
    return T0 + timedelta(days=days)


# -- precedence ----------------------------------------------------------------------------------


def test_bkn_nip_wins_over_a_report_without_one_and_indexes_follow() -> None:
    book, case = run([
        report("r1", T0, who=person(nip=None, name="Siti Rahmawati")),
        review("r1:f", d(1), EventType.REVIEW_FORWARDED),
        verified("v1", d(2), nip=NIP_B),
    ])
    assert case.person.nip == NIP_B and case.person.name == "Siti Rahmawati"
    assert book.by_nip[NIP_B] == (case.case_id,) and NIP_B in book.persons
    assert not book.nameless


def test_ppk_agency_code_wins_over_a_later_public_report() -> None:
    later = report("r2", d(30), ref=REF2, incident=T0.date(),
                   who=person().model_copy(update={"agency_code": "PUBLIC-GUESS",
                                                   "agency_name": "Pemkot Bandung"}))
    _, case = run([
        report("r1", T0), review("r1:f", d(1), EventType.REVIEW_FORWARDED),
        recommended("rec", d(2)), sanctioned("s", d(20)), later,
    ])
    assert case.person.agency_code == "A5"  # the PPK's, rank above Bawaslu
    assert case.person.agency_name == "Pemkot Bandung"  # Bawaslu vs Bawaslu: the latest wins


def test_imposed_level_wins_over_recommended_and_ppk_over_bkn() -> None:
    _, case = run([
        report("r1", T0), review("r1:f", d(1), EventType.REVIEW_FORWARDED),
        recommended("rec", d(2), level=SanctionLevel.BERAT),
    ])
    assert case.level is SanctionLevel.BERAT and case.ppk_name == "Wali Kota Bandung"
    _, case = run([
        report("r1", T0), review("r1:f", d(1), EventType.REVIEW_FORWARDED),
        recommended("rec", d(2), level=SanctionLevel.BERAT),
        sanctioned("s", d(9)),
    ])
    assert case.level is SanctionLevel.SEDANG  # the PPK imposed sedang


def test_lighter_recommendation_than_policy_raises_an_info_alert() -> None:
    book, _ = run([report("r1", T0), review("r1:f", d(1), EventType.REVIEW_FORWARDED)])
    _, out = handle_event(book, recommended("rec", d(2), level=SanctionLevel.RINGAN),
                          NOW, CAL, POLICIES)
    (alert,) = out.alerts
    assert alert.rule == "recommendation.below-policy" and "SEDANG" in alert.detail


# -- versions and times --------------------------------------------------------------------------


def test_version_counts_changes_and_updated_at_never_goes_back() -> None:
    book, out1 = handle_event(CaseBook(), report("r1", T0), NOW, CAL, POLICIES)
    earlier = NOW - timedelta(days=1)
    book, out2 = handle_event(book, review("r1:f", d(1), EventType.REVIEW_FORWARDED),
                              earlier, CAL, POLICIES)
    (v1,), (v2,) = out1.cases, out2.cases
    assert (v1.version, v2.version) == (1, 2)
    assert v1.opened_at == T0 and v1.updated_at == NOW
    assert v2.updated_at == NOW  # a clock that went back does not make the record older
    (t,) = out2.transitions
    assert t.version == 2 and t.cause_event_id == "bawaslu:r1:f" and t.at == d(1)


def test_opened_at_is_the_earliest_report_even_when_it_arrives_second() -> None:
    first = report("r1", T0)
    late_dup = report("r0", T0 - timedelta(days=2), ref=REF2)
    _, case = run([first, late_dup])
    assert case.opened_at == late_dup.occurred_at
    assert case.sources[0].event_id == "bawaslu:r0"  # sources in event-time order


# -- arrival order does not matter ---------------------------------------------------------------


def pilkada_history() -> list[CanonicalEvent]:
    return [
        report("r1", T0, evidence=("https://x/1",)),
        review("r1:f", d(1), EventType.REVIEW_FORWARDED),
        verified("v1", d(3)),
        recommended("rec", d(5)),
        escalated("w", d(40), EscalationStep.WARNING),
        escalated("t", d(47), EscalationStep.REPRIMAND),
        escalated("b", d(54), EscalationStep.BLOCK),
        sanctioned("s", d(60)),
        escalated("u", d(61), EscalationStep.UNBLOCK),
    ]


def pemilu_history() -> list[CanonicalEvent]:
    return [
        report("r1", T0, election=PEMILU),
        verified("v1", d(3), election=PEMILU),
        verified("v2", d(4), election=PEMILU),  # a second KASN letter
        recommended("rec", d(5), election=PEMILU),
        escalated("w", d(40), EscalationStep.WARNING, election=PEMILU),
        sanctioned("s", d(45), election=PEMILU),
    ]


@pytest.mark.parametrize("history", [pilkada_history, pemilu_history])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_permutations_of_a_valid_history_give_the_same_record(
        history: Callable[[], list[CanonicalEvent]], data: st.DataObject) -> None:
    events = history()
    _, expected = run(events)
    order = data.draw(st.permutations(events))
    step = data.draw(st.sampled_from([timedelta(0), timedelta(minutes=7)]))
    _, case = run(list(order), now_step=step)
    assert same_content(case, expected)


def test_in_order_history_reaches_closed() -> None:
    _, case = run(pilkada_history())
    assert case.state is CaseState.CLOSED and not case.blocked
    assert case.person.nip == NIP_A and len(case.sources) == 9
