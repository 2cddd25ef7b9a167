"""The case book's derived indexes stay in step with the maps they are derived from.

The book keeps indexes so that an event costs O(its own case), not O(partition): the register
numbers whose orphans can be adopted (``adoptable``), the cases by deadline (``by_deadline``),
and the persistent map's own buckets.
These tests rebuild each index from scratch after every input of a shuffled simulated wave
(decisions before their reports, so orphans wait and are adopted) and compare.
"""

from __future__ import annotations

import random

import pytest

from connectors.simulator import SimConfig, simulate
from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage
from schemas.models import CanonicalEvent
from schemas.topics import EVENTS, raw_topic
from streams.rules.calendar import default_calendar
from streams.rules.cases import CaseBook, deadline_index, nameless_by_kind
from streams.rules.normalize import normalize_record
from streams.rules.pmap import PMap
from streams.rules.policy import load_policies
from streams.rules.stage import CaseStage, InputKind
from tests.unit.test_rules_snapshot import base_inputs

pytestmark = pytest.mark.unit
CODEC = AvroCodec()


def _adoptable(book: CaseBook) -> frozenset[str]:
    return frozenset(r for r in book.orphans if r in book.by_ref)


def test_adoptable_matches_orphans_and_register_numbers_after_every_input() -> None:
    sim = simulate(SimConfig(cases=150, duplicate_rate=0.2, name_only_rate=0.1, seed=3))
    events = list(sim.events)
    random.Random(3).shuffle(events)  # decisions before their reports: orphans
    stage = CaseStage(CODEC, default_calendar(), load_policies())
    parked = adopted = 0
    for ev in events:
        assert ev.record is not None
        topic = raw_topic(ev.agency)
        _, canonical = normalize_record(topic, ev.record.source_id.encode(),
                                        CODEC.decode(CODEC.encode_record(ev.record, topic=topic)))
        before = len(stage.book.orphans)
        stage.take(InputKind.EVENT, CODEC.encode(CanonicalEvent.avro_name, canonical,
                                                 topic=EVENTS))
        after = len(stage.book.orphans)
        parked += after > before
        adopted += after < before
        # Every event ends with the orphans of known register numbers adopted.
        assert stage.book.adoptable == _adoptable(stage.book) == frozenset()
        # and the index of cases without a NIP (kind, incident week) as built from scratch
        assert dict(stage.book.nameless_by_kind.items()) == dict(
            nameless_by_kind(stage.book.cases.values()).items())
        # and each case's fold goes on from the very record the book publishes (one in memory)
        case_id = stage.book.seen.get(str(canonical["event_id"]))
        if case_id:
            assert stage.book.logs[case_id].fold.record is stage.book.cases[case_id]
    assert parked > 0 and adopted > 0  # the wave exercised both paths
    assert len(stage.book.nameless_by_kind) > 1  # more than one bucket was in use


def test_deadline_index_matches_the_cases_after_every_input_and_tick() -> None:
    """``by_deadline`` (what a deadline scan reads instead of every case) is the cases'
    ``next_deadline`` as built from scratch, after every event and every tick that escalates."""
    stage = CaseStage(CODEC, default_calendar(), load_policies())
    steps = days = 0
    for kind, value in base_inputs(120):
        try:
            out = stage.take(kind, value)
        except InvalidMessage:  # e.g. a late verification: to the DLQ, the book unchanged
            continue
        if kind is InputKind.TICK:
            steps += sum(t.rule.startswith("deadline.") for t in out.transitions)
        assert dict(stage.book.by_deadline.items()) == dict(
            deadline_index(stage.book.cases.values()).items())
        days = max(days, len(stage.book.by_deadline))
    assert steps > 0  # ticks took escalation steps (each moves a case's deadline)
    assert days > 1  # cases were due on several days at once


def test_pmap_reads_and_iterates_like_a_dict_bucket_by_bucket() -> None:
    keys = [f"k{i}" for i in range(2000)]
    m: PMap[int] = PMap()
    for i, k in enumerate(keys):
        m = m.set(k, i)
    m = m.delete("k7").delete("absent")
    plain = {k: i for i, k in enumerate(keys) if k != "k7"}
    assert len(m) == len(plain) and dict(m.items()) == plain
    assert m.get("k7") is None and m.get("k7", -1) == -1 and m.get("k8") == 8
    assert "k8" in m and "k7" not in m and 8 not in m
    assert list(m) == [k for k, _ in m.items()] and list(m.values()) == [v for _, v in m.items()]
    assert PMap(plain) == m and list(PMap(plain)) == list(m)
