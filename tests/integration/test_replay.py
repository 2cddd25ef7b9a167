"""``netral replay --from-beginning``: two rebuilds from the raw topics are identical.

A simulated wave goes through the agency outboxes onto a private broker; two replays, each under
its own application id (new consumer group, fresh journal), rebuild the national record. Every
output of the cases stage is headed with its writer, so the two rebuilds can be told apart on
``netral.cases``: the same case ids, versions and content, and the truth's cases all there.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from connectors.scoring import score
from connectors.sim_runner import publish_wave
from connectors.simulator import SimConfig, iter_truth_lines, simulate
from schemas.kafka import KafkaConnection
from schemas.topics import CASES
from tests.fixtures.kafka_tools import consume_until
from tests.fixtures.national_record import latest_cases
from tests.helpers import netral

pytestmark = pytest.mark.integration


def written_by(records: list[ConsumerRecord], app_id: str) -> list[ConsumerRecord]:
    return [r for r in records if (("netral.writer", app_id.encode()) in list(r.headers))]


def test_two_rebuilds_from_the_raw_topics_are_identical(private_broker: KafkaConnection,
                                                        tmp_path: Path) -> None:
    sim = simulate(SimConfig(cases=120, duplicate_rate=0.2, name_only_rate=0.1, seed=77))
    asyncio.run(publish_wave(sim, private_broker, tmp_path / "outboxes"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=private_broker.bootstrap, NETRAL_HOME=str(tmp_path))
    for app_id in ("netral-replay-a", "netral-replay-b"):
        done = netral("replay", "--from-beginning", "--app-id", app_id, "--timeout-s", "300",
                      env=env, check=True)
        assert f"replay {app_id}: caught up" in done.stdout
    truth = list(iter_truth_lines(sim))

    def both(rs: list[ConsumerRecord]) -> bool:
        return all(len(latest_cases(written_by(rs, a))) >= len(truth)
                   for a in ("netral-replay-a", "netral-replay-b"))

    records = asyncio.run(consume_until(private_broker, [CASES], both, timeout_s=120))
    first = latest_cases(written_by(records, "netral-replay-a"))
    second = latest_cases(written_by(records, "netral-replay-b"))
    assert first == second, "two rebuilds from the same raw topics differ"
    result = score(truth, first.values())
    print(f"rebuilt {len(first)} cases twice, identical: {result.line()}")
    assert result.events_missing == 0 and result.precision >= 0.99 and result.recall >= 0.98
