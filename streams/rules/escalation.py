"""escalation: the PPK's deadline and BKN's steps when it passes (peringatan, teguran, pemblokiran).

On RECOMMENDED the PPK has ``ppk_deadline_working_days`` (14) from the recommendation's date,
unless the recommendation names its own deadline. If the PPK has not sanctioned by then, on the
first working day after the deadline comes the peringatan (written warning to the PPK); after
``warning_interval_working_days`` more, the teguran (reprimand); after
``reprimand_interval_working_days`` more, the pemblokiran: a BLOCK order for the ASN's data in
SIASN (Peraturan BKN 1/2023). A sanction on a blocked case owes one UNBLOCK order.

Each interval counts from the day the previous step was actually taken (a letter gives its
recipient the full interval, even when a step went out late), with the intervals in force on that
day (a PolicyUpdate applies from its effective date). ``CaseRecord.next_deadline`` is the day the
next step falls due; :func:`due_steps` is what a timer scan calls, and is idempotent because the
step it takes is on the record (``escalation_step``): once taken, nothing is due until the next
interval has run. Order and alert ids are uuid5 of (case, action, step): a re-emission after a
crash carries the same id, so SIASN and the alert channels recognise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Protocol

from schemas import regions
from schemas.models import (
    Alert,
    CaseRecord,
    CaseState,
    CaseTransition,
    EscalationStep,
    OrderAction,
    PolicyRegime,
    Recommendation,
    Severity,
    SiasnOrder,
)

from .lifecycle import Trigger, enter, next_state, stable_id, transitions
from .policy import ElectionPolicy


class Calendar(Protocol):
    """Working days (hari kerja): what the rules need of ``streams.rules.calendar``."""

    def is_working_day(self, d: date) -> bool: ...

    def add_working_days(self, start: date, n: int) -> date: ...

    def working_days_between(self, a: date, b: date) -> int: ...


STEP_TRIGGER: Mapping[EscalationStep, Trigger] = MappingProxyType({
    EscalationStep.WARNING: Trigger.WARNING,
    EscalationStep.REPRIMAND: Trigger.REPRIMAND,
    EscalationStep.BLOCK: Trigger.BLOCK,
    EscalationStep.UNBLOCK: Trigger.UNBLOCK,
})
STEP_NUMBER: Mapping[EscalationStep, int] = MappingProxyType({
    EscalationStep.WARNING: 1, EscalationStep.REPRIMAND: 2, EscalationStep.BLOCK: 3,
})
#: The step that falls due next, by state (a case elsewhere has none).
NEXT_STEP: Mapping[CaseState, EscalationStep] = MappingProxyType({
    CaseState.RECOMMENDED: EscalationStep.WARNING,
    CaseState.PERINGATAN: EscalationStep.REPRIMAND,
    CaseState.TEGURAN: EscalationStep.BLOCK,
})
_ALERT = {
    EscalationStep.WARNING: ("escalation.peringatan", Severity.WARNING, "Peringatan"),
    EscalationStep.REPRIMAND: ("escalation.teguran", Severity.WARNING, "Teguran"),
    EscalationStep.BLOCK: ("escalation.pemblokiran", Severity.CRITICAL, "Pemblokiran"),
}

StepOutput = CaseRecord | CaseTransition | Alert | SiasnOrder


def ppk_deadline(recommendation: Recommendation, recommended_on: date, calendar: Calendar,
                 policy: ElectionPolicy) -> date:
    """The day the PPK must have acted by: the letter's own deadline, else 14 WD after it."""
    if recommendation.deadline is not None:
        return recommendation.deadline
    days = policy.intervals_on(recommended_on).ppk_deadline_working_days
    return calendar.add_working_days(recommended_on, days)


def recommend(record: CaseRecord, recommendation: Recommendation, recommended_on: date,
              calendar: Calendar, policy: ElectionPolicy) -> CaseRecord:
    """Start (or restart, for a revised recommendation) the PPK's clock."""
    deadline = ppk_deadline(recommendation, recommended_on, calendar, policy)
    return record.model_copy(update={
        "recommendation_deadline": deadline,
        "next_deadline": calendar.add_working_days(deadline, 1),  # the peringatan's day
        "escalation_step": 0,
    })


def record_step(record: CaseRecord, step: EscalationStep, on: date, calendar: Calendar,
                policy: ElectionPolicy) -> CaseRecord:
    """Count a step taken on ``on`` (by the hub or by BKN) and schedule the next one.

    A step already counted (BKN's letter after the hub's own step) changes nothing: the first
    one started the interval.
    """
    n = STEP_NUMBER[step]
    if record.escalation_step >= n:
        return record
    if step is EscalationStep.BLOCK:
        return record.model_copy(update={"escalation_step": n, "blocked": True,
                                         "next_deadline": None})
    intervals = policy.intervals_on(on)
    days = (intervals.warning_interval_working_days if step is EscalationStep.WARNING
            else intervals.reprimand_interval_working_days)
    return record.model_copy(update={"escalation_step": n,
                                     "next_deadline": calendar.add_working_days(on, days)})


def take_step(record: CaseRecord, step: EscalationStep, *, on: date, at: datetime,
              regime: PolicyRegime, calendar: Calendar, policy: ElectionPolicy,
              cause: str | None = None, rule: str | None = None) -> CaseRecord:
    """Apply one of the hub's own deadline steps, a fact once taken.

    When the case has moved on meanwhile (a sanction older than the step arrived late), the step
    is moot and changes nothing, except a pemblokiran: the BLOCK order went out, so the case is
    blocked, and a sanctioned-and-blocked case owes its UNBLOCK.
    """
    trigger = STEP_TRIGGER[step]
    target = next_state(regime, record.state, trigger)
    if target is None:
        if step is EscalationStep.BLOCK and not record.blocked:
            return record.model_copy(update={"blocked": True, "escalation_step": 3})
        return record
    entered = enter(record, target, at=at, cause=cause,
                    rule=rule or f"deadline.{trigger.value}")
    return record_step(entered, step, on, calendar, policy)


