"""The worker's consumer reads again what it was never handed (streams/rebalance.py watchdog).

Faust lost records across rebalances by handing them to no stream while their read offset moved
on; the commit then waits at the first of them for ever and the partition looks idle. The real
Faust worker (tests/integration/hole_worker.py) drops offsets 5..9 the first time. Reported as
the consumer's own drops are, they are sought back at once; unreported, the watchdog finds the
partition stuck. Either way every value comes out, and the log names the partition and offset.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hub.commands.up import stop_process
from schemas.kafka import KafkaConnection
from tests.fixtures.kafka_tools import consume_until, create_topics, produce
from tests.fixtures.waiting import wait_until
from tests.helpers import REPO

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("mode", "check_s", "line"), [
    ("silent", "1", "topic='{source}', partition=0) stuck at committed offset 5"),
    ("noted", "0", "topic='{source}', partition=0) offset 5 was handed to no stream"),
])
def test_records_handed_to_no_stream_are_read_again(kafka: KafkaConnection, tmp_path: Path,
                                                    mode: str, check_s: str, line: str) -> None:
    run = uuid.uuid4().hex[:6]
    source, out = f"test.hole.in.{run}", f"test.hole.out.{run}"
    values = [f"v{i}".encode() for i in range(20)]
    asyncio.run(create_topics(kafka, [source, out]))
    asyncio.run(produce(kafka, source, [(b"k", v, None) for v in values]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=kafka.bootstrap, NETRAL_HOME=str(tmp_path),
               NETRAL_WORKER_APP_ID=f"test-hole-{run}", NETRAL_WORKER_HOLE_CHECK_S=check_s)
    log = tmp_path / "worker.log"
    with log.open("wb") as out_file:
        proc = subprocess.Popen([sys.executable, "-m", "tests.integration.hole_worker", source,
                                 out, "5", "9", mode], env=env, cwd=REPO, stdout=out_file,
                                stderr=subprocess.STDOUT)
    try:
        got = asyncio.run(consume_until(kafka, [out], lambda rs: {r.value for r in rs} >= set(
            values), timeout_s=120))
    except AssertionError:
        raise AssertionError("lost records never read again:\n"
                             + log.read_text()[-4000:]) from None
    finally:
        stop_process(proc)
    assert {r.value for r in got} == set(values)
    text = log.read_text()
    assert line.format(source=source) in text, text[-4000:]


def test_a_partition_held_in_flight_is_reported(kafka: KafkaConnection, tmp_path: Path) -> None:
    """The watchdog cannot seek back a partition whose records a stage still holds; when
    nothing of it moves for WAITING_REPORT intervals it says so, with its offsets and the
    worker's pending tasks."""
    run = uuid.uuid4().hex[:6]
    source, out = f"test.held.in.{run}", f"test.held.out.{run}"
    asyncio.run(create_topics(kafka, [source, out]))
    asyncio.run(produce(kafka, source, [(b"k", f"v{i}".encode(), None) for i in range(10)]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=kafka.bootstrap, NETRAL_HOME=str(tmp_path),
               NETRAL_WORKER_APP_ID=f"test-held-{run}", NETRAL_WORKER_HOLE_CHECK_S="1")
    log = tmp_path / "worker.log"
    with log.open("wb") as out_file:
        proc = subprocess.Popen([sys.executable, "-m", "tests.integration.hole_worker", source,
                                 out, "3", "3", "stuck"], env=env, cwd=REPO, stdout=out_file,
                                stderr=subprocess.STDOUT)
    line = (f"topic='{source}', partition=0) has not moved for 3 s with records in flight: "
            "committed offset 3")

    async def reported() -> bool:
        return line in log.read_text()

    try:
        got = asyncio.run(consume_until(kafka, [out], lambda rs: len(rs) >= 3, timeout_s=120))
        asyncio.run(wait_until(reported, 60, lambda: log.read_text()[-4000:]))
    finally:
        stop_process(proc)
    assert [r.value for r in got] == [b"v0", b"v1", b"v2"]
    text = log.read_text()
    assert line in text, text[-4000:]
    assert "from offset 3; the stage holding them may be stuck" in text, text[-4000:]
    # with what every task waits on, as SIGUSR1 dumps it: the held agent's among them
    assert "pending tasks (records in flight stuck)" in text, text[-4000:]
    assert "agent.py" in text.split("pending tasks (records in flight stuck)", 1)[1]
