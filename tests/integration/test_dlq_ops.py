"""Operators' DLQ tools on a real broker: list, show, and idempotent replay of fixed letters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from hub import dlq
from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.errors import SerializationError
from schemas.kafka import KafkaConnection
from tests.factories import encode, report
from tests.fixtures.kafka_tools import consume_until, produce
from tests.helpers import netral

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
RAW = "netral.raw.bawaslu"
DLQ = "netral.dlq.normalize"


def _letter_headers(reason: str, marker: bytes) -> list[tuple[str, bytes]]:
    why = DeadLetter.of(SerializationError(reason), stage="normalize", topic=RAW, partition=0,
                        offset=7, now=datetime.now(UTC))
    return [("test.mark", marker), *why.headers()]


def test_replay_resends_fixed_letters_once(topics: KafkaConnection, unique: str) -> None:
    fixed = report()  # valid under today's rules: it was rejected by an older hub version
    broken = report()
    marker = f"replay-{unique}".encode()
    asyncio.run(produce(topics, DLQ, [
        (fixed.source_id.encode(), encode(CODEC, fixed),
         _letter_headers("unknown Kemendagri region code (before the code list update)", marker)),
        (broken.source_id.encode(), b'{"json": true}', _letter_headers("looks like JSON", marker)),
    ]))

    def check(topic: str, key: bytes | None, value: bytes) -> None:
        from streams.rules.normalize import normalize_record

        normalize_record(topic, key, CODEC.decode(value))

    first = asyncio.run(dlq.replay(topics, "normalize", check=check))
    assert first.replayed >= 1
    failing = {lid for lid, _ in first.failures or []}
    letters = asyncio.run(dlq.list_letters(topics, ["normalize"]))
    ours = {x.key: x for x in letters if dict(x.headers).get("test.mark") == marker}
    assert ours[broken.source_id.encode()].id in failing
    assert ours[fixed.source_id.encode()].id not in failing

    replayed = asyncio.run(consume_until(
        topics, [RAW], lambda rs: any(r.key == fixed.source_id.encode()
                                      and dict(r.headers).get("netral.replayed.from") for r in rs)))
    copies = [r for r in replayed if r.key == fixed.source_id.encode()]
    assert len(copies) == 1
    assert dict(copies[0].headers)["test.mark"] == marker  # original headers kept
    assert copies[0].value == encode(CODEC, fixed)

    second = asyncio.run(dlq.replay(topics, "normalize", check=check))
    assert second.replayed == 0 and second.still_failing == 0


def test_list_and_show_from_the_cli(topics: KafkaConnection, unique: str) -> None:
    env = {"NETRAL_KAFKA_BOOTSTRAP": topics.bootstrap}
    bad = f"not-avro-{unique}".encode()
    asyncio.run(produce(topics, DLQ, [(b"k-" + unique.encode(), bad,
                                       _letter_headers(f"reason {unique}", b"list"))]))
    out = netral("dlq", "list", "--stage", "normalize", "--limit", "1000", env=env,
                 check=True).stdout
    assert f"reason {unique}" in out
    assert "counts: normalize=" in out
    letters = asyncio.run(dlq.list_letters(topics, ["normalize"]))
    ours = next(x for x in letters if x.value == bad)
    shown = netral("dlq", "show", ours.id, env=env, check=True).stdout
    assert f"reason {unique}" in shown and f"key: b'k-{unique}'" in shown


def test_bad_id_and_stage_are_one_line_errors(topics: KafkaConnection) -> None:
    env = {"NETRAL_KAFKA_BOOTSTRAP": topics.bootstrap}
    proc = netral("dlq", "show", "nonsense", env=env)
    assert proc.returncode == 2 and "expected <stage>:<partition>:<offset>" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = netral("dlq", "replay", "--stage", "nowhere", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
