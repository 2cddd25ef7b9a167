"""A snapshot of the cases stage restores a stage that behaves exactly as the original.

The inputs are a simulated Pilkada wave through the real normalize rules, with deadline ticks
(escalation up to BLOCK), operator reviews of the NEEDS_REVIEW cases (merge and keep-separate),
SIASN results of the orders the stage issued (unblocks close cases), a policy update and a
purge, generated while the original stage runs. At several cut points the original is
snapshotted; each restored stage then takes the rest of the inputs and must give the same
outputs, input by input, and the same final book as the original.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.simulator import SimConfig, simulate
from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage, UnusableSnapshot
from schemas.models import (
    AvroRecord,
    CanonicalEvent,
    CaseState,
    DeadlineTick,
    Election,
    OrderAction,
    OrderOutcome,
    PurgeCommand,
    ReviewAction,
    ReviewDecision,
    SiasnOrderResult,
)
from schemas.topics import EVENTS, raw_topic
from streams.rules.calendar import default_calendar
from streams.rules.cases import Outputs
from streams.rules.normalize import normalize_record
from streams.rules.policy import load_policies
from streams.rules.snapshot import FORMAT, Manifest, SnapshotWriter, dump, load
from streams.rules.stage import CaseStage, InputKind
from streams.rules.stored import StoredEvent
from streams.rules.stored import load as load_event
from tests.unit.test_rules_factories import recommended, sanctioned, verified
from tests.unit.test_rules_policy import update

pytestmark = pytest.mark.unit
CODEC = AvroCodec()
CAL = default_calendar()
CUTS = (0.0, 0.2, 0.5, 0.8, 1.0)  # shares of the inputs taken before the snapshot

Result = Outputs | str  # the outputs of one input, or the InvalidMessage it raised


def enc(record: AvroRecord) -> bytes:
    return CODEC.encode(record.avro_name, record.to_avro())


def event_inputs(cases: int) -> list[tuple[datetime, InputKind, bytes]]:
    sim = simulate(SimConfig(election=Election.PILKADA_2024, cases=cases, duplicate_rate=0.2,
                             name_only_rate=0.15, seed=11))
    out: list[tuple[datetime, InputKind, bytes]] = []
    for ev in sim.events:
        assert ev.record is not None
        topic = raw_topic(ev.agency)
        raw = CODEC.encode(ev.record.avro_name, ev.record.to_avro(), topic=topic)
        _, fields = normalize_record(topic, ev.record.source_id.encode(), CODEC.decode(raw))
        canonical: dict[str, Any] = dict(fields)
        value = CODEC.encode(CanonicalEvent.avro_name, canonical, topic=EVENTS)
        out.append((canonical["recorded_at"], InputKind.EVENT, value))
        person: dict[str, Any] = canonical["person"] or {}
        if canonical["event_type"] == "VIOLATION_REPORTED" and person.get("nip") and (
                len(out) % 6 == 0):
            out.append(twin(canonical))
        if canonical["event_type"] == "VIOLATION_REPORTED" and len(out) % 5 == 0:
            out.append(early(canonical))
    never = verified("orphan-forever", events_start(out), ref="9999/Reg/LP/PB/32.73/10/2024",
                     nip=None)
    return [*out, (never.recorded_at, InputKind.EVENT, enc(never))]


def events_start(out: list[tuple[datetime, InputKind, bytes]]) -> datetime:
    return min(t for t, _, _ in out) + timedelta(hours=1)


def early(canonical: dict[str, Any]) -> tuple[datetime, InputKind, bytes]:
    """A recommendation sent two days before its report arrives: it waits as an orphan, then,
    adopted, parked in the case until the verification it needs."""
    report = CanonicalEvent.from_fastavro(canonical)
    assert report.case_ref is not None
    sent = report.recorded_at - timedelta(days=2)
    event = recommended(f"early-{report.source_id}", report.occurred_at + timedelta(minutes=30),
                        ref=report.case_ref, nip=report.person.nip if report.person else None)
    return sent, InputKind.EVENT, enc(event.model_copy(update={"recorded_at": sent}))


def twin(canonical: dict[str, Any]) -> tuple[datetime, InputKind, bytes]:
    """A name-only report a day later naming someone close to the report's person
    ("Budi" -> "Budiman"): in the review band, so it opens a NEEDS_REVIEW case."""
    event = CanonicalEvent.from_fastavro(canonical)
    assert event.person is not None and event.case_ref is not None
    first, *rest = event.person.name.split()
    later = event.occurred_at + timedelta(days=1)
    who = event.person.model_copy(update={"nip": None, "name": " ".join([first + "man", *rest]),
                                          "position": None})
    copy = event.model_copy(update={
        "event_id": event.event_id + "-tw", "source_id": event.source_id + "-tw",
        "case_ref": event.case_ref + "-tw", "nip": None, "person": who, "occurred_at": later,
        "recorded_at": later})
    return later, InputKind.EVENT, enc(CanonicalEvent.model_validate(copy.model_dump()))


def base_inputs(cases: int) -> list[tuple[InputKind, bytes]]:
    """Events in send order with a tick every other day through the wave and 5 months after,
    and a PolicyUpdate shortening the PPK's intervals part-way."""
    events = event_inputs(cases)
    first, last = events[0][0], events[-1][0]
    ticks = []
    day = first.date()
    while day <= (last + timedelta(days=150)).date():
        when = datetime(day.year, day.month, day.day, 2, tzinfo=first.tzinfo)
        ticks.append((when, InputKind.TICK, enc(DeadlineTick(tick_id=f"t-{day}", at=when,
                                                             issued_by="test"))))
        day += timedelta(days=2)
    policy = update(effective=date(2024, 11, 1), warning=4, sid="pu-snap")
    policy = policy.model_copy(update={"occurred_at": first + timedelta(days=20),
                                       "recorded_at": first + timedelta(days=20)})
    merged = sorted([*events, *ticks, (policy.recorded_at, InputKind.EVENT, enc(policy))],
                    key=lambda x: x[0])
    return [(kind, value) for _, kind, value in merged]


