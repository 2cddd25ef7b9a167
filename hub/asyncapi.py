"""The AsyncAPI 3.0 document: what an agency integrator reads first.

Generated from the topic catalogue and the shipped Avro schemas, so it cannot drift from the code;
``netral asyncapi`` writes it to docs/asyncapi.yaml and a test checks the committed file is current
and valid against the official AsyncAPI 3.0.0 JSON Schema.

Message payloads are the shipped Avro schemas, expanded so each is self-contained. The one change
from ``expanded_schema()``: a named type's full name is split into ``namespace`` + ``name``, because
the AsyncAPI Avro schema (avroSchema_v1) only accepts dot-free names. Both spellings are the same
Avro schema (same parsing canonical form, same fingerprint).
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
    H_REPLAYED_FROM,
    H_STAGE,
    H_TOPIC,
)
from schemas.models import TOPIC_MODELS
from schemas.topics import TopicSpec, catalogue

from .kafka_admin import LARGE_TOPIC_MAX_BYTES

AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
KAFKA_BINDING = "0.5.0"
# Topics that `netral topics create` gives a larger max.message.bytes (kafka_admin.create_topics):
# agency exports can be big, and a DLQ must hold whatever its stage was sent.
LARGE_TOPIC_PREFIXES = ("netral.raw.", "netral.dlq.")
SCRAM = "agencyScram"
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

DESCRIPTION = f"""\
netral joins what Bawaslu, KASN/BKN, Kemendagri, KemenPAN-RB and each PPK publish about ASN
neutrality cases into one national record on Apache Kafka.

**Wire format.** Every value is Avro. Without a schema registry the hub uses Avro single-object
encoding: the two bytes `C3 01`, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema's parsing canonical form, then the Avro binary body; any Avro library can read and write it
with the `.avsc` files in `schemas/avro/` (named types in sibling files `<fullname>.avsc`). With a
Confluent-compatible registry configured, values use the Confluent framing (`00`, a 4-byte
big-endian schema id, the body) and subject `<topic>-value`. The hub decodes both, and any released
schema version (`schemas/avro/history/`); schemas evolve only BACKWARD-compatibly.

**Schemas.** Each channel's message carries its value schema in full under `payload.schema`
(named types inlined). The same schemas, one named type per file, are the `.avsc` files in
`schemas/avro/` of the repository and of the installed `netral-hub` package; with a registry,
`GET <registry>/subjects/<topic>-value/versions/latest` returns the one in use.

**Keys.** Every key is a UTF-8 string; each channel names what it holds. A raw record's key is its
`source_id`; an empty key or a key that differs from the record's `source_id` is rejected.

**Who writes what.** Each agency's connector writes only its own `netral.raw.<agency>` topic, with
that agency's one record type. Every other topic is written by the hub itself.

**Reading.** The hub's stream workers write in Kafka transactions (exactly once, by default); read
with `isolation.level=read_committed` so writes of an aborted transaction are never seen.

**Dead letters.** A record a stage cannot decode or validate goes to `netral.dlq.<stage>` unchanged
(original key, bytes and headers), and the stream goes on. Headers added, all UTF-8 strings:

- `{H_ERROR_CLASS}`: the error class, e.g. `InvalidMessage`
- `{H_ERROR_MESSAGE}`: the reason, in words
- `{H_STAGE}`: the stage that rejected it
- `{H_TOPIC}`, `{H_PARTITION}`, `{H_OFFSET}`: where it was read
- `{H_FAILED_AT}`: when (ISO 8601)

`netral dlq replay` sends a fixed record back to its source topic with its original headers and
`{H_REPLAYED_FROM}: <stage>:<partition>:<offset>`.
"""


def _unwrap(text: str) -> str:
    """Join each paragraph's wrapped lines, so the YAML folds it instead of doubling newlines."""
    blocks = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        blocks.append("\n".join(lines) if lines[0].startswith("- ") else " ".join(lines))
    return "\n\n".join(blocks)


def _version() -> str:
    try:
        return md.version("netral-hub")
    except md.PackageNotFoundError:
        return "0.0.0"


def _channel_id(topic: str) -> str:
    return topic.replace("netral.", "").replace(".", "-")


def _topic_config(spec: TopicSpec) -> dict[str, Any]:
    config: dict[str, Any] = {"cleanup.policy": [spec.cleanup],
                              "retention.ms": spec.retention_ms or -1}
    if spec.name.startswith(LARGE_TOPIC_PREFIXES):
        config["max.message.bytes"] = LARGE_TOPIC_MAX_BYTES
    return config


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
            # DeadLetter.headers() always writes all seven; the original headers come before them.
            "required": [H_ERROR_CLASS, H_ERROR_MESSAGE, H_STAGE, H_TOPIC, H_PARTITION, H_OFFSET,
                         H_FAILED_AT],
            "additionalProperties": {"type": "string",
                                     "description": "The record's original headers, kept."},
        },
        "payload": {"type": "string", "format": "binary",
                    "description": "The original value bytes, as received."},
    }


def _operation(action: str, cid: str, message: str, summary: str) -> dict[str, Any]:
    """Fresh objects per operation: shared ones would make YAML write anchors and aliases."""
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{cid}"},
        "messages": [{"$ref": f"#/channels/{cid}/messages/{message}"}],
        "summary": summary,
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
                           f"{retention}. Written by the {spec.writer}. Partitions, replicas and "
                           "min.insync.replicas are set by `netral topics create` "
                           "(NETRAL_TOPIC_PARTITIONS, NETRAL_TOPIC_REPLICATION, "
                           "NETRAL_TOPIC_MIN_INSYNC).",
            "messages": {message["name"]: message},
            "bindings": {"kafka": {"topic": spec.name, "topicConfiguration": _topic_config(spec),
                                   "bindingVersion": KAFKA_BINDING}},
        }
        operations[f"send-{cid}"] = _operation(
            "send", cid, message["name"], f"Written to {spec.name} by the {spec.writer}.")
        readers = (["normalize stage"] if spec.name.startswith("netral.raw.")
                   else ["operators (netral dlq list/show/replay)"] if dlq
                   else READERS.get(spec.name, []))
        for reader in readers:
            rid = reader.split(" (")[0].replace(" ", "-").lower()
            operations[f"receive-{cid}-{rid}"] = _operation(
                "receive", cid, message["name"], f"Read from {spec.name} by the {reader}.")
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "netral hub", "version": _version(),
                 "description": _unwrap(DESCRIPTION), "license": {"name": "Apache-2.0"}},
        "defaultContentType": "application/octet-stream",
        "servers": {
            "local": {"host": "localhost:9092", "protocol": "kafka",
                      "description": "The embedded single-node Apache Kafka 3.9 broker "
                                     "(`netral broker start`), PLAINTEXT."},
            "production": {
                "host": "{bootstrap}", "protocol": "kafka-secure",
                "description": "The national cluster (a placeholder: its address is handed to each "
                               "agency with its credentials). Three or more brokers, replication "
                               "3, min ISR 2; TLS, and SASL/SCRAM-SHA-512 with one principal per "
                               "agency, whose ACLs should allow writing only its own raw "
                               "topic.",
                "variables": {"bootstrap": {"default": "kafka.netral.example:9093",
                                            "description": "Bootstrap host:port of the cluster."}},
                "security": [{"$ref": f"#/components/securitySchemes/{SCRAM}"}],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "securitySchemes": {
                SCRAM: {"type": "scramSha512",
                        "description": "SASL/SCRAM-SHA-512 over TLS; one user per agency "
                                       "connector, issued by the hub operators."},
            },
        },
    }