def lift_block(record: CaseRecord) -> CaseRecord:
    """The block is lifted: nothing more is due."""
    return record.model_copy(update={"blocked": False, "next_deadline": None})


def close_deadlines(record: CaseRecord) -> CaseRecord:
    """A sanction or an end state: no step is due any more."""
    return record.model_copy(update={"next_deadline": None})


def due_step(case: CaseRecord, today: date) -> EscalationStep | None:
    """The step due on ``today``, if any (after an outage, one step per call: intervals hold)."""
    step = NEXT_STEP.get(case.state)
    if step is None or case.next_deadline is None or today < case.next_deadline:
        return None
    if case.escalation_step >= STEP_NUMBER[step]:
        return None
    return step


def owes_unblock(case: CaseRecord) -> bool:
    """Sanctioned while blocked: the UNBLOCK order is owed until the lifting is confirmed."""
    return case.state is CaseState.SANCTIONED and case.blocked


def due_steps(case: CaseRecord, today: date, calendar: Calendar, policy: ElectionPolicy, *,
              now: datetime) -> list[StepOutput]:
    """What the deadline scan publishes for one case today: nothing, or the next step's record
    (version + 1), its transition, its alert and, for the pemblokiran, the BLOCK order.

    A BLOCK needs a NIP: without one the step is not taken and only an alert (always the same
    id) says so, until an event brings the NIP.
    """
    step = due_step(case, today)
    if step is None:
        return []
    if step is EscalationStep.BLOCK and case.person.nip is None:
        return [_alert(case, "escalation.block-needs-nip", Severity.CRITICAL,
                       "Pemblokiran due but the NIP is unknown",
                       f"Case {case.case_id} is due for pemblokiran since {case.next_deadline}, "
                       "but no source has given the ASN's NIP. Resolve the identity (review) so "
                       "the block can be ordered.", now, "3")]
    rule = f"deadline.{STEP_TRIGGER[step].value}"
    after = take_step(case, step, on=today, at=now, regime=policy.regime, calendar=calendar,
                      policy=policy, rule=rule)
    after = after.model_copy(update={"version": case.version + 1,
                                     "updated_at": max(now, case.updated_at)})
    outputs: list[StepOutput] = [after]
    outputs += transitions(case, after, rule=rule, cause=None, at=now)
    outputs += step_outputs(case, after, step, now)
    return outputs


def step_outputs(before: CaseRecord, after: CaseRecord, step: EscalationStep,
                 now: datetime) -> list[Alert | SiasnOrder]:
    """The alert of a step the hub took, and the BLOCK order for a pemblokiran."""
    rule, severity, word = _ALERT[step]
    deadline = before.recommendation_deadline
    ppk = after.ppk_name or "the PPK"
    detail = (f"{ppk} has not imposed the recommended sanction on case {after.case_id} "
              f"(deadline {deadline}). {word} issued on {now.date()}; next step due "
              f"{after.next_deadline or 'none'}.")
    out: list[Alert | SiasnOrder] = [
        _alert(after, rule, severity, f"{word}: PPK missed the deadline ({deadline})", detail,
               now, str(STEP_NUMBER[step]))
    ]
    if step is EscalationStep.BLOCK and after.person.nip is not None:
        out.append(order(after, OrderAction.BLOCK, now,
                         f"{ppk} did not impose the recommended sanction by {deadline}; "
                         "peringatan and teguran went unanswered."))
    return out


def order_id(case_id: str, action: OrderAction, step: int = 3) -> str:
    """uuid5 of ``{case_id}:{action}:{step}``: the same order always has the same id."""
    return stable_id(case_id, action.value, step)


def order(case: CaseRecord, action: OrderAction, now: datetime, reason: str) -> SiasnOrder:
    """A SIASN order for the case's NIP (the caller has checked there is one)."""
    assert case.person.nip is not None
    return SiasnOrder(order_id=order_id(case.case_id, action), case_id=case.case_id,
                      nip=case.person.nip, action=action, reason=reason, issued_at=now)


def unblock_order(case: CaseRecord, now: datetime) -> SiasnOrder | None:
    """The UNBLOCK a sanctioned, blocked case owes (None without a NIP: nothing was blocked)."""
    if case.person.nip is None:
        return None
    level = case.level.value if case.level else "recorded in I'DIS"
    return order(case, OrderAction.UNBLOCK, now,
                 f"The PPK imposed the sanction ({level}); the pemblokiran is lifted.")


def _alert(case: CaseRecord, rule: str, severity: Severity, title: str, detail: str,
           now: datetime, discriminator: str) -> Alert:
    return Alert(alert_id=stable_id(case.case_id, rule, discriminator), rule=rule,
                 severity=severity, region_code=case.region_code,
                 province_code=regions.province_of(case.region_code), case_id=case.case_id,
                 nip=case.person.nip, agency_name=case.person.agency_name, title=title,
                 detail=detail, at=now, dedupe_key=f"{rule}:{case.case_id}:{discriminator}")


def case_alert(case: CaseRecord, rule: str, severity: Severity, title: str, detail: str,
               now: datetime, discriminator: str = "") -> Alert:
    """An alert about one case, with a deterministic id and dedupe key."""
    return _alert(case, rule, severity, title, detail, now, discriminator)
