"""The local Apache Kafka broker: persistence across stop/start, and one-line errors."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from hub.broker.local import LocalBroker
from schemas.errors import BrokerError
from schemas.kafka import KafkaConnection
from schemas.topics import catalogue
from tests.fixtures.kafka_tools import consume_until, produce
from tests.helpers import REPO, netral

pytestmark = pytest.mark.integration
DIST = REPO / ".netral" / "dist"


def test_stop_and_start_keep_topics_and_messages(tmp_path: Path) -> None:
    env = {"NETRAL_HOME": str(tmp_path), "NETRAL_BROKER_PORT": "0"}
    # the CLI shares the repo's jar cache through a symlink, so nothing is fetched twice
    (tmp_path / "dist").symlink_to(DIST)
    try:
        netral("broker", "start", env=env, check=True)
        netral("topics", "create", env=env, check=True)
        bootstrap = LocalBroker(tmp_path).bootstrap()
        conn = KafkaConnection(bootstrap=bootstrap)
        asyncio.run(produce(conn, "netral.raw.bawaslu", [(b"k1", b"persist-me", None)]))
        assert "broker stopped" in netral("broker", "stop", env=env, check=True).stdout
        assert netral("broker", "status", env=env).returncode == 3
        netral("broker", "start", env=env, check=True)
        assert LocalBroker(tmp_path).bootstrap() == bootstrap
        second = netral("topics", "create", env=env, check=True).stdout
        assert f"0 created, {len(catalogue())} already existed" in second
        records = asyncio.run(consume_until(
            conn, ["netral.raw.bawaslu"],
            lambda rs: any(r.value == b"persist-me" for r in rs), timeout_s=60))
        assert any(r.key == b"k1" for r in records)
    finally:
        netral("broker", "stop", env=env)


def test_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (tmp_path / "dist").symlink_to(DIST)
        proc = netral("broker", "start", env={"NETRAL_HOME": str(tmp_path),
                                             "NETRAL_BROKER_PORT": str(port)})
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert f"port {port}" in proc.stderr and "in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_corrupted_state_folder_is_one_clear_line(tmp_path: Path) -> None:
    node = tmp_path / "broker" / "node-1"
    node.mkdir(parents=True)
    (node / "meta.json").write_text("{not json")
    (tmp_path / "dist").symlink_to(DIST)
    proc = netral("broker", "start", env={"NETRAL_HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert "corrupted" in proc.stderr and "netral broker reset --yes" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, dist_dir=tmp_path / "empty-dist")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", str(tmp_path))  # no java, no mvn
        with pytest.raises(BrokerError, match="java not found: install a JDK 17"):
            broker.ensure_dist()


def test_meta_records_ports_and_cluster(tmp_path: Path) -> None:
    (tmp_path / "dist").symlink_to(DIST)
    broker = LocalBroker(tmp_path, port=0)
    try:
        broker.start(timeout_s=120)
        meta = json.loads(broker.meta_file.read_text())
        assert meta["port"] > 0 and meta["controller_port"] > 0
        assert len(meta["cluster_id"]) == 22
        assert broker.status().running
    finally:
        broker.stop()
    assert not broker.status().running


def test_cluster_ids_never_start_with_a_dash() -> None:
    """A leading '-' made kafka-storage read the id as an option (seen in a fresh-clone run)."""
    from hub.broker.local import _cluster_id

    ids = [_cluster_id() for _ in range(5000)]
    assert not any(cid.startswith("-") for cid in ids)
    assert all(len(cid) == 22 for cid in ids)
