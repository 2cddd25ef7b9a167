"""Scoring the hub's national record against a simulation's ground truth (tests, bench, demo).

Pairwise: two canonical events of the truth are a true pair when they belong to the same true
case, a predicted pair when the hub put them in the same case. Precision = predicted pairs that
are true / predicted pairs; recall = true pairs predicted / true pairs. A report held in review
counts as not merged (a recall loss, never a precision loss), and the decisions waiting on it as
held, not missing. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from schemas.models import CaseRecord, CaseState

from .simulator import Outcome

# Where each simulated outcome must end in the national record.
EXPECTED_STATES: Mapping[Outcome, frozenset[CaseState]] = {
    Outcome.AWAITING_BKN: frozenset({CaseState.REPORTED, CaseState.UNDER_VERIFICATION,
                                     CaseState.UNDER_BAWASLU_REVIEW, CaseState.NEEDS_REVIEW}),
    Outcome.AWAITING_PPK: frozenset({CaseState.RECOMMENDED, CaseState.PERINGATAN,
                                     CaseState.TEGURAN, CaseState.BLOCKED}),
    Outcome.SANCTIONED: frozenset({CaseState.SANCTIONED, CaseState.CLOSED}),
    Outcome.NOT_PROVEN: frozenset({CaseState.NOT_PROVEN}),
    Outcome.CANCELLED: frozenset({CaseState.CANCELLED}),
    Outcome.REJECTED: frozenset({CaseState.REJECTED}),
}


@dataclass(frozen=True)
class MergeScore:
    """How the national record compares with the truth."""

    true_cases: int
    cases_found: int  # hub cases holding at least one event of the truth
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    events_missing: int  # truth events in no case (and not waiting on a case in review)
    events_held: int  # decisions waiting in a NEEDS_REVIEW case for the reviewer
    split_cases: int  # true cases whose NIP-bearing events sit in more than one hub case
    in_review: int  # hub cases in NEEDS_REVIEW
    wrong_state: int  # true cases whose hub case is not in a state its outcome allows

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    def line(self) -> str:
        return (f"precision {self.precision:.4f}, recall {self.recall:.4f} over "
                f"{self.true_pairs} true pairs; {self.true_cases} true cases in "
                f"{self.cases_found} hub cases, {self.split_cases} split, {self.in_review} in "
                f"review ({self.events_held} decisions held there), {self.events_missing} events "
                f"missing, {self.wrong_state} in a wrong state")


def score(truth: Iterable[Mapping[str, Any]], cases: Iterable[CaseRecord]) -> MergeScore:
    """Score the latest CaseRecords (one per case id) against the truth's JSON lines."""
    truth = list(truth)
    case_of: dict[str, str] = {}
    records = {c.case_id: c for c in cases}
    for record in records.values():
        for source in record.sources:
            case_of[source.event_id] = record.case_id
    true_of: dict[str, int] = {}
    for line in truth:
        for event_id in (*line["event_ids"], *line["name_only_event_ids"]):
            true_of[event_id] = line["case"]
    known = [e for e in true_of if e in case_of]
    true_pairs = sum(n * (n - 1) // 2 for n in Counter(true_of.values()).values())
    predicted = correct = 0
    by_case: dict[str, list[str]] = {}
    for event_id in known:
        by_case.setdefault(case_of[event_id], []).append(event_id)
    for members in by_case.values():
        for a, b in combinations(members, 2):
            predicted += 1
            correct += true_of[a] == true_of[b]
    held_cases = {line["case"] for line in truth
                  if any(e in case_of and records[case_of[e]].state is CaseState.NEEDS_REVIEW
                         for e in (*line["event_ids"], *line["name_only_event_ids"]))}
    missing = [e for e in true_of if e not in case_of]
    held = sum(true_of[e] in held_cases for e in missing)
    split = wrong = 0
    for line in truth:
        homes = {case_of[e] for e in line["event_ids"] if e in case_of}
        split += len(homes) > 1
        if len(homes) == 1:
            state = records[homes.pop()].state
            wrong += (state is not CaseState.NEEDS_REVIEW  # waits for the reviewer: not wrong
                      and state not in EXPECTED_STATES[Outcome(line["outcome"])])
    return MergeScore(
        true_cases=len(truth), cases_found=len(by_case), true_pairs=true_pairs,
        predicted_pairs=predicted, correct_pairs=correct,
        events_missing=len(missing) - held, events_held=held, split_cases=split,
        in_review=sum(r.state is CaseState.NEEDS_REVIEW for r in records.values()
                      if r.case_id in by_case),
        wrong_state=wrong)
