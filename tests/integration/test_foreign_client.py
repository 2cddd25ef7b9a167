"""A different Kafka client and a different Avro library talk to the hub through the broker.

Confluent's client (librdkafka) produces bytes built entirely by the Apache ``avro`` package
(single-object framing: spec marker, avro's own CRC-64-AVRO fingerprint, avro's body); the hub
reads them off the topic with aiokafka and decodes them. A hub message produced with aiokafka is
read back with Confluent's consumer and decoded by the Apache ``avro`` package.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import BawasluReport
from tests.contract.test_wire_interop import (
    SPEC_MARKER,
    apache_fingerprint,
    apache_read,
    apache_single_object,
)
from tests.factories import report
from tests.fixtures.kafka_tools import consume_until, produce

pytestmark = pytest.mark.integration
RAW = "netral.raw.bawaslu"
CODEC = AvroCodec()


def librdkafka_config(conn: KafkaConnection) -> dict[str, Any]:
    """The same connection settings, in librdkafka's vocabulary."""
    config: dict[str, Any] = {"bootstrap.servers": conn.bootstrap,
                              "security.protocol": conn.security_protocol,
                              "client.id": f"{conn.client_id}-foreign"}
    if conn.sasl_mechanism:
        config |= {"sasl.mechanism": conn.sasl_mechanism, "sasl.username": conn.username,
                   "sasl.password": conn.password.get_secret_value() if conn.password else None}
    if conn.ca_file:
        config["ssl.ca.location"] = conn.ca_file
    return config


def test_confluent_client_with_apache_avro_bytes_is_decoded_by_the_hub(
        topics: KafkaConnection) -> None:
    sample = report()
    key = sample.source_id.encode()
    data = apache_single_object(sample.avro_name, sample.to_avro())
    delivered: list[tuple[KafkaError | None, Message]] = []
    producer = Producer({**librdkafka_config(topics), "acks": "all", "enable.idempotence": True})
    producer.produce(RAW, key=key, value=data,
                     on_delivery=lambda err, msg: delivered.append((err, msg)))
    assert producer.flush(30) == 0, "librdkafka did not deliver within 30 s"
    assert [(err, msg.topic()) for err, msg in delivered] == [(None, RAW)]

    records = asyncio.run(consume_until(topics, [RAW], lambda rs: any(r.key == key for r in rs)))
    value = next(r.value for r in records if r.key == key)
    assert value == data
    decoded = CODEC.decode(value, expect=sample.avro_name)
    assert decoded.framing == "single-object"
    assert BawasluReport.from_avro(decoded.value) == sample


def test_hub_message_is_read_by_confluent_client_and_apache_avro(
        topics: KafkaConnection) -> None:
    sample = report()
    key = sample.source_id.encode()
    data = CODEC.encode(sample.avro_name, sample.to_avro())
    asyncio.run(produce(topics, RAW, [(key, data, None)]))

    consumer = Consumer({**librdkafka_config(topics),
                         "group.id": f"foreign-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "enable.auto.commit": False})
    consumer.subscribe([RAW])
    found: bytes | None = None
    deadline = time.monotonic() + 60
    try:
        while found is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            if msg.key() == key:
                found = msg.value()
    finally:
        consumer.close()
    assert found is not None, "the Confluent consumer never saw the hub's message"
    assert found == data
    assert found[:10] == SPEC_MARKER + apache_fingerprint(sample.avro_name)
    assert BawasluReport.from_avro(apache_read(sample.avro_name, found[10:])) == sample