@dataclass
class Run:
    """The original stage's run: every input (follow-ups included), its result, snapshots."""

    inputs: list[tuple[InputKind, bytes]] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    snapshots: dict[int, tuple[list[bytes], Manifest]] = field(default_factory=dict)
    stage: CaseStage | None = None


def take(stage: CaseStage, kind: InputKind, value: bytes) -> Result:
    try:
        return stage.take(kind, value)
    except InvalidMessage as err:
        return f"{type(err).__name__}: {err}"


def follow_ups(out: Outputs, stage: CaseStage, rng: random.Random, n: int
               ) -> list[tuple[InputKind, bytes]]:
    """What operators and SIASN send back after these outputs (reviews, order results)."""
    now = stage.clock + timedelta(minutes=1)
    made: list[tuple[InputKind, bytes]] = []
    for case in out.cases:
        if case.state is CaseState.NEEDS_REVIEW and case.match and case.match.candidates:
            target = case.match.candidates[0].case_id
            if rng.random() < 0.5 and target != case.case_id:
                decision = ReviewDecision(command_id=f"rv-{n}-{case.case_id[:8]}",
                                          case_id=case.case_id, action=ReviewAction.MERGE,
                                          target_case_id=target, decided_by="op",
                                          reason="same person", at=now)
            else:
                decision = ReviewDecision(command_id=f"rv-{n}-{case.case_id[:8]}",
                                          case_id=case.case_id, action=ReviewAction.SPLIT,
                                          event_ids=tuple(s.event_id for s in case.sources),
                                          decided_by="op", reason="someone else", at=now)
            made.append((InputKind.REVIEW, enc(decision)))
    for order in out.orders:
        if order.action is OrderAction.BLOCK and rng.random() < 0.3:  # the PPK acts at last
            case = stage.book.cases[order.case_id]
            if case.case_refs:
                made.append((InputKind.EVENT, enc(sanctioned(
                    f"snc-{n}-{case.case_id[:8]}", now, ref=case.case_refs[0], nip=order.nip))))
        result = SiasnOrderResult(order_id=order.order_id, case_id=order.case_id, nip=order.nip,
                                  action=order.action, outcome=OrderOutcome.CONFIRMED, at=now,
                                  attempts=1)
        made.append((InputKind.RESULT, enc(result)))
    return made


