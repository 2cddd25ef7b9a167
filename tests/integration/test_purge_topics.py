"""`netral purge` reaches the compacted netral.cases: on a real broker with a real worker, the
latest record of every purged case carries no NIP and no name, and the counts by state stay.

Its own broker (``private_broker``): a purge touches every old closed case the worker holds, so
it must not run on the session broker other tests share.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from connectors.scoring import score
from connectors.sim_runner import publish_wave
from connectors.simulator import SimConfig, iter_truth_lines, simulate
from schemas.kafka import KafkaConnection
from schemas.models import CaseRecord
from schemas.privacy import REDACTED
from schemas.topics import CASES, PURGE_COMMANDS
from sinks.sql import migrate
from streams.rules.purge import purgeable
from tests.fixtures.kafka_tools import consume_until
from tests.fixtures.national_record import latest_cases
from tests.fixtures.worker_process import WorkerProcess
from tests.helpers import netral

pytestmark = pytest.mark.integration


def _latest_bytes(records: list[ConsumerRecord]) -> dict[str, bytes]:
    """The value compaction keeps per key (the last one written)."""
    return {r.key.decode(): r.value for r in records if r.key and r.value is not None}


def test_purge_republishes_closed_cases_without_persons(private_broker: KafkaConnection,
                                                        tmp_path: Path) -> None:
    sim = simulate(SimConfig(cases=60, duplicate_rate=0.1, name_only_rate=0.1, seed=7))
    truth = list(iter_truth_lines(sim))
    asyncio.run(publish_wave(sim, private_broker, tmp_path / "outboxes"))
    worker = WorkerProcess(private_broker, tmp_path, prefix="netral-kill")
    worker.start()
    try:
        def complete(rs: list[ConsumerRecord]) -> bool:  # every event of the wave in a case
            result = score(truth, latest_cases(rs).values())
            return result.events_missing == 0 and result.cases_found == len(truth)

        records = asyncio.run(consume_until(private_broker, [CASES], complete, timeout_s=300))
        before = latest_cases(records)
        now = datetime.now(UTC)
        doomed = {i: c for i, c in before.items() if purgeable(c, now)}
        assert doomed, "the wave should close some cases (rejected, not proven, cancelled...)"
        kept = {i: c for i, c in before.items() if i not in doomed}
        assert any(c.person.nip for c in kept.values()), "open cases with a NIP should remain"

        url = f"sqlite:///{tmp_path / 'netral.db'}"
        migrate.upgrade(url)
        env = {"NETRAL_DATABASE_URL": url, "NETRAL_KAFKA_BOOTSTRAP": private_broker.bootstrap}
        out = netral("purge", "--older-than", "1d", env=env, check=True).stdout
        assert f"to {PURGE_COMMANDS}" in out

        def scrubbed(rs: list[ConsumerRecord]) -> bool:
            latest = latest_cases(rs)
            return len(latest) == len(before) and all(
                latest[i].version > doomed[i].version for i in doomed)

        after_records = asyncio.run(consume_until(private_broker, [CASES], scrubbed,
                                                  timeout_s=180))
    finally:
        worker.stop()
    after = latest_cases(after_records)
    print(f"purged {len(doomed)} of {len(before)} cases on {CASES}")
    assert set(after) == set(before)
    raw = _latest_bytes(after_records)
    for case_id, old in doomed.items():
        new: CaseRecord = after[case_id]
        assert new.person.nip is None and new.person.name == REDACTED, case_id
        assert new.version == old.version + 1 and new.state is old.state
        assert new.person.name.encode() in raw[case_id]
        if old.person.nip:  # compaction keeps only this value: it must not hold the NIP
            assert old.person.nip.encode() not in raw[case_id]
        assert old.person.name.encode() not in raw[case_id]
    for case_id, old in kept.items():
        assert after[case_id].person == old.person, "open cases keep their person"
    assert Counter(c.state for c in after.values()) == Counter(c.state for c in before.values())
    assert Counter(c.region_code for c in after.values()) == Counter(
        c.region_code for c in before.values())
