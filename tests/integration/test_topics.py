"""`netral topics create` makes every topic with explicit configs, and is idempotent."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hub.kafka_admin import create_topics
from schemas.errors import ConfigError
from schemas.kafka import KafkaConnection
from schemas.topics import TopicSpec, catalogue
from tests.helpers import netral

pytestmark = pytest.mark.integration


async def _configs(conn: KafkaConnection, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs())
    await admin.start()
    try:
        res = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = res[0].resources[0][4]
        return {e[0]: e[1] for e in entries}
    finally:
        await admin.close()


def test_create_twice_changes_nothing(kafka: KafkaConnection) -> None:
    env = {"NETRAL_KAFKA_BOOTSTRAP": kafka.bootstrap}
    netral("topics", "create", env=env, check=True)
    second = netral("topics", "create", env=env, check=True).stdout
    assert f"0 created, {len(catalogue())} already existed" in second
    for spec in catalogue():
        assert spec.name in second
    cases = asyncio.run(_configs(kafka, "netral.cases"))
    assert cases["cleanup.policy"] == "compact"
    raw = asyncio.run(_configs(kafka, "netral.raw.bawaslu"))
    assert raw["cleanup.policy"] == "delete"
    assert raw["retention.ms"] == str(30 * 86_400_000)
    assert raw["min.insync.replicas"] == "1"


def test_raw_and_audit_retention_are_settings_applied_to_existing_topics(
        kafka: KafkaConnection) -> None:
    env = {"NETRAL_KAFKA_BOOTSTRAP": kafka.bootstrap}
    netral("topics", "create", env=env, check=True)
    try:
        out = netral("topics", "create", env={**env, "NETRAL_RAW_RETENTION_DAYS": "7",
                                              "NETRAL_AUDIT_RETENTION_DAYS": "400"},
                     check=True).stdout
        assert "retention set" in out and "netral.raw.bkn" in out
        for agency in ("bawaslu", "bkn", "ppk"):
            raw = asyncio.run(_configs(kafka, f"netral.raw.{agency}"))
            assert raw["retention.ms"] == str(7 * 86_400_000)
            # the other configs the hub sets survive the change
            assert raw["cleanup.policy"] == "delete"
            assert raw["max.message.bytes"] == str(8 * 1024 * 1024)
        audit = asyncio.run(_configs(kafka, "netral.audit"))
        assert audit["retention.ms"] == str(400 * 86_400_000)
        assert audit["cleanup.policy"] == "delete"
        events = asyncio.run(_configs(kafka, "netral.events"))
        assert events["retention.ms"] == str(90 * 86_400_000)  # not a retention setting
        again = netral("topics", "create", env={**env, "NETRAL_RAW_RETENTION_DAYS": "7",
                                                "NETRAL_AUDIT_RETENTION_DAYS": "400"},
                       check=True).stdout
        assert "retention set" not in again
    finally:  # the session broker is shared: back to the defaults
        netral("topics", "create", env=env, check=True)
    assert asyncio.run(_configs(kafka, "netral.raw.bkn"))["retention.ms"] == str(30 * 86_400_000)


def test_a_bad_retention_setting_fails_in_one_line(kafka: KafkaConnection) -> None:
    proc = netral("topics", "create", env={"NETRAL_KAFKA_BOOTSTRAP": kafka.bootstrap,
                                           "NETRAL_RAW_RETENTION_DAYS": "0"})
    assert proc.returncode != 0
    assert "NETRAL_RAW_RETENTION_DAYS" in proc.stderr + proc.stdout



def test_a_fixed_partition_topic_with_another_count_fails_naming_the_fix(
        kafka: KafkaConnection) -> None:
    name = f"netral-test-{uuid.uuid4().hex[:8]}-cases-snapshot-changelog"

    def spec(partitions: int) -> TopicSpec:
        return TopicSpec(name=name, key="k", value="v", cleanup="compact", retention_ms=None,
                         writer="test", partitions=partitions)

    asyncio.run(create_topics(kafka, [spec(1)], partitions=4, replication=1, min_insync=1))
    with pytest.raises(ConfigError, match="has 1 partitions but the cases stage needs 2"):
        asyncio.run(create_topics(kafka, [spec(2)], partitions=4, replication=1, min_insync=1))
