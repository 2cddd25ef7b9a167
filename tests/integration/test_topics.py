"""`netral topics create` makes every topic with explicit configs, and is idempotent."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.kafka import KafkaConnection
from schemas.topics import catalogue
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
