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
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.commands.up import stop_process
from schemas.kafka import KafkaConnection
from tests.fixtures.kafka_tools import consume_until, produce
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
    asyncio.run(_create(kafka, [source, out]))
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


async def _create(conn: KafkaConnection, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, 1, 1) for n in names])
    finally:
        await admin.close()
