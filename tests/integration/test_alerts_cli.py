"""``netral alerts run``, ``receiver`` and ``test`` as an operator runs them (subprocesses),
on the real broker, and a bad routes file failing with one line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hub.broker.local import free_port
from hub.kafka_admin import create_topics
from schemas.kafka import KafkaConnection
from schemas.topics import TopicSpec
from tests.fixtures.waiting import wait_until
from tests.helpers import REPO, netral

pytestmark = pytest.mark.integration


def test_a_bad_routes_file_fails_with_one_line(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("recipients:\n  - id: x\n    name: X\n    scope: province\n"
                      "    channels: [{type: email, to: [a@b.id]}]\n")
    proc = netral("alerts", "run", env={"NETRAL_ALERTS_ROUTES_FILE": str(routes),
                                        "NETRAL_HOME": str(tmp_path)})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"netral: routes file {routes}: recipients.0: Value error, a province "
                     "recipient needs province: <2-digit code>"]


async def test_run_delivers_to_the_receiver_and_stops_cleanly(kafka: KafkaConnection,
                                                              tmp_path: Path,
                                                              unique: str) -> None:
    port, metrics_port = free_port(), free_port()
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"""
recipients:
  - id: satgas-nasional
    name: Satgas Nasional
    scope: national
    channels:
      - type: webhook
        url: http://127.0.0.1:{port}/webhook/satgas-nasional
        secret: env:TEST_ALERT_SECRET
""")
    out = tmp_path / "received.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=kafka.bootstrap, NETRAL_HOME=str(tmp_path),
               NETRAL_ALERTS_ROUTES_FILE=str(routes), NETRAL_ALERTS_GROUP_ID=f"cli-{unique}",
               NETRAL_ALERTS_METRICS_PORT=str(metrics_port),
               TEST_ALERT_SECRET=f"cli-secret-{unique}-0123456789")
    topic, dlq = f"test.{unique}.alerts", f"test.{unique}.dlq.alerts"
    await create_topics(kafka, [TopicSpec(name=n, key="region", value="test", cleanup="delete",
                                          retention_ms=3600_000, writer="test")
                                for n in (topic, dlq)], partitions=1, replication=1,
                        min_insync=1)
    receiver = _spawn(["receiver", "--port", str(port), "--out", str(out)], env,
                      tmp_path / "receiver")
    runner = _spawn(["run", "--migrate", "--topic", topic, "--dlq", dlq], env,
                    tmp_path / "runner")
    try:
        sent = await asyncio.to_thread(netral, "alerts", "test", "--region", "32.73",
                                       "--severity", "CRITICAL", "--topic", topic, env=env,
                                       check=True)
        alert_id = sent.stdout.split()[1]
        assert alert_id.startswith("netral-test-")

        async def arrived() -> bool:
            assert runner.poll() is None, (tmp_path / "runner.err").read_text()
            return out.exists() and bool(out.read_text().strip())
        await wait_until(arrived, 120, "the alert at the receiver")
        line = json.loads(out.read_text().splitlines()[0])
        assert line["verified"] and line["recipient"] == "satgas-nasional"
        assert line["body"]["alert"]["alert_id"] == alert_id
        assert line["body"]["alert"]["severity"] == "CRITICAL"
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert ('netral_alert_deliveries_total{channel="webhook",kind="alert",outcome="sent",'
                'recipient="satgas-nasional"} 1.0') in metrics
    finally:
        for proc in (runner, receiver):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert runner.returncode == 0, (tmp_path / "runner.err").read_text()
    assert "1 alerts, 1 sent, 0 failed" in (tmp_path / "runner.out").read_text()


def _spawn(args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """``netral alerts ARGS`` in the background, stdout and stderr to ``logs``.out/.err."""
    with logs.with_suffix(".out").open("wb") as out, logs.with_suffix(".err").open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "hub", "alerts", *args], env=env,
                                cwd=REPO, stdout=out, stderr=err)
