"""docker-compose.yml stays valid for the scale-out deployment (checked by the docker client)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.contract


def _compose() -> list[str]:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    built = REPO / ".netral" / "tools" / "docker-compose"
    if built.exists():
        return [str(built)]
    pytest.fail("no docker compose client: run `make compose-client` (the Makefile builds one)")


def test_compose_file_is_valid() -> None:
    proc = subprocess.run([*_compose(), "config", "-q"], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_compose_declares_three_kraft_brokers_and_scalable_workers() -> None:
    proc = subprocess.run([*_compose(), "config", "--services"], cwd=REPO, capture_output=True,
                          text=True, check=True)
    services = set(proc.stdout.split())
    assert {"kafka1", "kafka2", "kafka3", "postgres", "worker"} <= services
