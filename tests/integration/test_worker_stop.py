"""``netral worker`` stops within NETRAL_WORKER_STOP_TIMEOUT_S of SIGTERM, with its broker gone too.

With the broker gone Faust's graceful stop can wait on requests that never return (a minute or
more, and before the bound the process could be left an orphan for SIGKILL): the watchdog ends
it with exit 124 and one log line. With the broker up the graceful stop is untouched (exit 0).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.broker.local import LocalBroker
from hub.commands.up import stop_process
from hub.commands.worker import FORCED_STOP_EXIT
from hub.kafka_admin import wait_group_stable
from schemas.errors import RetriableError
from tests.helpers import REPO, netral

pytestmark = pytest.mark.integration
FORCED_LINE = "stop forced, exit 124"


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own, which the test may stop (the session broker is shared)."""
    broker = LocalBroker(tmp_path / "broker", port=0, controller_port=0, heap_mb=384,
                         dist_dir=REPO / ".netral" / "dist")
    bootstrap, _ = broker.start(timeout_s=120)
    try:
        netral("topics", "create", env={"NETRAL_KAFKA_BOOTSTRAP": bootstrap}, check=True)
        yield broker
    finally:
        broker.stop()


def start_worker(broker: LocalBroker, home: Path, **settings: str
                 ) -> tuple[subprocess.Popen[bytes], Path]:
    """``netral worker`` on ``broker``, once its group is Stable; (process, log path)."""
    app_id = f"netral-stop-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=broker.bootstrap(), NETRAL_HOME=str(home),
               NETRAL_WORKER_APP_ID=app_id, NETRAL_LOG_LEVEL="INFO",
               NETRAL_DEADLINE_SCAN_INTERVAL_S="0", **settings)
    log_path = home / "worker.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=env, cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "worker died at start:\n" + log_path.read_text()[-4000:]
            try:
                asyncio.run(wait_group_stable(broker.connection(), app_id, timeout_s=2))
                return proc, log_path
            except RetriableError:
                assert time.monotonic() < deadline, "worker not ready:\n" + \
                    log_path.read_text()[-4000:]
    except BaseException:
        stop_process(proc, timeout_s=10)
        raise


def sigterm_and_wait(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, float]:
    """(exit code, seconds from SIGTERM to exit); fails if still running after ``timeout_s``."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"worker still running {timeout_s:.0f} s after SIGTERM") from None
    return code, time.monotonic() - sent


def test_sigterm_with_the_broker_gone_forces_the_stop_within_the_bound(
        own_broker: LocalBroker, tmp_path: Path) -> None:
    # A bound well below any graceful stop without a broker, so the forced path is what runs.
    proc, log_path = start_worker(own_broker, tmp_path, NETRAL_WORKER_STOP_TIMEOUT_S="1")
    try:
        own_broker.stop()
        code, took = sigterm_and_wait(proc, timeout_s=30)
    finally:
        stop_process(proc, timeout_s=5)
    log = log_path.read_text(errors="replace")
    assert code == FORCED_STOP_EXIT, log[-3000:]
    assert took < 20, f"exit {took:.1f} s after SIGTERM with a 1 s bound"
    forced = [line for line in log.splitlines() if FORCED_LINE in line]
    assert len(forced) == 1, log[-3000:]
    assert "after SIGTERM did not finish within 1 s" in forced[0]


def test_sigterm_with_the_broker_up_stops_gracefully(own_broker: LocalBroker,
                                                     tmp_path: Path) -> None:
    proc, log_path = start_worker(own_broker, tmp_path)  # the default bound, 30 s
    try:
        code, _ = sigterm_and_wait(proc, timeout_s=60)
    finally:
        stop_process(proc, timeout_s=5)
    log = log_path.read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert FORCED_LINE not in log


def test_a_stop_timeout_that_is_not_positive_is_refused(tmp_path: Path) -> None:
    result = netral("worker", env={"NETRAL_HOME": str(tmp_path),
                                   "NETRAL_KAFKA_BOOTSTRAP": "127.0.0.1:1",
                                   "NETRAL_WORKER_STOP_TIMEOUT_S": "0"}, timeout=60)
    assert result.returncode != 0
    assert "NETRAL_WORKER_STOP_TIMEOUT_S" in result.stdout + result.stderr
