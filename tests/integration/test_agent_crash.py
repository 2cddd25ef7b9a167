"""A bug in one agent stops the worker with an error (Faust's default supervisor restarted the
crashed agent's actor, which then took nothing: the cases stage sat dead in a live worker, its
lag growing, until someone read the log). A stopped worker is what a process supervisor
restarts and what ops see at once."""

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
from tests.fixtures.kafka_tools import create_topics, produce
from tests.fixtures.waiting import wait_until
from tests.helpers import REPO

pytestmark = pytest.mark.integration


def test_a_crashed_agent_stops_the_worker_with_an_error(kafka: KafkaConnection,
                                                        tmp_path: Path) -> None:
    topic = f"test.crash.{uuid.uuid4().hex[:6]}"
    asyncio.run(create_topics(kafka, [topic]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=kafka.bootstrap, NETRAL_HOME=str(tmp_path),
               NETRAL_WORKER_APP_ID=f"test-crash-{uuid.uuid4().hex[:6]}",
               NETRAL_WORKER_STAGES="normalize", NETRAL_DEADLINE_SCAN_INTERVAL_S="0")
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.integration.crash_worker", topic],
                                env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    async def ready() -> bool:
        assert proc.poll() is None, log.read_text()[-4000:]
        return "Worker ready" in log.read_text()

    try:
        asyncio.run(wait_until(ready, 90, lambda: log.read_text()[-4000:]))
        asyncio.run(produce(kafka, topic, [(b"k", b"fine", None), (b"k", b"boom", None)]))
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("the worker ran on with a crashed agent:\n"
                                 + log.read_text()[-4000:]) from None
    finally:
        stop_process(proc)
    text = log.read_text()
    assert code != 0, text[-4000:]
    assert "a bug in an agent" in text, text[-4000:]
