"""The case state machine of both 2024 regimes: every row of the table, every state x event
through the entry point (applied, parked or rejected), and the domain's flows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import InvalidMessage
from schemas.models import (
    CanonicalEvent,
    CaseState,
    Election,
    EscalationStep,
    EventType,
    PolicyRegime,
)
from streams.rules.cases import CaseBook, handle_event
from streams.rules.lifecycle import (
    INITIAL,
    NAMESPACE,
    TABLES,
    InvalidTransition,
    Trigger,
    can_wait,
    next_state,
    stable_id,
)
from tests.unit.test_rules_factories import (
    CAL,
    PEMILU,
    PILKADA,
    POLICIES,
    at,
    escalated,
    recommended,
    report,
    review,
    sanctioned,
    verified,
)

if TYPE_CHECKING:
    from streams.rules.stored import StoredEvent

pytestmark = pytest.mark.unit

S, T = CaseState, Trigger
NOW = at("2024-12-20")

# The table as the domain describes it, written out by hand (the module builds it from rows).
Row = tuple[CaseState | None, Trigger]
TAIL: dict[Row, CaseState] = {
    (S.RECOMMENDED, T.RECOMMEND): S.RECOMMENDED,
    (S.RECOMMENDED, T.WARNING): S.PERINGATAN,
    (S.PERINGATAN, T.WARNING): S.PERINGATAN,
    (S.PERINGATAN, T.REPRIMAND): S.TEGURAN,
    (S.TEGURAN, T.WARNING): S.TEGURAN,
    (S.TEGURAN, T.REPRIMAND): S.TEGURAN,
    (S.TEGURAN, T.BLOCK): S.BLOCKED,
    (S.BLOCKED, T.WARNING): S.BLOCKED,
    (S.BLOCKED, T.REPRIMAND): S.BLOCKED,
    (S.BLOCKED, T.BLOCK): S.BLOCKED,
    (S.RECOMMENDED, T.SANCTION): S.SANCTIONED,
    (S.PERINGATAN, T.SANCTION): S.SANCTIONED,
    (S.TEGURAN, T.SANCTION): S.SANCTIONED,
    (S.BLOCKED, T.SANCTION): S.SANCTIONED,
    (S.SANCTIONED, T.SANCTION): S.SANCTIONED,
    (S.SANCTIONED, T.UNBLOCK): S.CLOSED,
    (S.CLOSED, T.SANCTION): S.CLOSED,
    (S.CLOSED, T.UNBLOCK): S.CLOSED,
}
EXPECTED: dict[PolicyRegime, dict[Row, CaseState]] = {
    PolicyRegime.KASN_2024: {
        (None, T.REPORT): S.REPORTED,
        (None, T.REPORT_HELD): S.NEEDS_REVIEW,
        (S.NEEDS_REVIEW, T.REVIEW_RESOLVED): S.REPORTED,
        (S.REPORTED, T.PROVEN): S.UNDER_VERIFICATION,
        (S.UNDER_VERIFICATION, T.PROVEN): S.UNDER_VERIFICATION,
        (S.REPORTED, T.NOT_PROVEN): S.NOT_PROVEN,
        (S.UNDER_VERIFICATION, T.NOT_PROVEN): S.NOT_PROVEN,
        (S.REPORTED, T.RECOMMEND): S.RECOMMENDED,
        (S.UNDER_VERIFICATION, T.RECOMMEND): S.RECOMMENDED,
        (S.REPORTED, T.CANCEL): S.CANCELLED,
        (S.REPORTED, T.REJECT): S.REJECTED,
        **TAIL,
    },
    PolicyRegime.SATGAS_2024: {
        (None, T.REPORT): S.UNDER_BAWASLU_REVIEW,
        (None, T.REPORT_HELD): S.NEEDS_REVIEW,
        (S.NEEDS_REVIEW, T.REVIEW_RESOLVED): S.UNDER_BAWASLU_REVIEW,
        (S.UNDER_BAWASLU_REVIEW, T.FORWARD): S.UNDER_VERIFICATION,
        (S.UNDER_BAWASLU_REVIEW, T.CANCEL): S.CANCELLED,
        (S.UNDER_BAWASLU_REVIEW, T.REJECT): S.REJECTED,
        (S.UNDER_BAWASLU_REVIEW, T.PROVEN): S.UNDER_BAWASLU_REVIEW,
        (S.UNDER_BAWASLU_REVIEW, T.NOT_PROVEN): S.NOT_PROVEN,
        (S.UNDER_VERIFICATION, T.PROVEN): S.UNDER_VERIFICATION,
        (S.UNDER_VERIFICATION, T.NOT_PROVEN): S.NOT_PROVEN,
        (S.UNDER_VERIFICATION, T.RECOMMEND): S.RECOMMENDED,
        **TAIL,
    },
}


@pytest.mark.parametrize("regime", list(PolicyRegime))
def test_table_is_exactly_the_documented_one(regime: PolicyRegime) -> None:
    table = dict(TABLES[regime])
    # A second report of the same incident joins in any state and moves nothing.
    for state in CaseState:
        assert table.pop((state, T.REPORT)) is state
    assert table == EXPECTED[regime]


def test_initial_states() -> None:
    assert INITIAL[PolicyRegime.KASN_2024] is S.REPORTED
    assert INITIAL[PolicyRegime.SATGAS_2024] is S.UNDER_BAWASLU_REVIEW


def test_unblock_needs_a_block() -> None:
    regime = PolicyRegime.SATGAS_2024
    assert next_state(regime, S.SANCTIONED, T.UNBLOCK, blocked=False) is None
    assert next_state(regime, S.SANCTIONED, T.UNBLOCK, blocked=True) is S.CLOSED
    assert can_wait(regime, S.SANCTIONED, T.UNBLOCK)  # an older BLOCK may still arrive


# -- every state x event through handle_event ---------------------------------------------------

Recipe = list[Callable[[datetime], CanonicalEvent]]
D0 = at("2024-04-01")


def _at(i: int) -> datetime:
    return D0 + timedelta(days=i)


def _recipes(el: Election) -> dict[str, Recipe]:
    rep: Recipe = [lambda t: report("r1", t, election=el)]
    cancel: Recipe = [*rep, lambda t: review("r1:c", t, EventType.CASE_CANCELLED, election=el)]
    reject: Recipe = [*rep, lambda t: review("r1:r", t, EventType.CASE_REJECTED, election=el)]
    if el is PILKADA:
        start = [*rep, lambda t: review("r1:fwd", t, EventType.REVIEW_FORWARDED)]
        first = {"UNDER_BAWASLU_REVIEW": rep, "CANCELLED": cancel, "REJECTED": reject}
    else:
        start = rep
        first = {"REPORTED": rep, "CANCELLED": cancel, "REJECTED": reject}
    verif = [*start, lambda t: verified("v1", t, election=el)]
    rec = [*verif, lambda t: recommended("rec1", t, election=el)]
    warn = [*rec, lambda t: escalated("w1", t, EscalationStep.WARNING, election=el)]
    repr_ = [*warn, lambda t: escalated("t1", t, EscalationStep.REPRIMAND, election=el)]
    block = [*repr_, lambda t: escalated("b1", t, EscalationStep.BLOCK, election=el)]
    return {
        **first,
        "UNDER_VERIFICATION": verif,
        "NOT_PROVEN": [*start, lambda t: verified("v0", t, False, election=el)],
        "RECOMMENDED": rec,
        "PERINGATAN": warn,
        "TEGURAN": repr_,
        "BLOCKED": block,
        "SANCTIONED": [*rec, lambda t: sanctioned("s1", t, election=el)],
        "SANCTIONED_BLOCKED": [*block, lambda t: sanctioned("s1", t, election=el)],
        "CLOSED": [*block, lambda t: sanctioned("s1", t, election=el),
                   lambda t: escalated("u1", t, EscalationStep.UNBLOCK, election=el)],
    }


def _probes(el: Election) -> dict[Trigger, Callable[[datetime], CanonicalEvent]]:
    return {
        T.REPORT: lambda t: report("r2", t, election=el),
        T.FORWARD: lambda t: review("p:fwd", t, EventType.REVIEW_FORWARDED, election=el),
        T.CANCEL: lambda t: review("p:c", t, EventType.CASE_CANCELLED, election=el),
        T.REJECT: lambda t: review("p:r", t, EventType.CASE_REJECTED, election=el),
        T.PROVEN: lambda t: verified("p:v", t, election=el),
        T.NOT_PROVEN: lambda t: verified("p:nv", t, False, election=el),
        T.RECOMMEND: lambda t: recommended("p:rec", t, election=el),
        T.WARNING: lambda t: escalated("p:w", t, EscalationStep.WARNING, election=el),
        T.REPRIMAND: lambda t: escalated("p:t", t, EscalationStep.REPRIMAND, election=el),
        T.BLOCK: lambda t: escalated("p:b", t, EscalationStep.BLOCK, election=el),
        T.SANCTION: lambda t: sanctioned("p:s", t, election=el),
        T.UNBLOCK: lambda t: escalated("p:u", t, EscalationStep.UNBLOCK, election=el),
    }


def _build(recipe: Recipe) -> CaseBook:
    book = CaseBook()
    for i, make in enumerate(recipe):
        book, _ = handle_event(book, make(_at(i)), NOW, CAL, POLICIES)
    return book


CASES = [(el, name, trig) for el in (PEMILU, PILKADA) for name in _recipes(el)
         for trig in _probes(el)]


@pytest.mark.parametrize(("election", "state_name", "trigger"), CASES,
                         ids=[f"{e.value}-{s}-{t.value}" for e, s, t in CASES])
def test_every_state_x_event(election: Election, state_name: str, trigger: Trigger) -> None:
    recipe = _recipes(election)[state_name]
    book = _build(recipe)
    (case,) = book.cases.values()
    assert case.state.value == state_name.removesuffix("_BLOCKED")
    regime = POLICIES[election].regime
    event = _probes(election)[trigger](_at(len(recipe) + 1))
    target = next_state(regime, case.state, trigger, blocked=case.blocked)
    if target is not None:
        after, out = handle_event(book, event, NOW, CAL, POLICIES)
        assert after.cases[case.case_id].state is target
        assert out.transitions[-1].to_state is target
        assert after.cases[case.case_id].version == case.version + 1
    elif can_wait(regime, case.state, trigger):
        after, out = handle_event(book, event, NOW, CAL, POLICIES)
        assert not out  # parked: waits for an older event, publishes nothing
        assert after.cases[case.case_id] == case
        # here only events are parked (Entry also covers the hub's own steps, without event_id)
        assert event.event_id in {cast("CanonicalEvent | StoredEvent", p).event_id
                                  for p in after.logs[case.case_id].fold.parked}
    else:
        with pytest.raises(InvalidTransition) as err:
            handle_event(book, event, NOW, CAL, POLICIES)
        assert isinstance(err.value, InvalidMessage)  # goes to the DLQ
        text = str(err.value)
        assert case.case_id in text and case.state.value in text and trigger.value in text
        assert event.event_id in text
        assert event.event_id not in book.seen  # the case is untouched


# -- the domain's flows, state by state ----------------------------------------------------------


def _states(events: list[CanonicalEvent]) -> list[CaseState]:
    book, seen = CaseBook(), []
    for event in events:
        book, _ = handle_event(book, event, NOW, CAL, POLICIES)
        (case,) = book.cases.values()
        seen.append(case.state)
    return seen


def test_pemilu_kasn_flow() -> None:
    assert _states([
        report("r1", _at(0), election=PEMILU), verified("v1", _at(1), election=PEMILU),
        recommended("rec1", _at(2), election=PEMILU), sanctioned("s1", _at(20), election=PEMILU),
    ]) == [S.REPORTED, S.UNDER_VERIFICATION, S.RECOMMENDED, S.SANCTIONED]


def test_pemilu_not_proven_closes_the_case() -> None:
    assert _states([report("r1", _at(0), election=PEMILU),
                    verified("v1", _at(1), False, election=PEMILU)]) == [S.REPORTED, S.NOT_PROVEN]


def test_pemilu_recommendation_without_separate_verification() -> None:
    assert _states([report("r1", _at(0), election=PEMILU),
                    recommended("rec1", _at(1), election=PEMILU)]) == [S.REPORTED, S.RECOMMENDED]


def test_pilkada_satgas_flow() -> None:
    assert _states([
        report("r1", _at(0)), review("r1:f", _at(1), EventType.REVIEW_FORWARDED),
        verified("v1", _at(2)), recommended("rec1", _at(3)), sanctioned("s1", _at(10)),
    ]) == [S.UNDER_BAWASLU_REVIEW, S.UNDER_VERIFICATION, S.UNDER_VERIFICATION, S.RECOMMENDED,
           S.SANCTIONED]


def test_pilkada_satgas_may_verify_before_bawaslu_reviews() -> None:
    assert _states([
        report("r1", _at(0)), verified("v1", _at(1)),
        review("r1:f", _at(2), EventType.REVIEW_FORWARDED), recommended("rec1", _at(3)),
    ]) == [S.UNDER_BAWASLU_REVIEW, S.UNDER_BAWASLU_REVIEW, S.UNDER_VERIFICATION, S.RECOMMENDED]


@pytest.mark.parametrize(("outcome", "state"), [(EventType.CASE_REJECTED, S.REJECTED),
                                                (EventType.CASE_CANCELLED, S.CANCELLED)])
def test_pilkada_bawaslu_review_ends_the_case(outcome: EventType, state: CaseState) -> None:
    assert _states([report("r1", _at(0)), review("r1:x", _at(1), outcome)]) == [
        S.UNDER_BAWASLU_REVIEW, state]


def test_blocked_then_sanctioned_then_unblocked_closes() -> None:
    assert _states([
        report("r1", _at(0)), review("r1:f", _at(1), EventType.REVIEW_FORWARDED),
        recommended("rec1", _at(2)), escalated("w", _at(20), EscalationStep.WARNING),
        escalated("t", _at(27), EscalationStep.REPRIMAND),
        escalated("b", _at(34), EscalationStep.BLOCK), sanctioned("s", _at(40)),
        escalated("u", _at(41), EscalationStep.UNBLOCK),
    ])[-4:] == [S.TEGURAN, S.BLOCKED, S.SANCTIONED, S.CLOSED]


def test_impossible_transition_message_names_state_event_and_case() -> None:
    book = _build(_recipes(PILKADA)["NOT_PROVEN"])
    (case,) = book.cases.values()
    event = recommended("late-rec", _at(9))
    with pytest.raises(InvalidTransition, match=r"NOT_PROVEN \+ recommended") as err:
        handle_event(book, event, NOW, CAL, POLICIES)
    assert f"case {case.case_id}" in str(err.value)
    assert "bkn:late-rec" in str(err.value)


def test_review_forwarded_does_not_exist_under_kasn() -> None:
    book = _build(_recipes(PEMILU)["REPORTED"])
    with pytest.raises(InvalidTransition, match="KASN_2024"):
        handle_event(book, review("r1:f", _at(1), EventType.REVIEW_FORWARDED, election=PEMILU),
                     NOW, CAL, POLICIES)


def test_event_that_waits_for_an_older_one_is_parked_then_applied() -> None:
    book = _build([lambda t: report("r1", t)])
    book, out = handle_event(book, recommended("rec1", _at(5)), NOW, CAL, POLICIES)
    assert not out  # UNDER_BAWASLU_REVIEW + recommended: the forwarding is still to come
    book, out = handle_event(book, review("r1:f", _at(2), EventType.REVIEW_FORWARDED), NOW, CAL,
                             POLICIES)
    (case,) = book.cases.values()
    assert case.state is S.RECOMMENDED
    assert [t.to_state for t in out.transitions] == [S.UNDER_VERIFICATION, S.RECOMMENDED]


def test_late_event_that_contradicts_the_record_is_rejected_and_case_untouched() -> None:
    book = _build(_recipes(PILKADA)["RECOMMENDED"])
    (case,) = book.cases.values()
    late = verified("v-late", _at(2) + timedelta(hours=5), False)  # before the recommendation
    with pytest.raises(InvalidTransition, match="would make entry bkn:rec1 impossible"):
        handle_event(book, late, NOW, CAL, POLICIES)
    assert book.cases[case.case_id] == case


def test_bawaslu_outcome_for_a_secondary_register_number_does_not_end_the_case() -> None:
    book = _build(_recipes(PILKADA)["UNDER_VERIFICATION"])
    dup = report("r2", _at(3), ref="0002/Reg/LP/PB/32.73/10/2024")
    book, _ = handle_event(book, dup, NOW, CAL, POLICIES)
    rejected = review("r2:r", _at(4), EventType.CASE_REJECTED, ref="0002/Reg/LP/PB/32.73/10/2024")
    book, out = handle_event(book, rejected, NOW, CAL, POLICIES)
    (case,) = book.cases.values()
    assert case.state is S.UNDER_VERIFICATION
    assert out.transitions[0].rule == "bawaslu.case_rejected.info"


@given(st.lists(st.one_of(st.text(), st.integers(), st.none()), min_size=1, max_size=4))
def test_stable_id_is_uuid5_of_the_joined_parts(parts: list[object]) -> None:
    """The hand-rolled uuid5 gives exactly the standard library's: ids already on topics,
    in SIASN and in the database stay the same."""
    expected = str(uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts)))
    assert stable_id(*parts) == expected
