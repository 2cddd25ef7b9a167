"""The operator's two entry points, as processes: `netral up` (until Ctrl-C) and `netral demo`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import pytest

from hub.broker.local import LocalBroker
from tests.helpers import REPO, netral

pytestmark = pytest.mark.integration
DIST = REPO / ".netral" / "dist"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_HOME=str(home), NETRAL_BROKER_PORT="0", COLUMNS="200")
    return env


def test_up_runs_everything_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    (tmp_path / "dist").symlink_to(DIST)
    proc = subprocess.Popen([sys.executable, "-m", "hub", "up"], env=_env(tmp_path), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        assert any("worker ready" in ln for ln in lines), "".join(lines)
        assert LocalBroker(tmp_path).running_pid() is not None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        LocalBroker(tmp_path).stop()
    assert LocalBroker(tmp_path).running_pid() is None, "Ctrl-C must stop the broker it started"


def test_demo_sends_a_wave_and_shows_it(tmp_path: Path) -> None:
    (tmp_path / "dist").symlink_to(DIST)
    proc = netral("demo", "--cases", "20", env={"NETRAL_HOME": str(tmp_path),
                                                "NETRAL_BROKER_PORT": "0"}, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got, wanted = cast("re.Match[str]", re.search(r"(\d+)/(\d+) agency events normalised",
                                                  proc.stdout)).groups()
    assert got == wanted and int(wanted) >= 20
    assert "2/2 junk records dead-lettered" in proc.stdout
    assert (tmp_path / "simulations" / "demo.truth.jsonl").exists()
    assert LocalBroker(tmp_path).running_pid() is None
