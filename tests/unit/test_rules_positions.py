"""The cases stage's positions: each input partition taken in offset order, from the journal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.topics import CASES, COMMANDS, DEADLINE_TICKS, EVENTS, ORDERS_SIASN_RESULTS
from streams.rules.positions import Placement, gapless, place, position_key
from streams.rules.stage import CaseStage, InputKind, entry_positions, pack, unpack
from tests.unit.test_rules_factories import CAL, POLICIES
from tests.unit.test_rules_stage import CODEC, overdue_case_inputs

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("position", "offset", "gapless_", "expected"), [
    (None, 7, True, Placement.NEXT),  # a legacy journal: taken as it comes
    (5, 5, True, Placement.NEXT),
    (5, 4, True, Placement.TAKEN),
    (5, 0, False, Placement.TAKEN),
    (5, 6, True, Placement.AHEAD),  # offset 5 was never handed over
    (5, 6, False, Placement.NEXT),  # offset 5 may be a transaction marker
])
def test_a_record_is_placed_against_the_position(position: int | None, offset: int,
                                                 gapless_: bool, expected: Placement) -> None:
    assert place(position, offset, gapless_) is expected


def test_transactions_and_compaction_make_offsets_that_are_no_record() -> None:
    assert all(gapless(t, transactional=False) for t in (EVENTS, COMMANDS, DEADLINE_TICKS))
    assert not gapless(ORDERS_SIASN_RESULTS, transactional=False)  # the adapter's transactions
    assert not gapless(CASES, transactional=False)
    assert not gapless("app-cases-journal-changelog", transactional=False)
    assert not gapless(EVENTS, transactional=True)


@given(st.lists(st.integers(0, 40), max_size=200))
def test_taking_in_order_takes_each_offset_once_and_never_past_one_missing(
        arrivals: list[int]) -> None:
    """Whatever order a partition's offsets come in (repeats, jumps, seeks back), the stage
    takes 0, 1, 2, ... each once, and stops at the first offset that never came."""
    position, took, last = 0, [], -1
    for i, offset in enumerate(arrivals):
        if place(position, offset, every_offset_a_record=True) is Placement.NEXT:
            took.append(offset)
            position, last = offset + 1, i
    assert took == list(range(len(took)))
    assert position not in arrivals[last + 1:]  # the next one never came after the last take


def test_a_journal_entry_carries_the_positions_after_its_batch() -> None:
    inputs = overdue_case_inputs()
    positions = {position_key(EVENTS, 0): 12, position_key(DEADLINE_TICKS, 0): 4}
    entry = pack(inputs, positions)
    assert list(unpack(entry)) == inputs and entry_positions(entry) == positions
    assert entry_positions(pack(inputs)) is None  # as written before positions were
    assert entry_positions(pack([], positions)) == positions  # a batch of rejects only


def test_a_replay_restores_the_last_positions_and_remembers_a_legacy_journal() -> None:
    inputs = overdue_case_inputs()
    a, b = position_key(EVENTS, 0), position_key(DEADLINE_TICKS, 0)
    journal = [pack(inputs[:3], {a: 3}), pack(inputs[3:], {a: 4, b: 4})]
    rebuilt = CaseStage(CODEC, CAL, POLICIES)
    rebuilt.replay(journal)
    assert rebuilt.positions == {a: 4, b: 4} and not rebuilt.legacy
    upgraded = CaseStage(CODEC, CAL, POLICIES)
    upgraded.replay([pack(inputs[:3]), pack(inputs[3:], {a: 4})])
    assert upgraded.positions == {a: 4} and upgraded.legacy
    assert [kind for kind, _ in unpack(journal[1])][:1] == [InputKind.TICK]