def original_run(cases: int, cut_shares: tuple[float, ...]) -> Run:
    base = base_inputs(cases)
    purge_at = int(len(base) * 0.9)
    cuts = {int(len(base) * s) for s in cut_shares}
    stage = CaseStage(CODEC, CAL, load_policies())
    run, rng = Run(), random.Random(3)
    pending: list[tuple[int, tuple[InputKind, bytes]]] = []
    for i, item in enumerate(base):
        if i in cuts:
            run.snapshots[len(run.inputs)] = dump(stage, chunk_bytes=16 * 1024)
        due = [p for p in pending if p[0] <= i]
        pending = [p for p in pending if p[0] > i]
        queue = [x for _, x in due] + [item]
        if i == purge_at:
            cutoff = stage.clock - timedelta(days=20)
            queue.append((InputKind.PURGE, enc(PurgeCommand(
                command_id="purge-1", older_than=cutoff, issued_by="op", at=stage.clock))))
        for kind, value in queue:
            result = take(stage, kind, value)
            run.inputs.append((kind, value))
            run.results.append(result)
            if isinstance(result, Outputs):
                pending += [(i + 5, x) for x in follow_ups(result, stage, rng, len(run.inputs))]
    if 1.0 in cut_shares:
        run.snapshots[len(run.inputs)] = dump(stage, chunk_bytes=16 * 1024)
    run.stage = stage
    return run


@pytest.fixture(scope="module")
def run() -> Run:
    return original_run(150, CUTS)


def test_the_inputs_reach_every_kind_of_change(run: Run) -> None:
    """The run exercises what a snapshot must carry: reviews, blocks, unblocks, a purge."""
    outs = [r for r in run.results if isinstance(r, Outputs)]
    orders = [o.action for r in outs for o in r.orders]
    kinds = {k for k, _ in run.inputs}
    assert {InputKind.EVENT, InputKind.TICK, InputKind.REVIEW, InputKind.RESULT,
            InputKind.PURGE} <= kinds
    assert OrderAction.BLOCK in orders and OrderAction.UNBLOCK in orders
    assert any(r.tombstones for r in outs)  # a review merge
    assert any(c.state is CaseState.CLOSED for r in outs for c in r.cases)  # unblock confirmed
    assert run.stage is not None
    book = run.stage.book
    assert any(c not in book.logs for c in book.cases)  # purged cases: a record without a log
    assert book.orphans  # one waits for ever
    assert len(run.snapshots) == len(CUTS)
    restored = [load(m, c, CODEC, CAL).book for c, m in run.snapshots.values()]
    assert any(len(b.orphans) > 1 for b in restored)  # some waiting at a cut point
    assert any(log.fold.parked for b in restored for log in b.logs.values())


@pytest.mark.parametrize("share", CUTS)
def test_a_restored_stage_behaves_exactly_as_the_original(run: Run, share: float) -> None:
    assert run.stage is not None
    cut = sorted(run.snapshots)[CUTS.index(share)]
    chunks, manifest = run.snapshots[cut]
    restored = load(Manifest.decode(manifest.encode()), chunks, CODEC, CAL)
    assert restored.taken == manifest.taken and restored.entries == manifest.entries
    for i in range(cut, len(run.inputs)):
        kind, value = run.inputs[i]
        assert take(restored, kind, value) == run.results[i], f"input {i} of {len(run.inputs)}"
    original = run.stage
    assert restored.book == original.book
    assert restored.policies == original.policies
    assert (restored.clock, restored.taken) == (original.clock, original.taken)
    # and the iteration order of every map, which the rules depend on (matching, scans)
    for name in ("cases", "logs", "by_ref", "by_nip", "persons", "nameless",
                 "nameless_by_kind", "seen", "orphans"):
        assert list(getattr(restored.book, name)) == list(getattr(original.book, name)), name


