"""`netral simulate` publishes a whole wave through the agency outboxes, with its ground truth."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from connectors.simulator import SimConfig, simulate
from schemas.kafka import KafkaConnection
from tests.fixtures.kafka_tools import consume_until
from tests.helpers import netral

pytestmark = pytest.mark.integration


def test_wave_reaches_the_raw_topics_with_its_truth(topics: KafkaConnection,
                                                    tmp_path: Path) -> None:
    seed = random.randrange(10**6)
    truth = tmp_path / "truth.jsonl"
    out = netral("simulate", "--cases", "40", "--seed", str(seed), "--truth", str(truth),
                 env={"NETRAL_HOME": str(tmp_path), "NETRAL_KAFKA_BOOTSTRAP": topics.bootstrap},
                 check=True).stdout
    sim = simulate(SimConfig(cases=40, seed=seed))
    assert f"{len(sim.events)} events" in out
    lines = [json.loads(x) for x in truth.read_text().splitlines()]
    assert len(lines) == 40
    assert sum(len(x["event_ids"]) + len(x["name_only_event_ids"]) for x in lines) \
        == len(sim.events)
    wanted = {(f"netral.raw.{e.agency}", e.record.source_id.encode())
              for e in sim.events if e.record}
    topics_ = sorted({t for t, _ in wanted})
    records = asyncio.run(consume_until(
        topics, topics_, lambda rs: wanted <= {(r.topic, r.key) for r in rs}, timeout_s=60))
    assert wanted <= {(r.topic, r.key) for r in records}
