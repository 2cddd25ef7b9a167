"""A different Kafka client and a different Avro library talk to the hub through the broker.

Confluent's client (librdkafka) produces bytes encoded by the Apache ``avro`` package with
single-object framing; the hub decodes them off the topic. A hub message produced with aiokafka is
read back with Confluent's consumer and decoded by the Apache ``avro`` package.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid

import avro.io
import avro.schema
import pytest
from confluent_kafka import Consumer, Producer

from schemas.codec import AvroCodec, expanded_schema
from schemas.kafka import KafkaConnection
from schemas.models import BawasluReport
from tests.factories import report
from tests.fixtures.kafka_tools import consume_until, produce

pytestmark = pytest.mark.integration
RAW = "netral.raw.bawaslu"
CODEC = AvroCodec()


def _schema() -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(expanded_schema(BawasluReport.avro_name)))


def test_confluent_client_with_apache_avro_bytes_is_decoded_by_the_hub(
        topics: KafkaConnection) -> None:
    sample = report()
    buf = io.BytesIO()
    avro.io.DatumWriter(_schema()).write(sample.to_avro(), avro.io.BinaryEncoder(buf))
    header = CODEC.encode(sample.avro_name, sample.to_avro())[:10]  # marker + fingerprint
    producer = Producer({"bootstrap.servers": topics.bootstrap, "acks": "all",
                         "enable.idempotence": True})
    producer.produce(RAW, key=sample.source_id.encode(), value=header + buf.getvalue())
    assert producer.flush(30) == 0
    records = asyncio.run(consume_until(
        topics, [RAW], lambda rs: any(r.key == sample.source_id.encode() for r in rs)))
    value = next(r.value for r in records if r.key == sample.source_id.encode())
    assert BawasluReport.from_avro(CODEC.decode(value).value) == sample


def test_hub_message_is_read_by_confluent_client_and_apache_avro(
        topics: KafkaConnection) -> None:
    sample = report()
    data = CODEC.encode(sample.avro_name, sample.to_avro())
    asyncio.run(produce(topics, RAW, [(sample.source_id.encode(), data, None)]))
    consumer = Consumer({"bootstrap.servers": topics.bootstrap,
                         "group.id": f"foreign-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe([RAW])
    found = None
    deadline = time.monotonic() + 60
    try:
        while found is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.key() == sample.source_id.encode():
                found = msg.value()
    finally:
        consumer.close()
    assert found is not None, "the Confluent consumer never saw the hub's message"
    assert found[:2] == b"\xc3\x01"
    value = avro.io.DatumReader(_schema()).read(avro.io.BinaryDecoder(io.BytesIO(found[10:])))
    assert BawasluReport.from_avro(value) == sample
