"""The entry point's book: persistent maps, events that are not about cases, replayability."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from schemas.errors import InvalidMessage
from schemas.models import (
    Agency,
    CaseState,
    EventType,
    MutationDetails,
    PolicyParameters,
    PolicyRegime,
    RegionalHeadRole,
    RegionalOfficial,
)
from streams.rules.cases import (
    CaseBook,
    Outputs,
    batch_outputs,
    case_id_for,
    handle_event,
    scan_deadlines,
)
from tests.unit.test_rules_factories import (
    CAL,
    NIP_B,
    PILKADA,
    POLICIES,
    _event,
    at,
    person,
    recommended,
    report,
    review,
    sanctioned,
    verified,
)

pytestmark = pytest.mark.unit

NOW = at("2024-12-20")


@pytest.mark.parametrize("event_type", [EventType.POLICY_UPDATED, EventType.MUTATION_REQUESTED])
def test_events_that_are_not_about_cases_change_nothing(event_type: EventType) -> None:
    if event_type is EventType.POLICY_UPDATED:
        event = _event(Agency.KEMENPANRB, "pu", event_type, at("2024-09-01"), PILKADA,
                       policy=PolicyParameters(regime=PolicyRegime.SATGAS_2024,
                                               effective_date=date(2024, 9, 1),
                                               ppk_deadline_working_days=14,
                                               warning_interval_working_days=5,
                                               reprimand_interval_working_days=5,
                                               decree_ref="SE 4/2024"))
    else:
        event = _event(Agency.KEMENDAGRI, "m1", event_type, at("2024-09-01"), PILKADA,
                       person=person(), region_code="32.73", mutation=MutationDetails(
                           request_id="m1", requesting_official=RegionalOfficial(
                               name="Pj Wali Kota", role=RegionalHeadRole.WALIKOTA, acting=True),
                           from_position="Camat", to_position="Staf Ahli",
                           requested_date=date(2024, 9, 1)))
    book = CaseBook()
    assert handle_event(book, event, NOW, CAL, POLICIES) == (book, Outputs())


def test_decision_without_register_number_or_case_is_bad_input() -> None:
    event = verified("v1", at("2024-10-02")).model_copy(update={"case_ref": None})
    with pytest.raises(InvalidMessage, match="case_ref"):
        handle_event(CaseBook(), event, NOW, CAL, POLICIES)


def test_case_id_is_uuid5_of_the_opening_event() -> None:
    book, _ = handle_event(CaseBook(), report("r1", at("2024-10-01")), NOW, CAL, POLICIES)
    assert list(book.cases) == [case_id_for("bawaslu:r1")]


def test_two_runs_of_the_same_input_publish_identical_outputs() -> None:
    def run() -> list[Outputs]:
        book, outs, t0 = CaseBook(), [], at("2024-04-01")
        events = [report("r1", t0), review("r1:f", t0 + timedelta(days=1),
                                           EventType.REVIEW_FORWARDED),
                  recommended("rec", t0 + timedelta(days=2)),
                  sanctioned("s", t0 + timedelta(days=60))]
        for i, event in enumerate(events[:3]):
            book, out = handle_event(book, event, t0 + timedelta(hours=i), CAL, POLICIES)
            outs.append(out)
        for day in ("2024-05-03", "2024-05-14", "2024-05-21"):
            book, out = scan_deadlines(book, date.fromisoformat(day), at(day, 1), CAL, POLICIES)
            outs.append(out)
        book, out = handle_event(book, events[3], at("2024-06-01"), CAL, POLICIES)
        return [*outs, out]

    first, second = run(), run()
    assert first == second
    ids = [t.transition_id for o in first for t in o.transitions]
    assert len(ids) == len(set(ids))


def test_a_batch_publishes_each_case_once_in_its_last_version_and_every_transition() -> None:
    t0 = at("2024-04-01")
    book, parts = CaseBook(), []
    other = report("r2", t0, ref="0002/Reg/LP/PB/32.73/10/2024", who=person(NIP_B))
    for i, event in enumerate([report("r1", t0), other,
                               review("r1:f", t0 + timedelta(days=1),
                                      EventType.REVIEW_FORWARDED),
                               recommended("rec", t0 + timedelta(days=2))]):
        book, out = handle_event(book, event, t0 + timedelta(hours=i), CAL, POLICIES)
        parts.append(out)
    gone = Outputs(tombstones=(case_id_for("bawaslu:r2"),))
    batch = batch_outputs([*parts, gone])
    r1 = case_id_for("bawaslu:r1")
    assert [c.case_id for c in batch.cases] == [r1]
    assert batch.cases[0] == book.cases[r1]  # the last version, not an intermediate one
    assert batch.tombstones == (case_id_for("bawaslu:r2"),)
    assert batch.transitions == tuple(t for p in parts for t in p.transitions)
    assert batch_outputs([gone, parts[1]]).cases == parts[1].cases  # re-created after a tombstone


def test_steps_stamped_with_one_clock_still_escalate_in_legal_order() -> None:
    """Ticks for days before the stage's clock all carry that clock as their instant: the
    peringatan, teguran and pemblokiran they take must still fold in that order."""
    t0 = at("2024-04-01")
    book = CaseBook()
    events = [report("r1", t0),
              review("r1:f", t0 + timedelta(days=1), EventType.REVIEW_FORWARDED),
              recommended("rec", t0 + timedelta(days=2))]
    for i, event in enumerate(events):
        book, _ = handle_event(book, event, t0 + timedelta(hours=i), CAL, POLICIES)
    clock = at("2024-06-30")  # a later input moved the clock past every deadline below
    steps = []
    for day in ("2024-05-03", "2024-05-14", "2024-05-21"):
        book, out = scan_deadlines(book, date.fromisoformat(day), clock, CAL, POLICIES)
        steps += [t.to_state for t in out.transitions]
    (case,) = book.cases.values()
    assert case.blocked and case.state is CaseState.BLOCKED, steps
    assert steps == [CaseState.PERINGATAN, CaseState.TEGURAN, CaseState.BLOCKED]
