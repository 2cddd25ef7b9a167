"""Working-day deadlines and escalation: the domain's dates, idempotent scans, exactly one BLOCK
and one UNBLOCK per overdue-then-sanctioned case."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from schemas.models import (
    Agency,
    Alert,
    CaseRecord,
    CaseState,
    CaseTransition,
    EscalationStep,
    EventType,
    OrderAction,
    OrderOutcome,
    PolicyParameters,
    PolicyRegime,
    SiasnOrder,
    SiasnOrderResult,
)
from streams.rules.cases import CaseBook, Outputs, handle_event, handle_order_result, scan_deadlines
from streams.rules.escalation import due_step, due_steps, order_id
from streams.rules.lifecycle import stable_id
from streams.rules.policy import Policies, apply_policy_update
from tests.unit.test_rules_factories import (
    CAL,
    PILKADA,
    POLICIES,
    at,
    escalated,
    person,
    recommended,
    report,
    review,
    sanctioned,
)
from tests.unit.test_rules_factories import _event as make_event

pytestmark = pytest.mark.unit

NOW = at("2024-12-20")
POLICY = POLICIES[PILKADA]


def recommended_case(*, nip: str | None = "198503152010011001", deadline: date | None = None,
                     policies: Policies = POLICIES) -> CaseBook:
    """A Pilkada case recommended on Wed 3 Apr 2024, the domain's example."""
    book = CaseBook()
    who = person(nip=nip)
    for event in [report("r1", at("2024-04-01"), who=who),
                  review("r1:f", at("2024-04-02"), EventType.REVIEW_FORWARDED),
                  recommended("rec1", at("2024-04-03"), nip=nip, deadline=deadline)]:
        book, _ = handle_event(book, event, NOW, CAL, policies)
    return book


def only(book: CaseBook) -> CaseRecord:
    (case,) = book.cases.values()
    return case


def scan(book: CaseBook, day: str, policies: Policies = POLICIES) -> tuple[CaseBook, Outputs]:
    return scan_deadlines(book, date.fromisoformat(day), at(day, 1), CAL, policies)


def test_domain_example_recommendation_3_april_falls_due_2_may() -> None:
    case = only(recommended_case())
    assert case.state is CaseState.RECOMMENDED
    assert case.recommendation_deadline == date(2024, 5, 2)  # Idul Fitri + cuti bersama skipped
    assert case.next_deadline == date(2024, 5, 3)  # peringatan: first working day after


def test_recommendation_with_its_own_deadline() -> None:
    case = only(recommended_case(deadline=date(2024, 4, 30)))
    assert case.recommendation_deadline == date(2024, 4, 30)
    assert case.next_deadline == date(2024, 5, 2)  # 1 May is Hari Buruh


def test_escalation_timeline_with_exact_dates() -> None:
    book = recommended_case()
    steps: dict[str, list[str]] = {}
    day = date(2024, 4, 4)
    while day <= date(2024, 6, 30):
        book, out = scan(book, day.isoformat())
        if out:
            steps[day.isoformat()] = [t.rule for t in out.transitions]
        day += timedelta(days=1)
    assert steps == {
        "2024-05-03": ["deadline.peringatan"],  # Fri: the first working day after 2 May
        "2024-05-14": ["deadline.teguran"],  # 5 WD: 6, 7, 8, (9 Kenaikan, 10 cuti), 13, 14
        "2024-05-21": ["deadline.pemblokiran"],  # 5 WD: 15, 16, 17, 20, 21
    }
    case = only(book)
    assert case.state is CaseState.BLOCKED and case.blocked and case.escalation_step == 3
    assert case.next_deadline is None
    assert [(e.state, e.rule) for e in case.timeline[-3:]] == [
        (CaseState.PERINGATAN, "deadline.peringatan"), (CaseState.TEGURAN, "deadline.teguran"),
        (CaseState.BLOCKED, "deadline.pemblokiran")]
    assert all(e.cause_event_id is None for e in case.timeline[-3:])  # deadlines, not events


