"""M&E (monitoring and evaluation): how fast each provincial Satgas and each agency handles cases.

Pure: computed from :class:`sinks.sql.queries.CaseHistory` rows, the working-day calendar of
``streams.rules.calendar`` and an explicit ``today``. It lives in ``hub`` because sinks may not
import streams, and the calendar is the streams' one (one definition of a working day).

Steps, in Indonesian working days between WIB dates (``working_days_between``: days in (a, b]):
- report -> verification: from the case's opening to the first decision on proof (a ``proven`` or
  ``not-proven`` transition, or a recommendation, which implies proof);
- recommendation -> sanction: from the first recommendation to the PPK's sanction;
- PPK within deadline: of the recommended cases whose outcome is known (sanctioned, or the deadline
  has passed without one), the share sanctioned on or before ``recommendation_deadline``;
- escalated: cases that reached peringatan (or a later step); blocks: cases SIASN confirmed a block
  for; time to unblock: from the confirmed block to the confirmed unblock.
Ranking: share within deadline (highest first; none known ranks last), then the median
recommendation -> sanction (fastest first), then the group name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from schemas.models import CaseState
from sinks.sql.queries import CaseHistory
from streams.rules.calendar import WorkingCalendar
from streams.rules.lifecycle import Trigger, local_date

ESCALATED = frozenset({CaseState.PERINGATAN.value, CaseState.TEGURAN.value,
                       CaseState.BLOCKED.value})


def percentile(values: Sequence[int], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def _trigger(rule: str) -> str:
    return rule.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class CaseTimes:
    """Working-day durations of one case's steps (None: the step has not happened)."""

    report_to_verification: int | None
    recommendation_to_sanction: int | None
    within_deadline: bool | None
    """True/False once known; None while the PPK's deadline still runs (or no recommendation)."""
    escalated: bool
    blocked: bool
    block_to_unblock: int | None


def case_times(case: CaseHistory, calendar: WorkingCalendar, today: date) -> CaseTimes:
    def first(triggers: set[str]) -> date | None:
        return next((local_date(at) for at, _, rule in case.transitions
                     if _trigger(rule) in triggers), None)

    opened = local_date(case.opened_at)
    verified = first({Trigger.PROVEN.value, Trigger.NOT_PROVEN.value, Trigger.RECOMMEND.value})
    recommended = first({Trigger.RECOMMEND.value})
    sanctioned = first({Trigger.SANCTION.value})
    within: bool | None = None
    deadline = case.recommendation_deadline
    if recommended is not None and deadline is not None:
        if sanctioned is not None:
            within = sanctioned <= deadline
        elif deadline < today:
            within = False
    blocks = [local_date(at) for at, action in case.block_confirmed if action == "BLOCK"]
    unblocks = [local_date(at) for at, action in case.block_confirmed if action == "UNBLOCK"]
    unblock_days = None
    if blocks and unblocks and unblocks[-1] >= blocks[0]:
        unblock_days = calendar.working_days_between(blocks[0], unblocks[-1])
    return CaseTimes(
        report_to_verification=(calendar.working_days_between(opened, verified)
                                if verified is not None and verified >= opened else None),
        recommendation_to_sanction=(calendar.working_days_between(recommended, sanctioned)
                                    if recommended and sanctioned and sanctioned >= recommended
                                    else None),
        within_deadline=within,
        escalated=case.escalation_step >= 1 or any(s in ESCALATED for _, s, _ in case.transitions),
        blocked=bool(blocks),
        block_to_unblock=unblock_days,
    )


@dataclass(frozen=True)
class GroupScore:
    """One province's or agency's M&E numbers."""

    group: str
    cases: int
    verification_median: float | None
    verification_p90: float | None
    sanction_median: float | None
    sanction_p90: float | None
    ppk_within: int
    ppk_decided: int
    escalated: int
    blocks: int
    unblock_median: float | None
    rank: int = 0

    @property
    def ppk_within_share(self) -> float | None:
        return None if self.ppk_decided == 0 else self.ppk_within / self.ppk_decided


def score(group: str, times: Iterable[CaseTimes]) -> GroupScore:
    ts = list(times)
    verification = [t.report_to_verification for t in ts if t.report_to_verification is not None]
    sanction = [t.recommendation_to_sanction for t in ts
                if t.recommendation_to_sanction is not None]
    unblock = [t.block_to_unblock for t in ts if t.block_to_unblock is not None]
    decided = [t.within_deadline for t in ts if t.within_deadline is not None]
    return GroupScore(
        group=group, cases=len(ts),
        verification_median=percentile(verification, 0.5),
        verification_p90=percentile(verification, 0.9),
        sanction_median=percentile(sanction, 0.5), sanction_p90=percentile(sanction, 0.9),
        ppk_within=sum(decided), ppk_decided=len(decided),
        escalated=sum(t.escalated for t in ts), blocks=sum(t.blocked for t in ts),
        unblock_median=percentile(unblock, 0.5))


def ranked(scores: Iterable[GroupScore]) -> list[GroupScore]:
    """Best first, with ``rank`` 1..n (see the module docstring for the order)."""
    def key(s: GroupScore) -> tuple[float, float, str]:
        share = s.ppk_within_share
        return (-(share if share is not None else -1.0),
                s.sanction_median if s.sanction_median is not None else math.inf, s.group)
    ordered = sorted(scores, key=key)
    return [GroupScore(**{**s.__dict__, "rank": i}) for i, s in enumerate(ordered, 1)]


@dataclass(frozen=True)
class Evaluation:
    overall: GroupScore
    provinces: list[GroupScore]
    agencies: list[GroupScore]


def evaluate(histories: Iterable[CaseHistory], calendar: WorkingCalendar,
             today: date) -> Evaluation:
    """M&E of every province and agency among ``histories`` (already scoped by the caller)."""
    rows = [(h, case_times(h, calendar, today)) for h in histories]

    def grouped(key: Callable[[CaseHistory], str]) -> list[GroupScore]:
        groups: dict[str, list[CaseTimes]] = {}
        for h, t in rows:
            groups.setdefault(key(h), []).append(t)
        return ranked(score(g, ts) for g, ts in groups.items())

    return Evaluation(overall=score("ALL", (t for _, t in rows)),
                      provinces=grouped(lambda h: h.province_code),
                      agencies=grouped(lambda h: h.agency_name))
