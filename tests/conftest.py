"""Shared fixtures. The Kafka broker is always real:

1. ``NETRAL_KAFKA_BOOTSTRAP`` if set (an existing cluster);
2. else a testcontainers Kafka when a Docker engine answers;
3. else the same local Apache Kafka broker code as ``netral broker`` (jars from Maven Central,
   cached in the repo's ``.netral/dist``), on free ports in a temporary state folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.kafka import KafkaConnection

REPO = Path(__file__).resolve().parent.parent



def _docker_engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaConnection]:
    """A real Kafka broker for the whole session."""
    if bootstrap := os.environ.get("NETRAL_KAFKA_BOOTSTRAP"):
        yield KafkaConnection(bootstrap=bootstrap, client_id="netral-tests")
        return
    if _docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:3.9.1").with_kraft() as container:
            yield KafkaConnection(bootstrap=container.get_bootstrap_server(),
                                  client_id="netral-tests")
        return
    from hub.broker.local import LocalBroker

    home = tmp_path_factory.mktemp("netral-home")
    broker = LocalBroker(home, port=0, controller_port=0, heap_mb=768,
                         dist_dir=REPO / ".netral" / "dist")
    bootstrap, _ = broker.start(timeout_s=120)
    try:
        yield KafkaConnection(bootstrap=bootstrap, client_id="netral-tests")
    finally:
        broker.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic and group names, so tests never share state."""
    return uuid.uuid4().hex[:8]
