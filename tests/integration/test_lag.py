"""``netral lag`` on the real broker: a group with a known backlog gives the same committed, end and
lag numbers as Kafka's own kafka-consumer-groups tool; an unreachable broker is one line."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hub.broker.local import free_port
from hub.lag import LagCollector, read_lag
from schemas.kafka import KafkaConnection
from tests.fixtures.kafka_tools import create_topics
from tests.helpers import REPO, netral

pytestmark = pytest.mark.integration

LIBS = REPO / ".netral" / "dist" / "kafka-3.9.1" / "libs"


async def backlog(conn: KafkaConnection, topic: str, group: str) -> None:
    """Partition 0: 10 records, committed 4 (lag 6); partition 1: 3 records, committed 3."""
    await create_topics(conn, [topic], partitions=2)
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all")
    await producer.start()
    try:
        for partition, n in ((0, 10), (1, 3)):
            for i in range(n):
                await producer.send_and_wait(topic, f"m{i}".encode(), partition=partition)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 3})
    finally:
        await consumer.stop()


def kafka_tool(bootstrap: str, group: str) -> dict[tuple[str, int], tuple[int, int, int]]:
    """(topic, partition) -> (current offset, log-end offset, lag) from kafka-consumer-groups."""
    java = shutil.which("java")
    assert java, "java is needed for the broker itself"
    out = subprocess.run(
        [java, "-cp", f"{LIBS}/*", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
         "--bootstrap-server", bootstrap, "--describe", "--group", group],
        capture_output=True, text=True, timeout=120, check=True).stdout
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0] == group:
            rows[(parts[1], int(parts[2]))] = (int(parts[3]), int(parts[4]), int(parts[5]))
    return rows


def test_lag_matches_kafka_consumer_groups(kafka: KafkaConnection, unique: str,
                                           tmp_path: Path) -> None:
    topic, group = f"lag-{unique}", f"lag-group-{unique}"
    asyncio.run(backlog(kafka, topic, group))

    snapshot = asyncio.run(read_lag(kafka, groups=[group]))
    ours = {(p.topic, p.partition): (p.committed, p.end, p.lag) for p in snapshot.partitions}
    assert ours == {(topic, 0): (4, 10, 6), (topic, 1): (3, 3, 0)}
    assert kafka_tool(kafka.bootstrap, group) == ours
    assert snapshot.by_group() == {group: 6}

    proc = netral("lag", "--group", group, env={"NETRAL_KAFKA_BOOTSTRAP": kafka.bootstrap,
                                                "NETRAL_HOME": str(tmp_path)}, check=True)
    rows = [line for line in proc.stdout.splitlines() if topic in line]
    cells = [re.findall(r"[\w.-]+", row) for row in rows]
    assert [c[-4:] for c in cells] == [["0", "4", "10", "6"], ["1", "3", "3", "0"]], proc.stdout

    collector = LagCollector()
    collector.snapshot = snapshot
    samples = {(m.name, tuple(sorted(s.labels.items()))): s.value
               for m in collector.collect() for s in m.samples}
    key = ("netral_consumer_lag", (("group", group), ("partition", "0"), ("topic", topic)))
    assert samples[key] == 6


def test_every_group_by_default(kafka: KafkaConnection, unique: str) -> None:
    topic, group = f"lag-all-{unique}", f"lag-all-group-{unique}"
    asyncio.run(backlog(kafka, topic, group))
    snapshot = asyncio.run(read_lag(kafka))
    assert snapshot.by_group()[group] == 6


def test_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    proc = netral("lag", env={"NETRAL_KAFKA_BOOTSTRAP": dead, "NETRAL_HOME": str(tmp_path),
                              "NETRAL_LAG_TIMEOUT_S": "3"}, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("netral: broker at") and dead in lines[0]


def test_a_group_behind_for_too_long_raises_one_ops_alert(topics: KafkaConnection,
                                                          tmp_path: Path, unique: str) -> None:
    """The API's lag refresher: lag 6 > threshold 5 for >= 2 s -> one alert on netral.alerts."""
    from connectors.ingest import IngestLimits
    from connectors.keys import KeyStore
    from hub.api.access import MonitorKeyStore
    from hub.api.app import create_app
    from hub.api.deps import Monitor
    from schemas.codec import AvroCodec
    from schemas.models import Alert
    from sinks.sql import migrate
    from sinks.sql.engine import create_sql_engine
    from tests.fixtures.kafka_tools import consume_until, produce
    from tests.fixtures.monitor_server import serve_app
    from tests.fixtures.waiting import poll_until

    group = f"lagging-{unique}"
    asyncio.run(backlog(topics, f"lag-alert-{unique}", group))
    url = f"sqlite:///{tmp_path / 'netral.db'}"
    migrate.upgrade(url)
    engine = create_sql_engine(url)
    monitor = Monitor(engine=engine, keys=MonitorKeyStore.load(tmp_path / "keys.yaml"),
                      lag_refresh_s=0.5, lag_groups=(group,), lag_alert_threshold=5,
                      lag_alert_after_s=2.0)
    app = create_app(topics, KeyStore.load(tmp_path / "api-keys.yaml"), IngestLimits(),
                     monitor=monitor, session_secret="x" * 40)
    codec = AvroCodec()

    def ours(rs: list) -> list[Alert]:
        alerts = [Alert.from_avro(codec.decode(r.value).value) for r in rs]
        return [a for a in alerts if a.rule == "ops.consumer-lag" and group in a.detail]

    server = serve_app(app)
    next(server)
    try:
        records = asyncio.run(consume_until(topics, ["netral.alerts"], lambda rs: bool(ours(rs)),
                                            timeout_s=60))
        first = ours(records)
        assert len(first) == 1 and "6 messages" in first[0].detail
        # it stays behind: still one alert for this episode after four more refreshes (each
        # one a new snapshot; a refresh awaits its alerts before the next one begins)
        seen = [monitor.lag.snapshot]

        def refreshed() -> bool:
            if monitor.lag.snapshot is not seen[-1]:
                seen.append(monitor.lag.snapshot)
            return len(seen) > 4
        poll_until(refreshed, 30, lambda: f"{len(seen) - 1} of 4 more lag refreshes")
        marker = Alert(alert_id=f"marker-{unique}", rule="test.marker", severity="INFO",
                       region_code="31", province_code="31", title="marker", detail="marker",
                       at=first[0].at, dedupe_key=f"marker-{unique}")
        # same key as the alerts (their region), so the same partition: read after them
        asyncio.run(produce(topics, "netral.alerts", [(b"31", codec.encode(
            marker.avro_name, marker.to_avro()), None)]))
        again = asyncio.run(consume_until(topics, ["netral.alerts"], lambda rs: any(
            Alert.from_avro(codec.decode(r.value).value).alert_id == marker.alert_id
            for r in rs), timeout_s=60))
        assert len(ours(again)) == 1
    finally:
        server.close()
        engine.dispose()