def test_each_step_publishes_record_transition_alert_and_block_order() -> None:
    book = recommended_case()
    book, warn = scan(book, "2024-05-03")
    assert [c.state for c in warn.cases] == [CaseState.PERINGATAN]
    assert [(a.rule, a.severity.value) for a in warn.alerts] == [
        ("escalation.peringatan", "WARNING")]
    assert warn.orders == ()
    book, _ = scan(book, "2024-05-14")
    book, block = scan(book, "2024-05-21")
    assert [a.rule for a in block.alerts] == ["escalation.pemblokiran"]
    (order,) = block.orders
    assert order.action is OrderAction.BLOCK and order.nip == "198503152010011001"
    assert order.order_id == order_id(only(book).case_id, OrderAction.BLOCK)
    assert order.legal_basis == "Peraturan BKN 1/2023"


def test_scan_is_idempotent_same_day_and_after_restart() -> None:
    book = recommended_case()
    book, first = scan(book, "2024-05-03")
    assert first
    again, second = scan(book, "2024-05-03")
    assert not second and again.cases == book.cases
    # "Restart": the same book restored from its changelog, scanned later that week.
    for day in ("2024-05-06", "2024-05-07", "2024-05-13"):
        book, out = scan(book, day)
        assert not out


def test_due_steps_pure_function_matches_the_scan() -> None:
    book = recommended_case()
    case = only(book)
    day = date(2024, 5, 3)
    assert due_steps(case, day - timedelta(days=1), CAL, POLICY, now=at(day, 1)) == []
    outs = due_steps(case, day, CAL, POLICY, now=at(day, 1))
    after, scanned = scan(book, "2024-05-03")
    assert [o for o in outs if isinstance(o, CaseRecord)] == list(scanned.cases)
    assert [o for o in outs if isinstance(o, CaseTransition)] == list(scanned.transitions)
    assert [o for o in outs if isinstance(o, Alert)] == list(scanned.alerts)
    # Once the case carries the step, nothing is due.
    assert due_steps(only(after), day, CAL, POLICY, now=at(day, 2)) == []
    assert due_step(only(after), day) is None
    # Re-running on the old record re-emits the same ids: recognisable, never a new step.
    assert due_steps(case, day, CAL, POLICY, now=at(day, 1)) == outs


def overdue_then_sanctioned(sanction_day: str) -> tuple[CaseBook, list[SiasnOrder]]:
    book = recommended_case()
    orders: list[SiasnOrder] = []
    day = date(2024, 4, 4)
    while day <= date(2024, 7, 31):
        book, out = scan(book, day.isoformat())
        orders += out.orders
        if day.isoformat() == sanction_day:
            book, out = handle_event(book, sanctioned("s1", at(day, 8)), NOW, CAL, POLICIES)
            orders += out.orders
        day += timedelta(days=1)
    return book, orders


def test_exactly_one_block_and_one_unblock_per_overdue_then_sanctioned_case() -> None:
    book, orders = overdue_then_sanctioned("2024-06-10")
    assert [o.action for o in orders] == [OrderAction.BLOCK, OrderAction.UNBLOCK]
    case = only(book)
    assert orders[1].order_id == order_id(case.case_id, OrderAction.UNBLOCK)
    assert case.state is CaseState.SANCTIONED and case.blocked  # until the unblock is confirmed
    # SIASN confirms: the case closes; a repeated confirmation changes nothing.
    result = SiasnOrderResult(order_id=orders[1].order_id, case_id=case.case_id,
                              nip=orders[1].nip, action=OrderAction.UNBLOCK,
                              outcome=OrderOutcome.CONFIRMED, at=at("2024-06-11"), attempts=1)
    book, out = handle_order_result(book, result, NOW, CAL, POLICIES)
    assert only(book).state is CaseState.CLOSED and not only(book).blocked
    assert [t.rule for t in out.transitions] == ["siasn.unblocked"]
    book2, out2 = handle_order_result(book, result, NOW, CAL, POLICIES)
    assert not out2 and book2 == book
    # BKN's own lifting letter afterwards: recorded, no second order.
    _, out3 = handle_event(book, escalated("u1", at("2024-06-12"), EscalationStep.UNBLOCK),
                           NOW, CAL, POLICIES)
    assert out3.orders == () and out3.cases[0].state is CaseState.CLOSED


