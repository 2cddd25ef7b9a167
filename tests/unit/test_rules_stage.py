"""The cases stage: inputs by topic, the journal, and a replay that reaches the same book."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage
from schemas.models import (
    AvroRecord,
    CaseState,
    DeadlineTick,
    EventType,
    OrderAction,
    OrderOutcome,
    SiasnOrder,
    SiasnOrderResult,
)
from streams.rules.stage import CaseStage, InputKind, jakarta_date, pack, unpack
from tests.unit.test_rules_factories import (
    CAL,
    POLICIES,
    at,
    person,
    recommended,
    report,
    review,
    sanctioned,
)

pytestmark = pytest.mark.unit
CODEC = AvroCodec()


def enc(record: AvroRecord) -> bytes:
    return CODEC.encode(record.avro_name, record.to_avro())


def tick(day: str, hour: int = 2) -> bytes:
    return enc(DeadlineTick(tick_id=f"t-{day}", at=at(day, hour), issued_by="test"))


def new_stage() -> CaseStage:
    return CaseStage(CODEC, CAL, POLICIES)


def overdue_case_inputs() -> list[tuple[InputKind, bytes]]:
    """The domain's example: recommended 3 Apr 2024, never acted on, then sanctioned in June."""
    who = person()
    events = [report("r1", at("2024-04-01"), who=who),
              review("r1:f", at("2024-04-02"), EventType.REVIEW_FORWARDED),
              recommended("rec1", at("2024-04-03"))]
    inputs = [(InputKind.EVENT, enc(e)) for e in events]
    for day in ("2024-05-03", "2024-05-03", "2024-05-14", "2024-05-21"):
        inputs.append((InputKind.TICK, tick(day)))
    inputs.append((InputKind.EVENT, enc(sanctioned("s1", at("2024-06-10", 8)))))
    return inputs


def test_journal_entry_round_trips_kinds_and_bytes_of_a_batch() -> None:
    batch = [(InputKind.TICK, b"\xc3\x01abc"), (InputKind.EVENT, b""),
             (InputKind.REVIEW, bytes(range(256)) * 3)]
    assert list(unpack(pack(batch))) == batch
    assert list(unpack(b"")) == []


def test_jakarta_date_is_the_wib_calendar_day() -> None:
    assert jakarta_date(datetime(2024, 5, 2, 16, 59, tzinfo=UTC)) == date(2024, 5, 2)
    assert jakarta_date(datetime(2024, 5, 2, 17, 0, tzinfo=UTC)) == date(2024, 5, 3)


def test_ticks_escalate_to_one_block_and_the_sanction_unblocks() -> None:
    stage = new_stage()
    orders: list[SiasnOrder] = []
    for kind, value in overdue_case_inputs():
        orders += stage.take(kind, value).orders
    assert [o.action for o in orders] == [OrderAction.BLOCK, OrderAction.UNBLOCK]
    (case,) = stage.book.cases.values()
    assert case.state is CaseState.SANCTIONED and case.blocked
    result = SiasnOrderResult(order_id=orders[1].order_id, case_id=case.case_id,
                              nip=case.person.nip, action=OrderAction.UNBLOCK,
                              outcome=OrderOutcome.CONFIRMED,
                              at=at("2024-06-11"), attempts=1)
    out = stage.take(InputKind.RESULT, enc(result))
    assert [c.state for c in out.cases] == [CaseState.CLOSED]
    assert stage.taken == len(overdue_case_inputs()) + 1


def test_replay_of_the_journal_reaches_the_same_book_and_policies() -> None:
    live = new_stage()
    inputs = overdue_case_inputs()
    for kind, value in inputs:
        live.take(kind, value)
    journal = [pack(inputs[:2]), pack(inputs[2:3]), pack(inputs[3:])]  # three batches
    rebuilt = new_stage()
    assert rebuilt.replay(journal) == len(inputs) and rebuilt.entries == 3
    assert rebuilt.book == live.book and rebuilt.policies == live.policies
    assert rebuilt.taken == live.taken and rebuilt.clock == live.clock == at("2024-06-10", 8)


def test_an_input_taken_again_after_a_crash_changes_nothing() -> None:
    stage = new_stage()
    inputs = overdue_case_inputs()
    for kind, value in inputs:
        stage.take(kind, value)
    book = stage.book
    for kind, value in inputs:  # the offsets were not committed: everything comes again
        out = stage.take(kind, value)
        assert not out.orders and not out.transitions
    assert stage.book.cases == book.cases


@pytest.mark.parametrize(("kind", "value", "phrase"), [
    (InputKind.EVENT, b"\x00garbage", "no schema registry"),
    (InputKind.EVENT, b"", "empty message"),
    (InputKind.TICK, None, "empty message"),
    (InputKind.REVIEW, enc(DeadlineTick(tick_id="t", at=at("2024-05-03"), issued_by="x")),
     "wrong schema"),
])
def test_bad_input_is_invalid_and_leaves_the_stage_as_it_was(kind: InputKind,
                                                             value: bytes | None,
                                                             phrase: str) -> None:
    stage = new_stage()
    for k, v in overdue_case_inputs()[:3]:
        stage.take(k, v)
    book, taken = stage.book, stage.taken
    with pytest.raises(InvalidMessage, match=phrase):
        stage.take(kind, value)
    assert stage.book is book and stage.taken == taken


def test_a_tick_from_the_future_is_refused() -> None:
    future = datetime(2999, 1, 1, tzinfo=UTC)
    raw = {"tick_id": "t", "at": future, "issued_by": "x"}
    with pytest.raises(InvalidMessage, match="future"):
        new_stage().take(InputKind.TICK, CODEC.encode(DeadlineTick.avro_name, raw))
