"""The AsyncAPI 3.0 document: what an agency integrator reads first.

Generated from the topic catalogue and the shipped Avro schemas, so it cannot drift from the code;
``netral asyncapi`` writes it to docs/asyncapi.yaml and a test checks the committed file is current
and valid against the official AsyncAPI 3.0.0 JSON Schema.
"""

from __future__ import annotations

import importlib.metadata as md
from typing import Any

from schemas.codec import expanded_schema
from schemas.dlq import (
    H_ERROR_CLASS,
    H_ERROR_MESSAGE,
    H_FAILED_AT,
    H_OFFSET,
    H_PARTITION,
    H_STAGE,
    H_TOPIC,
)
from schemas.models import TOPIC_MODELS
from schemas.topics import TopicSpec, catalogue

AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
KAFKA_BINDING = "0.5.0"
# Who reads each topic (the writer is in the catalogue); raw topics are all read by normalize.
READERS: dict[str, list[str]] = {
    "netral.events": ["cases processor"],
    "netral.cases": ["SQL sink (national record)"],
    "netral.case-events": ["SQL sink (audit trail)"],
    "netral.orders.siasn": ["SIASN adapter", "SQL sink"],
    "netral.orders.siasn.results": ["cases processor", "SQL sink"],
    "netral.alerts": ["Satgas channels", "SQL sink"],
    "netral.commands": ["cases processor"],
}

DESCRIPTION = """\
netral joins what Bawaslu, KASN/BKN, Kemendagri, KemenPAN-RB and each PPK publish about ASN
neutrality cases into one national record on Apache Kafka.

**Wire format.** Every value is Avro. Without a schema registry the hub uses Avro single-object
encoding: the two bytes `C3 01`, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema's parsing canonical form, then the Avro binary body; any Avro library can read and write it
with the `.avsc` files in `schemas/avro/` (named types in sibling files `<fullname>.avsc`). With a
Confluent-compatible registry configured, values use the Confluent framing (`00`, a 4-byte
big-endian schema id, the body) and subject `<topic>-value`. The hub decodes both, and any released
schema version (`schemas/avro/history/`); schemas evolve only BACKWARD-compatibly.

**Keys.** A raw record's Kafka key is its `source_id` (UTF-8); an empty key or a key that differs
from the record's `source_id` is rejected.

**Who writes what.** Each agency's connector writes only its own `netral.raw.<agency>` topic, with
that agency's one record type. Every other topic is written by the hub itself.

**Dead letters.** A record a stage cannot decode or validate goes to `netral.dlq.<stage>` unchanged
(original key, bytes and headers) plus headers saying why; nothing is lost and the stream goes on.
"""


def _version() -> str:
    try:
        return md.version("netral-hub")
    except md.PackageNotFoundError:
        return "0.0.0"


def _channel_id(topic: str) -> str:
    return topic.replace("netral.", "").replace(".", "-")


def _topic_config(spec: TopicSpec) -> dict[str, Any]:
    return {"cleanup.policy": [spec.cleanup], "retention.ms": spec.retention_ms or -1}


def _named(schema: Any) -> Any:
    """Write named types as ``name`` + ``namespace`` (AsyncAPI's Avro schema wants short names)."""
    if isinstance(schema, list):
        return [_named(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _named(v) for k, v in sorted(schema.items())}  # stable order, stable file
    name = out.get("name")
    if out.get("type") in ("record", "enum", "fixed") and isinstance(name, str) and "." in name:
        out["namespace"], _, out["name"] = name.rpartition(".")
    return out


def _avro_message(spec: TopicSpec) -> dict[str, Any]:
    model = TOPIC_MODELS[spec.name]
    schema = _named(expanded_schema(model.avro_name))
    return {
        "name": model.__name__,
        "title": model.__name__,
        "summary": str(schema.get("doc", model.__name__)).split("\n")[0],
        "contentType": "application/octet-stream",
        "payload": {"schemaFormat": AVRO_FORMAT, "schema": schema},
        "bindings": {"kafka": {"key": {"type": "string", "description": spec.key},
                               "bindingVersion": KAFKA_BINDING}},
    }


def _dlq_message(spec: TopicSpec) -> dict[str, Any]:
    def h(text: str) -> dict[str, str]:
        return {"type": "string", "description": text}

    return {
        "name": f"DeadLetter_{_channel_id(spec.name).replace('-', '_')}",
        "title": "Dead letter",
        "summary": "The original record, unchanged, with the reason it was rejected.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "properties": {
                H_ERROR_CLASS: h("Error class, e.g. SerializationError, InvalidMessage"),
                H_ERROR_MESSAGE: h("The reason, in words a person understands"),
                H_STAGE: h("The stage that rejected it"),
                H_TOPIC: h("Topic the record was read from"),
                H_PARTITION: h("Partition it was read from (decimal)"),
                H_OFFSET: h("Offset it was read from (decimal)"),
                H_FAILED_AT: h("When it was rejected (ISO 8601)"),
            },
            "required": [H_ERROR_CLASS, H_ERROR_MESSAGE, H_STAGE, H_TOPIC],
        },
        "payload": {"type": "string", "format": "binary",
                    "description": "The original value bytes, as received."},
    }


def build_asyncapi() -> dict[str, Any]:
    """The whole document as plain data (deterministic: no timestamps)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in catalogue():
        cid = _channel_id(spec.name)
        dlq = spec.name.startswith("netral.dlq.")
        message = _dlq_message(spec) if dlq else _avro_message(spec)
        retention = (f"{spec.retention_ms // 86_400_000} days" if spec.retention_ms
                     else "kept forever (compacted)")
        channels[cid] = {
            "address": spec.name,
            "title": spec.name,
            "description": f"{spec.value}. Key: {spec.key}. Cleanup: {spec.cleanup}, retention "
                           f"{retention}. Written by the {spec.writer}.",
            "messages": {message["name"]: message},
            "bindings": {"kafka": {"topic": spec.name, "topicConfiguration": _topic_config(spec),
                                   "bindingVersion": KAFKA_BINDING}},
        }
        ref = {"$ref": f"#/channels/{cid}"}
        msg_ref = [{"$ref": f"#/channels/{cid}/messages/{message['name']}"}]
        operations[f"send-{cid}"] = {
            "action": "send", "channel": ref, "messages": msg_ref,
            "summary": f"The {spec.writer} publishes to {spec.name}.",
        }
        readers = (["normalize stage"] if spec.name.startswith("netral.raw.")
                   else ["operators (netral dlq list/show/replay)"] if dlq
                   else READERS.get(spec.name, []))
        for reader in readers:
            rid = reader.split(" (")[0].replace(" ", "-").lower()
            operations[f"receive-{cid}-{rid}"] = {
                "action": "receive", "channel": ref, "messages": msg_ref,
                "summary": f"The {reader} consumes {spec.name}.",
            }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "netral hub", "version": _version(), "description": DESCRIPTION,
                 "license": {"name": "Apache-2.0"}},
        "defaultContentType": "application/octet-stream",
        "servers": {
            "local": {"host": "localhost:9092", "protocol": "kafka",
                      "description": "The embedded single-node Apache Kafka 3.9 broker "
                                     "(`netral broker start`), PLAINTEXT."},
            "production": {"host": "kafka1:9092", "protocol": "kafka-secure",
                           "description": "The national cluster: three or more brokers, "
                                          "replication 3, min ISR 2; SASL/SCRAM-SHA-512 over "
                                          "TLS with one principal per agency."},
        },
        "channels": channels,
        "operations": operations,
    }