def test_a_snapshot_of_the_restored_stage_is_the_same_bytes(run: Run) -> None:
    assert run.stage is not None
    chunks, manifest = dump(run.stage)
    again, manifest2 = dump(load(manifest, chunks, CODEC, CAL))
    assert again == chunks and manifest2 == manifest


def test_a_restored_book_holds_each_id_once_and_one_record_per_case(run: Run) -> None:
    """What makes a restored case cost about 9 KiB, not 18: the ids the maps and records
    share are one string each, and the fold's record is the published one."""
    assert run.stage is not None
    chunks, manifest = dump(run.stage)
    book = load(manifest, chunks, CODEC, CAL).book
    keys = {k: k for k in book.cases}
    for case_id, case in book.cases.items():
        assert case.case_id is keys[case_id]
        log = book.logs.get(case_id)
        if log is not None and log.fold.record is not None:
            assert log.fold.record is case
        for source in case.sources:
            if source.event_id in book.seen:
                seen_key = next(k for k in book.seen if k == source.event_id)
                assert seen_key is source.event_id


def test_a_small_chunk_limit_makes_many_chunks_under_it(run: Run) -> None:
    assert run.stage is not None
    writer = SnapshotWriter(run.stage, chunk_bytes=1024)
    chunks = list(writer.chunks())
    assert len(chunks) > 20 and all(len(c) <= 1024 for c in chunks)
    assert writer.manifest.sizes == tuple(len(c) for c in chunks)
    assert load(writer.manifest, chunks, CODEC, CAL).book == run.stage.book
    whole, _ = dump(run.stage)
    assert b"".join(chunks) == b"".join(whole)  # the limit only slices the same body


def test_an_empty_stage_round_trips() -> None:
    stage = CaseStage(CODEC, CAL, load_policies())
    chunks, manifest = dump(stage)
    back = load(manifest, chunks, CODEC, CAL)
    assert len(chunks) == 1 and back.book == stage.book and back.policies == stage.policies
    assert (back.clock, back.taken, back.entries) == (stage.clock, 0, 0)


@pytest.fixture(scope="module")
def small() -> tuple[list[bytes], Manifest]:
    stage = CaseStage(CODEC, CAL, load_policies())
    for kind, value in base_inputs(20)[:60]:
        take(stage, kind, value)
    stage.entries = 7
    return dump(stage, chunk_bytes=2048)


def test_a_missing_chunk_is_unusable(small: tuple[list[bytes], Manifest]) -> None:
    chunks, manifest = small
    assert len(chunks) > 3
    with pytest.raises(UnusableSnapshot, match=r"chunk 2 of \d+ is missing"):
        load(manifest, [*chunks[:2], None, *chunks[3:]], CODEC, CAL)
    with pytest.raises(UnusableSnapshot, match="chunks given"):
        load(manifest, chunks[:-1], CODEC, CAL)


def test_a_corrupt_chunk_is_unusable(small: tuple[list[bytes], Manifest]) -> None:
    chunks, manifest = small
    bad = bytearray(chunks[1])
    bad[100] ^= 0xFF
    with pytest.raises(UnusableSnapshot, match=r"chunk 1 of \d+ does not match its checksum"):
        load(manifest, [chunks[0], bytes(bad), *chunks[2:]], CODEC, CAL)


