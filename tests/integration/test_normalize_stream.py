"""normalize on a real broker and a real Faust worker: good records become CanonicalEvents, every
kind of bad input lands in netral.dlq.normalize with a reason, and the stream keeps going."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from schemas.codec import AvroCodec
from schemas.dlq import H_ERROR_MESSAGE, H_STAGE, H_TOPIC, DeadLetter
from schemas.errors import SerializationError
from schemas.kafka import KafkaConnection
from schemas.models import CanonicalEvent, SanctionDecision
from tests.factories import encode, report
from tests.fixtures.kafka_tools import consume_until, produce

pytestmark = pytest.mark.integration
RAW = "netral.raw.bawaslu"
CODEC = AvroCodec()


def _keys(records: list, keys: set[bytes]) -> list:
    return [r for r in records if r.key in keys]


def _bad_inputs() -> dict[str, tuple[bytes, bytes, str]]:
    """name -> (key, value, a phrase the DLQ reason must contain)."""
    good = report()
    nip = good.accused.nip
    assert nip is not None
    body = encode(CODEC, good)
    wrong = SanctionDecision(
        source_id="x", recorded_at=datetime.now(UTC) - timedelta(days=1),
        election="PILKADA_2024", case_ref="r", nip=nip, ppk_name="p", agency_code="a",
        level="SEDANG", sanction="s", decree_number="d",
        decided_on=datetime.now(UTC).date() - timedelta(days=2))

    def case(**changes: object) -> bytes:
        return encode(CODEC, good, **changes)

    key = good.source_id.encode()

    future = (datetime.now(UTC) + timedelta(days=30)).date()
    return {
        "random bytes": (b"k", os.urandom(64).replace(b"\xc3", b"\x01"), "not an Avro message"),
        "truncated avro": (b"k", body[: len(body) // 2], "Avro body"),
        "wrong schema": (b"x", CODEC.encode(wrong.avro_name, wrong.to_avro()), "wrong schema"),
        "unknown fingerprint": (b"k", b"\xc3\x01" + b"\x11" * 8 + body[10:],
                                "unknown schema fingerprint"),
        "nip 17 digits": (key, case(accused__nip=nip[:17]), "18 digits"),
        "nip 19 digits": (key, case(accused__nip=nip + "1"), "18 digits"),
        "nip impossible date": (key, case(accused__nip="19851345" + nip[8:]), "not a real date"),
        "nip gender 3": (key, case(accused__nip=nip[:14] + "3" + nip[15:]), "gender digit 3"),
        "future incident date": (key, case(incident_date=future), "future"),
        "unknown region": (key, case(region_code="99.99"), "unknown Kemendagri region"),
        "5 MB message": (b"k", body + b"\x00" * (5 * 1024 * 1024), "exceeds"),
        "empty key": (b"", body, "empty key"),
        "json": (b"k", json.dumps({"source_id": "x", "nip": nip}).encode(), "looks like JSON"),
        "confluent without registry": (b"k", b"\x00\x00\x00\x00\x07" + body[10:],
                                       "no schema registry"),
    }


def test_good_records_become_canonical_events(stream_worker: dict[str, str],
                                              kafka: KafkaConnection) -> None:
    reports = [report() for _ in range(5)]
    asyncio.run(produce(kafka, RAW, [(r.source_id.encode(), encode(CODEC, r), None)
                                     for r in reports]))
    wanted = {f"bawaslu:{r.source_id}" for r in reports}

    def decoded(records: list) -> dict[str, CanonicalEvent]:
        out = {}
        for rec in records:
            if CANONICAL_ID(rec) in wanted:
                ev = CanonicalEvent.from_avro(CODEC.decode(rec.value).value)
                out[ev.event_id] = ev
        return out

    records = asyncio.run(consume_until(kafka, ["netral.events"],
                                        lambda rs: len(decoded(rs)) == len(wanted)))
    events = decoded(records)
    for r in reports:
        ev = events[f"bawaslu:{r.source_id}"]
        assert ev.event_type == "VIOLATION_REPORTED"
        assert ev.person == r.accused and ev.region_code == r.region_code
        assert ev.case_ref == r.register_number
    # keyed by NIP, so every event about one person meets in one partition downstream
    by_id = {CANONICAL_ID(rec): rec.key for rec in records}
    assert all(by_id[f"bawaslu:{r.source_id}"] == cast(str, r.accused.nip).encode()
               for r in reports)


def CANONICAL_ID(rec: object) -> str | None:
    """The event id of a netral.events record; None for another test's poison message (the
    session broker is shared, and the early-warning and DLQ tests write junk on purpose)."""
    try:
        return str(CODEC.decode(rec.value).value["event_id"])  # type: ignore[attr-defined]
    except SerializationError:
        return None


def test_every_bad_input_lands_in_the_dlq_and_the_stream_goes_on(
        stream_worker: dict[str, str], kafka: KafkaConnection) -> None:
    bad = _bad_inputs()
    records: list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]] = []
    # each bad record is followed by a good one, so the last good one proves the stream went on
    goods = []
    marks: dict[bytes, str] = {}
    for i, (name, (key, value, _)) in enumerate(bad.items()):
        # a unique header marks each bad record; keys are part of what we test
        mark = f"{name}-{i}-{os.getpid()}-{datetime.now(UTC).timestamp()}".encode()
        marks[mark] = name
        records.append((key, value, [("test.mark", mark)]))
        good = report()
        goods.append(good)
        records.append((good.source_id.encode(), encode(CODEC, good), None))
    asyncio.run(produce(kafka, RAW, records))

    def found(rs: list) -> bool:
        return len(_letters(rs, marks)) == len(marks)

    def _letters(rs: list, marks: dict[bytes, str]) -> dict[str, DeadLetter]:
        out = {}
        for r in rs:
            h = dict(r.headers)
            if h.get("test.mark") in marks:
                out[marks[h["test.mark"]]] = DeadLetter.from_headers(r.headers)
        return out

    dlq = asyncio.run(consume_until(kafka, ["netral.dlq.normalize"], found, timeout_s=90))
    letters = _letters(dlq, marks)
    for name, (_, _, phrase) in bad.items():
        letter = letters[name]
        assert phrase in letter.reason, f"{name}: {letter.reason!r}"
        assert letter.stage == "normalize" and letter.source_topic == RAW
    # the original bytes are kept untouched
    by_name = {marks[dict(r.headers)["test.mark"]]: r for r in dlq
               if dict(r.headers).get("test.mark") in marks}
    for name, (_, value, _) in bad.items():
        assert by_name[name].value == value, name
        assert dict(by_name[name].headers)[H_STAGE] == b"normalize"
        assert dict(by_name[name].headers)[H_TOPIC] == RAW.encode()
        assert H_ERROR_MESSAGE in dict(by_name[name].headers)
    # the worker kept consuming: every good record after each bad one was normalised
    wanted = {f"bawaslu:{g.source_id}" for g in goods}
    asyncio.run(consume_until(
        kafka, ["netral.events"],
        lambda rs: wanted <= {CANONICAL_ID(r) for r in rs}, timeout_s=90))
