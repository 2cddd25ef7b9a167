"""Merge quality on the simulator's ground truth, through the real rules (no broker: the same
normalize and cases code the worker runs, fed in the order agencies send)."""

from __future__ import annotations

import pytest

from connectors.scoring import score
from connectors.simulator import SimConfig, iter_truth_lines, simulate
from schemas.codec import AvroCodec
from schemas.models import CanonicalEvent, Election
from schemas.topics import EVENTS, raw_topic
from streams.rules.calendar import default_calendar
from streams.rules.normalize import normalize_record
from streams.rules.policy import load_policies
from streams.rules.stage import CaseStage, InputKind

pytestmark = pytest.mark.unit
CODEC = AvroCodec()


@pytest.mark.parametrize("election", [Election.PILKADA_2024, Election.PEMILU_2024])
def test_precision_and_recall_on_the_ground_truth(election: Election) -> None:
    sim = simulate(SimConfig(election=election, cases=800, duplicate_rate=0.2,
                             name_only_rate=0.1, seed=7))
    stage = CaseStage(CODEC, default_calendar(), load_policies())
    for ev in sim.events:
        assert ev.record is not None
        topic = raw_topic(ev.agency)
        raw = CODEC.encode(ev.record.avro_name, ev.record.to_avro(), topic=topic)
        _, canonical = normalize_record(topic, ev.record.source_id.encode(), CODEC.decode(raw))
        stage.take(InputKind.EVENT, CODEC.encode(CanonicalEvent.avro_name, canonical,
                                                 topic=EVENTS))
    result = score(iter_truth_lines(sim), stage.book.cases.values())
    print(result.line())
    assert result.events_missing == 0
    assert result.precision >= 0.99 and result.recall >= 0.98, result.line()
    assert result.split_cases == 0 and result.wrong_state == 0, result.line()