def test_a_body_that_does_not_parse_is_unusable_even_with_matching_checksums(
        small: tuple[list[bytes], Manifest]) -> None:
    chunks, manifest = small
    body = bytearray(b"".join(chunks))
    body[-5] ^= 0xFF  # inside the last frame
    forged = [bytes(body)]
    forged_manifest = replace(manifest, sizes=(len(body),),
                              checksums=(hashlib.sha256(body).hexdigest(),))
    with pytest.raises(UnusableSnapshot, match="unreadable"):
        load(forged_manifest, forged, CODEC, CAL)


@pytest.mark.parametrize("doc", [
    b'{"format": 99, "entries": 1, "taken": 1, "cases": 0, "bytes": 1,'
    b' "chunks": [{"bytes": 1, "sha256": "00"}]}',
    b"not json",
    b"",
    b'{"format": 1}',
])
def test_an_unknown_or_broken_manifest_is_unusable(doc: bytes) -> None:
    with pytest.raises(UnusableSnapshot):
        Manifest.decode(doc)


def test_an_unknown_format_is_refused_by_load(small: tuple[list[bytes], Manifest]) -> None:
    chunks, manifest = small
    with pytest.raises(UnusableSnapshot, match="this version reads formats 1, 2"):
        load(replace(manifest, format=FORMAT + 1), chunks, CODEC, CAL)
    assert load(manifest, chunks, CODEC, CAL).entries == 7


DATA = Path(__file__).parent / "data"


def test_a_format_1_snapshot_still_loads_into_the_same_book() -> None:
    """Written by format 1's writer (commit ca41f1e) from ``small``'s inputs: after an upgrade
    the journal below it is gone, so the worker must read it, not refuse it."""
    manifest = Manifest.decode((DATA / "snapshot-format1.manifest.json").read_bytes())
    assert manifest.format == 1
    loaded = load(manifest, [(DATA / "snapshot-format1.chunk").read_bytes()], CODEC, CAL)
    stage = CaseStage(CODEC, CAL, load_policies())
    for kind, value in base_inputs(20)[:60]:
        take(stage, kind, value)
    assert loaded.book == stage.book and (loaded.taken, loaded.entries) == (stage.taken, 7)
    # and it goes on as the original does
    for kind, value in base_inputs(20)[60:120]:
        assert take(loaded, kind, value) == take(stage, kind, value)
    assert loaded.book == stage.book


def test_a_case_log_keeps_the_events_bytes_as_consumed() -> None:
    stage = CaseStage(CODEC, CAL, load_policies())
    inputs = [(k, v) for k, v in base_inputs(5) if k is InputKind.EVENT][:20]
    for kind, value in inputs:
        take(stage, kind, value)
    consumed = {v for _, v in inputs}
    kept = [e for log in stage.book.logs.values() for e in log.entries
            if isinstance(e, StoredEvent)]
    assert kept and all(e.avro in consumed for e in kept)
    assert not any(isinstance(e, CanonicalEvent) for log in stage.book.logs.values()
                   for e in log.entries)
    again = load_event(kept[0])
    assert (again.event_id, again.occurred_at, again.event_type) == (
        kept[0].event_id, kept[0].occurred_at, kept[0].event_type)


def test_a_snapshot_keeps_the_stage_positions() -> None:
    stage = CaseStage(CODEC, CAL, load_policies())
    stage.positions.update({f"{EVENTS}:0": 61, "netral.deadline-ticks:0": 3})
    chunks, manifest = dump(stage)
    back = load(manifest, chunks, CODEC, CAL)
    assert back.positions == stage.positions and not back.legacy
    stage.legacy = True
    chunks, manifest = dump(stage)
    assert load(manifest, chunks, CODEC, CAL).legacy


def test_a_snapshot_from_before_positions_restores_a_legacy_stage() -> None:
    manifest = Manifest.decode((DATA / "snapshot-format1.manifest.json").read_bytes())
    loaded = load(manifest, [(DATA / "snapshot-format1.chunk").read_bytes()], CODEC, CAL)
    assert loaded.positions == {} and loaded.legacy
