"""The election simulator: deterministic, realistic shares, a complete ground truth."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from connectors.agencies import PARSERS
from connectors.simulator import Outcome, SimConfig, simulate
from schemas.errors import InvalidMessage
from schemas.models import BawasluReport, Election
from schemas.topics import Agency

pytestmark = pytest.mark.unit


def test_same_seed_same_wave_other_seed_other_wave() -> None:
    a, b = simulate(SimConfig(cases=300, seed=7)), simulate(SimConfig(cases=300, seed=7))
    assert [e.event_id for e in a.events] == [e.event_id for e in b.events]
    assert [e.record for e in a.events] == [e.record for e in b.events]
    c = simulate(SimConfig(cases=300, seed=8))
    assert [e.record for e in a.events] != [e.record for e in c.events]


def test_most_pilkada_cases_stall_like_2024() -> None:
    sim = simulate(SimConfig(cases=2000, seed=1))
    shares = Counter(c.outcome for c in sim.truth)
    stalled = shares[Outcome.AWAITING_BKN] + shares[Outcome.AWAITING_PPK]
    assert stalled / 2000 > 0.85  # 1,103 of 1,158 in reality
    assert 0.3 < shares[Outcome.AWAITING_PPK] / 2000 < 0.45
    assert shares[Outcome.SANCTIONED] > 0 and shares[Outcome.REJECTED] > 0


def test_truth_covers_every_event_once_and_ids_are_unique() -> None:
    sim = simulate(SimConfig(cases=500, seed=3))
    ids = [e.event_id for e in sim.events]
    assert len(ids) == len(set(ids))
    in_truth = [i for c in sim.truth for i in (*c.event_ids, *c.name_only_event_ids)]
    assert sorted(in_truth) == sorted(ids)


def test_duplicates_and_name_only_reports_at_their_rates() -> None:
    sim = simulate(SimConfig(cases=2000, seed=5, duplicate_rate=0.2, name_only_rate=0.1))
    reports_per_case: Counter[str] = Counter()
    name_only = 0
    for ev in sim.events:
        if isinstance(ev.record, BawasluReport) and ev.record.review_outcome is None:
            reports_per_case[ev.record.source_id.removesuffix("-d")] += 1
            name_only += ev.record.accused.nip is None
    duplicated = sum(1 for n in reports_per_case.values() if n == 2) / 2000
    assert 0.16 < duplicated < 0.24
    assert 0.1 < name_only / len(reports_per_case) < 0.25  # first reports + half the duplicates


def test_some_events_arrive_out_of_order() -> None:
    sim = simulate(SimConfig(cases=500, seed=9, late_rate=0.1))
    times = [e.at for e in sim.events]
    assert any(later < earlier for earlier, later in pairwise(times))


def test_bad_rows_are_rejected_by_the_connector() -> None:
    sim = simulate(SimConfig(cases=1000, seed=2, bad_rate=0.02))
    assert len(sim.bad) == 20
    for bad in sim.bad:
        with pytest.raises(InvalidMessage):
            PARSERS[Agency(bad.agency)](bad.native or {})


def test_pemilu_has_no_bawaslu_review_step() -> None:
    sim = simulate(SimConfig(election=Election.PEMILU_2024, cases=300, seed=4))
    assert not any(isinstance(e.record, BawasluReport) and e.record.review_outcome
                   for e in sim.events)


def test_a_wave_in_parts_numbers_its_cases_apart() -> None:
    """bench.restore_changelog simulates a million cases in parts, each with its own seed:
    with ``first_case`` no two parts share a register number or an event id."""
    def registers(first: int, seed: int) -> tuple[set[str], set[str]]:
        sim = simulate(SimConfig(cases=400, first_case=first, seed=seed))
        refs = {e.record.register_number for e in sim.events
                if isinstance(e.record, BawasluReport)}
        return refs, {e.event_id for e in sim.events}
    refs_a, ids_a = registers(0, 1)
    refs_b, ids_b = registers(400, 2)
    assert refs_a and refs_b and not refs_a & refs_b
    assert not ids_a & ids_b
    assert [c.case_no for c in simulate(SimConfig(cases=3, first_case=400)).truth] == [
        400, 401, 402]