def test_sanction_before_the_block_needs_no_orders() -> None:
    _, orders = overdue_then_sanctioned("2024-05-15")  # during teguran
    assert orders == []


def test_late_sanction_older_than_the_block_still_owes_the_unblock() -> None:
    book = recommended_case()
    for day in ("2024-05-03", "2024-05-14", "2024-05-21"):
        book, out = scan(book, day)
    assert [o.action for o in out.orders] == [OrderAction.BLOCK]
    # I'DIS recorded the sanction on 20 May, but it arrives after the block went out.
    book, out = handle_event(book, sanctioned("s1", at("2024-05-20")), NOW, CAL, POLICIES)
    case = only(book)
    assert case.state is CaseState.SANCTIONED and case.blocked
    assert [o.action for o in out.orders] == [OrderAction.UNBLOCK]


def test_bkn_letters_count_as_steps_so_the_hub_does_not_repeat_them() -> None:
    book = recommended_case()
    book, out = handle_event(book, escalated("w1", at("2024-05-03"), EscalationStep.WARNING),
                             NOW, CAL, POLICIES)
    assert only(book).state is CaseState.PERINGATAN
    assert only(book).next_deadline == date(2024, 5, 14)
    book, out = scan(book, "2024-05-03")
    assert not out  # the peringatan is on the case already
    book, out = scan(book, "2024-05-14")
    assert [t.rule for t in out.transitions] == ["deadline.teguran"]
    # BKN's teguran letter arriving after the hub's own step: one step, not two.
    book, out = handle_event(book, escalated("t1", at("2024-05-15"), EscalationStep.REPRIMAND),
                             NOW, CAL, POLICIES)
    assert only(book).escalation_step == 2 and only(book).next_deadline == date(2024, 5, 21)


def test_bkn_block_letter_means_no_hub_block_order_but_sanction_unblocks() -> None:
    book = recommended_case()
    for sid, day, step in [("w", "2024-05-03", EscalationStep.WARNING),
                           ("t", "2024-05-14", EscalationStep.REPRIMAND),
                           ("b", "2024-05-21", EscalationStep.BLOCK)]:
        book, out = handle_event(book, escalated(sid, at(day), step), NOW, CAL, POLICIES)
        assert out.orders == ()
    book, out = scan(book, "2024-05-22")
    assert not out
    book, out = handle_event(book, sanctioned("s", at("2024-06-01")), NOW, CAL, POLICIES)
    assert [o.action for o in out.orders] == [OrderAction.UNBLOCK]


def test_block_without_nip_is_not_ordered_and_alerts_with_a_stable_id() -> None:
    book = recommended_case(nip=None)
    for day in ("2024-05-03", "2024-05-14"):
        book, _ = scan(book, day)
    book, out = scan(book, "2024-05-21")
    assert out.orders == () and only(book).state is CaseState.TEGURAN
    (alert,) = out.alerts
    assert alert.rule == "escalation.block-needs-nip"
    _, again = scan(book, "2024-05-22")
    assert again.alerts[0].alert_id == alert.alert_id == stable_id(
        only(book).case_id, "escalation.block-needs-nip", "3")


def test_policy_update_changes_intervals_from_its_effective_date() -> None:
    update = make_event(
        Agency.KEMENPANRB, "pu-1",
        EventType.POLICY_UPDATED, at("2024-03-01"), PILKADA,
        policy=PolicyParameters(regime=PolicyRegime.SATGAS_2024,
                                effective_date=date(2024, 5, 10), ppk_deadline_working_days=14,
                                warning_interval_working_days=3,
                                reprimand_interval_working_days=10, decree_ref="SE 9/2024"))
    policies = apply_policy_update(POLICIES, update)
    book = recommended_case(policies=policies)
    assert only(book).next_deadline == date(2024, 5, 3)  # recommended before 10 May: 14 WD
    book, _ = scan(book, "2024-05-03", policies)
    assert only(book).next_deadline == date(2024, 5, 14)  # peringatan on 3 May: old 5 WD
    book, _ = scan(book, "2024-05-14", policies)
    # Teguran on 14 May, the new 10 WD: 15-17, 20-22, (23 Waisak, 24 cuti bersama), 27-30.
    assert only(book).next_deadline == date(2024, 5, 30)
