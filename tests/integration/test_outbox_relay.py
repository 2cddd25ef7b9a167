"""The outbox relay loses nothing when killed: SIGKILL mid-drain several times, then a last run."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from connectors.outbox import agency_engine, enqueue, outbox
from connectors.samples import sample_reports
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.topics import CASES
from tests.fixtures.kafka_tools import consume_until
from tests.fixtures.national_record import latest_cases
from tests.fixtures.waiting import poll_until
from tests.helpers import REPO

pytestmark = pytest.mark.integration
ROWS = 3000
BATCH = 100


def _relay(db: str, bootstrap: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env["NETRAL_KAFKA_BOOTSTRAP"] = bootstrap
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "connector", "run", "--agency", "bawaslu",
         "--database", db, "--once", "--batch-size", str(BATCH)],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigkill_mid_drain_loses_nothing(topics: KafkaConnection, database_url: str,
                                         stream_worker: dict[str, str]) -> None:
    """On the agency's SQLite and on its PostgreSQL; the stream keeps each row exactly once."""
    db = database_url
    engine = agency_engine(db)
    codec = AvroCodec()
    seed = random.randrange(10**9)
    reports = sample_reports(ROWS, seed=seed)
    for i in range(0, ROWS, 250):  # the agency's own transactions: record + outbox row together
        with engine.begin() as conn:
            for record in reports[i:i + 250]:
                enqueue(conn, record, codec)
    rng = random.Random(seed)
    kills = 0
    for _ in range(3):
        proc = _relay(db, topics.bootstrap)
        # kill once some rows are marked sent, at a random point of the drain
        target = rng.randint(BATCH, ROWS // 2)

        def sent_or_exited(proc: subprocess.Popen[bytes] = proc, target: int = target) -> bool:
            if proc.poll() is not None:
                return True
            with engine.connect() as conn:
                return bool(conn.execute(select(func.count()).where(
                    outbox.c.sent_at.is_not(None))).scalar_one() >= target)
        poll_until(sent_or_exited, 60, f"the relay marked {target} rows sent")
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    final = _relay(db, topics.bootstrap)
    out, _ = final.communicate(timeout=120)
    assert final.returncode == 0, out.decode()
    with engine.connect() as conn:
        unsent = conn.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar_one()
    assert unsent == 0
    keys = {r.source_id.encode() for r in reports}
    records = asyncio.run(consume_until(
        topics, ["netral.raw.bawaslu"],
        lambda rs: keys <= {r.key for r in rs}, timeout_s=120))
    ours = [r for r in records if r.key in keys]
    assert {r.key for r in ours} == keys, "every outbox row reached the topic"
    duplicates = len(ours) - len(keys)
    # at most the acknowledged-but-unmarked batch of each killed relay is sent again
    assert duplicates <= kills * BATCH, (duplicates, kills)
    assert kills >= 1, "the relay finished before any kill: the test proved nothing"

    # Downstream, the re-sent rows are dropped by event id: each row is one source of one case.
    wanted = {f"bawaslu:{r.source_id}" for r in reports}

    def kept(rs: list) -> dict[str, list[str]]:
        homes: dict[str, list[str]] = {}
        for case in latest_cases(rs).values():
            for source in case.sources:
                if source.event_id in wanted:
                    homes.setdefault(source.event_id, []).append(case.case_id)
        return homes

    cases = asyncio.run(consume_until(topics, [CASES], lambda rs: len(kept(rs)) == len(wanted),
                                      timeout_s=240))
    homes = kept(cases)
    assert set(homes) == wanted and all(len(h) == 1 for h in homes.values()), \
        "a re-sent row became a second event in the national record"
