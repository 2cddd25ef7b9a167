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
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from schemas.kafka import KafkaConnection
from tests.fixtures.postgres import PostgresUnavailable, ThrowawayPostgres, start_postgres
from tests.helpers import KAFKA_SECURITY

REPO = Path(__file__).resolve().parent.parent



def external_kafka(environ: Mapping[str, str]) -> KafkaConnection | None:
    """The cluster ``NETRAL_KAFKA_BOOTSTRAP`` names, with the same NETRAL_KAFKA_* security
    settings the hub's clients take (so the suite runs against a secure cluster), or None."""
    if not environ.get("NETRAL_KAFKA_BOOTSTRAP"):
        return None
    from hub.settings import NetralSettings

    names = ("NETRAL_KAFKA_BOOTSTRAP", *KAFKA_SECURITY)
    values = {n.removeprefix("NETRAL_").lower(): environ[n] for n in names if n in environ}
    settings = NetralSettings.model_validate(values)
    assert settings.kafka_bootstrap is not None
    return settings.kafka(settings.kafka_bootstrap, client_id="netral-tests")


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
    if external := external_kafka(os.environ):
        yield external
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


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaConnection]:
    """A fresh broker with the hub's topics for one module, whose output topics then hold only
    what that module's workers wrote (the session broker is shared by every test)."""
    from hub.broker.local import LocalBroker
    from tests.helpers import netral

    home = tmp_path_factory.mktemp("private-broker")
    local = LocalBroker(home, port=0, controller_port=0, heap_mb=512,
                        dist_dir=REPO / ".netral" / "dist")
    bootstrap, _ = local.start(timeout_s=120)
    try:
        netral("topics", "create", env={"NETRAL_KAFKA_BOOTSTRAP": bootstrap}, check=True)
        yield KafkaConnection(bootstrap=bootstrap, client_id="netral-tests")
    finally:
        local.stop()


@pytest.fixture(scope="module")
def seeded_monitor(topics: KafkaConnection, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Any]:
    """The monitoring API on loopback over a seeded SQLite record, for one module
    (tests/fixtures/monitor_server.py: the rows and a key per role)."""
    from tests.fixtures.monitor_server import serve_monitor

    home = tmp_path_factory.mktemp("monitor")
    yield from serve_monitor(topics, home, f"sqlite:///{home / 'netral.db'}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    """A throwaway PostgreSQL server for the session (tests/fixtures/postgres.py says how)."""
    try:
        server = start_postgres()
    except PostgresUnavailable as err:
        if os.environ.get("CI"):  # CI installs it (make test): a skip there would hide a gap
            pytest.fail(f"PostgreSQL cannot start under CI: {err}")
        pytest.skip(f"PostgreSQL cannot start here: {err}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, private to the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'netral.db'}"
        return
    server: ThrowawayPostgres = request.getfixturevalue("postgres")
    url = server.new_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic and group names, so tests never share state."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def topics(kafka: KafkaConnection) -> KafkaConnection:
    """The hub's topics exist on the session broker (created the way operators do)."""
    from tests.helpers import netral

    netral("topics", "create", env={"NETRAL_KAFKA_BOOTSTRAP": kafka.bootstrap}, check=True)
    return kafka


@pytest.fixture(scope="session")
def stream_worker(topics: KafkaConnection, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[dict[str, str]]:
    """One real Faust worker (``netral worker`` in a subprocess) for the session.

    Yields its environment; the worker's log is printed if it dies.
    """
    import asyncio
    import sys

    from hub.commands.up import stop_process
    from hub.kafka_admin import wait_group_stable
    from schemas.errors import RetriableError

    home = tmp_path_factory.mktemp("worker-home")
    app_id = f"netral-test-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=topics.bootstrap, NETRAL_HOME=str(home),
               NETRAL_WORKER_APP_ID=app_id, NETRAL_LOG_LEVEL="INFO",
               NETRAL_DEADLINE_SCAN_INTERVAL_S="0")
    log = (home / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError("worker died at start:\n" + (home / "worker.log").read_text())
            try:
                asyncio.run(wait_group_stable(topics, app_id, timeout_s=2))
                break
            except RetriableError:
                if time.monotonic() > deadline:
                    raise
        yield env
    finally:
        stop_process(proc, timeout_s=30)  # SIGTERM, then SIGKILL and wait: never an orphan
        log.close()
        text = (home / "worker.log").read_text(errors="replace")
        if "Traceback" in text:
            print(f"--- worker log ({app_id}) ---\n{text[-5000:]}")
