"""The national record on a real broker and real Faust workers, killed with SIGKILL.

A simulated Pilkada wave goes through the agencies' outboxes and relays; a stream worker
(normalize + cases) is SIGKILLed at random moments and restarted, several times, while it
builds the record; then deadline ticks walk the calendar past every PPK deadline while the
worker is killed again. At the end, against the simulator's ground truth: every true case once in
``netral.cases`` with a state its outcome allows, merge precision/recall on target, every
overdue case blocked by exactly one order id, the relay's re-sends dropped by event id.

Its own broker (``private_broker``), so ``netral.cases`` holds only what this module's workers
wrote.
``NETRAL_TEST_SIGKILLS`` (default 3) and ``NETRAL_TEST_CASES`` (default 150) scale it up.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from connectors.scoring import MergeScore, score
from connectors.sim_runner import publish_wave
from connectors.simulator import SimConfig, iter_truth_lines, simulate
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import CaseState, DeadlineTick, OrderAction, SiasnOrder
from schemas.topics import CASES, DEADLINE_TICKS, ORDERS_SIASN
from streams.rules.escalation import order_id
from tests.fixtures.kafka_tools import consume_until, produce
from tests.fixtures.national_record import latest_cases
from tests.fixtures.worker_process import WorkerProcess, hub_warnings

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
KILLS = int(os.environ.get("NETRAL_TEST_SIGKILLS", "3"))
CASES_N = int(os.environ.get("NETRAL_TEST_CASES", "150"))


def kill_at_random_moments(worker: WorkerProcess, rng: random.Random, kills: int) -> None:
    for _ in range(kills):
        time.sleep(rng.uniform(0.5, 4.0))  # a random moment in the stream, not a wait for state
        worker.kill()
        worker.start()


def test_sigkilled_workers_build_the_national_record_once(private_broker: KafkaConnection,
                                                          tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("NETRAL_TEST_SEED", "1")))
    sim = simulate(SimConfig(cases=CASES_N, duplicate_rate=0.2, name_only_rate=0.1, seed=31))
    truth = list(iter_truth_lines(sim))
    wave = asyncio.run(publish_wave(sim, private_broker, tmp_path / "outboxes"))
    assert wave.sent == len(sim.events)

    worker = WorkerProcess(private_broker, tmp_path, prefix="netral-kill")
    worker.start()
    passed = False
    try:
        kill_at_random_moments(worker, rng, KILLS)
        seen: list[MergeScore] = []

        def complete(records: list[ConsumerRecord]) -> bool:
            result = score(truth, latest_cases(records).values())
            seen.append(result)
            return result.events_missing == 0 and result.cases_found == len(truth) - 0

        records = asyncio.run(consume_until(private_broker, [CASES], complete, timeout_s=300))
        cases = latest_cases(records)
        result = score(truth, cases.values())
        print(f"after {worker.starts} starts ({KILLS} SIGKILLs): {result.line()}")
        assert result.precision >= 0.99 and result.recall >= 0.98, result.line()
        assert result.split_cases == 0 and result.wrong_state == 0, result.line()
        # every hub case holds events of exactly one true case: each true case exists once
        assert len(cases) == len(truth), f"{len(cases)} hub cases for {len(truth)} true cases"

        # Walk the calendar past every PPK deadline, one tick a day, killing the worker again.
        overdue = {c.case_id: c for c in cases.values() if c.state is CaseState.RECOMMENDED}
        assert overdue, "the wave should leave cases awaiting the PPK"
        first = min(c.next_deadline for c in overdue.values() if c.next_deadline)
        days = [first + timedelta(days=i) for i in range(0, 120)]
        asyncio.run(produce(private_broker, DEADLINE_TICKS,
                            [(b"test", tick(d), None) for d in days]))
        kill_at_random_moments(worker, rng, max(1, KILLS // 2))
        wanted = {order_id(c, OrderAction.BLOCK) for c in overdue}

        def blocked(records: list[ConsumerRecord]) -> bool:
            return wanted <= {o.order_id for o in orders_of(records)}

        orders = orders_of(asyncio.run(consume_until(private_broker, [ORDERS_SIASN], blocked,
                                                     timeout_s=300)))
        by_id = Counter(o.order_id for o in orders)
        print(f"{len(wanted)} overdue cases: {len(by_id)} distinct order ids, "
              f"{sum(by_id.values())} order messages (re-emissions carry the same id)")
        assert set(by_id) == wanted, "an order id for a case that was not overdue"
        assert all(o.action is OrderAction.BLOCK for o in orders)
        assert {o.nip for o in orders} == {overdue[o.case_id].person.nip for o in orders}
        final = latest_cases(asyncio.run(consume_until(
            private_broker, [CASES], lambda rs: all(
                latest_cases(rs).get(c) is not None
                and latest_cases(rs)[c].state is CaseState.BLOCKED for c in overdue),
            timeout_s=120)))
        assert all(final[c].blocked and final[c].escalation_step == 3 for c in overdue)
        passed = True
    finally:
        worker.stop()
        text = worker.log()
        if "Traceback" in text:
            print(f"--- worker log ---\n{text[-6000:]}")
        elif not passed:  # a stall says nothing else in CI's output
            print(f"--- worker log: what the worker warned of ---\n{hub_warnings(text)}")


def tick(day: date) -> bytes:
    at = datetime(day.year, day.month, day.day, 2, tzinfo=UTC)  # 09:00 WIB
    record = DeadlineTick(tick_id=f"test-{day.isoformat()}", at=at, issued_by="test")
    return CODEC.encode(record.avro_name, record.to_avro(), topic=DEADLINE_TICKS)


def orders_of(records: list[ConsumerRecord]) -> list[SiasnOrder]:
    return [SiasnOrder.from_avro(CODEC.decode(r.value).value) for r in records if r.value]
