"""The wire codec: Avro via fastavro, in either of two framings.

- Without a schema registry: Avro single-object encoding (spec: marker ``C3 01``, then the 8-byte
  little-endian CRC-64-AVRO fingerprint of the writer schema's canonical form, then the body), so
  any Avro library can read our messages with the shipped ``.avsc`` files.
- With a registry: the Confluent wire format (magic byte ``0``, 4-byte big-endian schema id, body).

Decoding accepts both framings and any writer schema we know (current or released history), and
resolves it to the current reader schema. Every failure is a
:class:`~schemas.errors.SerializationError` carrying a reason a person understands.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form
from fastavro.types import Schema

from .errors import SerializationError
from .models.base import AvroRecord

SOE_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
SOE_HEADER_LEN = 10
CONFLUENT_HEADER_LEN = 5
NAMESPACE = "id.go.netral"


@dataclass(frozen=True)
class SchemaEntry:
    """One parsed schema and its identities."""

    name: str  # full name, e.g. id.go.netral.BawasluReport
    parsed: Schema
    canonical: str
    full_json: str  # the expanded schema with logical types, defaults and docs (for registries)
    fingerprint: bytes  # 8 bytes, little-endian as on the wire
    version: str  # "current" or the released version it comes from


def _avsc_dir() -> Path:
    return Path(str(resources.files("schemas").joinpath("avro")))


def _entry(path: Path, version: str) -> SchemaEntry:
    expanded: dict[str, Any] = load_schema(str(path), _write_hint=False)  # type: ignore[assignment]
    canonical = to_parsing_canonical_form(expanded)
    name = str(expanded["name"])
    return SchemaEntry(
        name=name if "." in name else f"{expanded.get('namespace', NAMESPACE)}.{name}",
        parsed=fastavro.parse_schema(expanded),
        canonical=canonical,
        full_json=json.dumps(expanded),
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        version=version,
    )


def expanded_schema(name: str) -> dict[str, Any]:
    """A record's self-contained JSON schema (named types inlined), for other Avro libraries."""
    path = _avsc_dir() / f"{name}.avsc"
    if not path.exists():
        raise SerializationError(f"no schema named {name} in schemas/avro")
    return dict(load_schema(str(path), _write_hint=False))  # type: ignore[arg-type]


class SchemaStore:
    """Every record schema the hub ships: current ones by name, all versions by fingerprint."""

    def __init__(self, root: Path | None = None) -> None:
        root = root or _avsc_dir()
        self.current: dict[str, SchemaEntry] = {}
        self.by_fingerprint: dict[bytes, SchemaEntry] = {}
        for path in sorted(root.glob("*.avsc")):
            if json.loads(path.read_text()).get("type") != "record":
                continue
            entry = _entry(path, "current")
            self.current[entry.name] = entry
            self.by_fingerprint[entry.fingerprint] = entry
        history = root / "history"
        for vdir in sorted(history.glob("*")) if history.exists() else []:
            for path in sorted(vdir.glob("*.avsc")):
                if json.loads(path.read_text()).get("type") != "record":
                    continue
                entry = _entry(path, vdir.name)
                self.by_fingerprint.setdefault(entry.fingerprint, entry)

    def get(self, name: str) -> SchemaEntry:
        try:
            return self.current[name]
        except KeyError:
            raise SerializationError(f"unknown schema {name!r}") from None


@lru_cache(maxsize=1)
def default_store() -> SchemaStore:
    """The shipped schemas, parsed once per process."""
    return SchemaStore()


class SchemaRegistry(Protocol):
    """The two calls the codec needs from a Confluent-compatible registry (cached by the caller)."""

    def register(self, subject: str, schema: str) -> int: ...

    def schema_by_id(self, schema_id: int) -> str: ...


@dataclass(frozen=True)
class Decoded:
    """A decoded record: its schema's full name and the value as the current schema reads it."""

    schema: str
    value: dict[str, Any]
    framing: str  # "single-object" or "confluent"


def describe_prefix(data: bytes) -> str:
    """A short human hint of what some bytes look like, for DLQ reasons."""
    head = data[:8].hex(" ").upper()
    if data[:1] in (b"{", b"["):
        return f"looks like JSON (starts with {head})"
    return f"starts with {head or 'nothing (empty message)'}"


class AvroCodec:
    """Encode and decode hub records. Parse once, then cheap per message.

    ``registry`` switches encoding to the Confluent framing; decoding accepts both regardless.
    """

    def __init__(
        self,
        store: SchemaStore | None = None,
        registry: SchemaRegistry | None = None,
        max_bytes: int = 1024 * 1024,
    ) -> None:
        self.store = store or default_store()
        self.registry = registry
        self.max_bytes = max_bytes
        self._ids_by_subject: dict[tuple[str, str], int] = {}
        self._by_id: dict[int, Schema] = {}

    # -- encode ----------------------------------------------------------------------------------
    def encode(self, name: str, value: Mapping[str, Any], topic: str | None = None) -> bytes:
        """Encode ``value`` with schema ``name``; ``topic`` is the registry subject's topic."""
        entry = self.store.get(name)
        buf = io.BytesIO()
        if self.registry is not None:
            if topic is None:
                raise SerializationError("the Confluent framing needs the topic (subject) name")
            buf.write(CONFLUENT_MAGIC + struct.pack(">I", self._schema_id(topic, entry)))
        else:
            buf.write(SOE_MARKER + entry.fingerprint)
        try:
            fastavro.schemaless_writer(buf, entry.parsed, dict(value))
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise SerializationError(f"value does not fit schema {name}: {err}") from err
        return buf.getvalue()

    def encode_record(self, record: AvroRecord, topic: str | None = None) -> bytes:
        """Encode a model with its own schema (the fast :meth:`AvroRecord.avro_dump`)."""
        return self.encode(record.avro_name, record.avro_dump(), topic=topic)

    def _schema_id(self, topic: str, entry: SchemaEntry) -> int:
        key = (f"{topic}-value", entry.name)
        if key not in self._ids_by_subject:
            assert self.registry is not None
            self._ids_by_subject[key] = self.registry.register(key[0], entry.full_json)
        return self._ids_by_subject[key]

    # -- decode ----------------------------------------------------------------------------------
    def decode(self, data: bytes | None, expect: str | None = None) -> Decoded:
        """Decode framed bytes; ``expect`` restricts the accepted record name (e.g. per topic)."""
        if not data:
            raise SerializationError("empty message: no Avro framing")
        if len(data) > self.max_bytes:
            raise SerializationError(
                f"message of {len(data)} bytes exceeds the {self.max_bytes}-byte limit"
            )
        if data[:2] == SOE_MARKER:
            writer, reader, body, framing = self._soe(data)
        elif data[:1] == CONFLUENT_MAGIC and len(data) > CONFLUENT_HEADER_LEN:
            writer, reader, body, framing = self._confluent(data)
        else:
            raise SerializationError(
                f"not an Avro message, {describe_prefix(data)}: expected the single-object "
                f"marker C3 01 or the Confluent magic byte 00"
            )
        if expect is not None and reader.name != expect:
            raise SerializationError(f"wrong schema: expected {expect}, got {reader.name}")
        value = self._read(body, writer, reader.parsed, reader.name)
        return Decoded(schema=reader.name, value=value, framing=framing)

    def _soe(self, data: bytes) -> tuple[Schema, SchemaEntry, bytes, str]:
        if len(data) < SOE_HEADER_LEN:
            raise SerializationError("truncated single-object header (fewer than 10 bytes)")
        fp = data[2:SOE_HEADER_LEN]
        writer = self.store.by_fingerprint.get(fp)
        if writer is None:
            raise SerializationError(
                f"unknown schema fingerprint {fp.hex()}: not a schema this hub ships "
                f"(publish with the .avsc files from schemas/avro)"
            )
        return writer.parsed, self.store.get(writer.name), data[SOE_HEADER_LEN:], "single-object"

    def _confluent(self, data: bytes) -> tuple[Schema, SchemaEntry, bytes, str]:
        (schema_id,) = struct.unpack(">I", data[1:CONFLUENT_HEADER_LEN])
        if self.registry is None:
            raise SerializationError(
                f"Confluent-framed message (schema id {schema_id}) but no schema registry is "
                f"configured (set NETRAL_SCHEMA_REGISTRY_URL)"
            )
        writer = self._by_id.get(schema_id)
        if writer is None:
            try:
                text = self.registry.schema_by_id(schema_id)
            except LookupError:
                raise SerializationError(f"unknown schema id {schema_id} in the registry") from None
            try:
                writer = fastavro.parse_schema(json.loads(text))
            except Exception as err:  # noqa: BLE001 - json and fastavro raise many types
                # e.g. a Protobuf or JSON Schema producer (same magic byte) on this topic
                raise SerializationError(
                    f"schema id {schema_id} is not an Avro schema the hub can read: "
                    f"{type(err).__name__}: {str(err)[:200]}"
                ) from None
            self._by_id[schema_id] = writer
        name = str(writer.get("name", "")) if isinstance(writer, dict) else ""
        if name not in self.store.current:
            what = f"record {name}" if name else "not a named record"
            raise SerializationError(
                f"schema id {schema_id} is {what}: not a record schema this hub ships"
            )
        return writer, self.store.current[name], data[CONFLUENT_HEADER_LEN:], "confluent"

    @staticmethod
    def _read(body: bytes, writer: Schema, reader: Schema, name: str) -> dict[str, Any]:
        buf = io.BytesIO(body)
        try:
            # same schema: skip resolution (fastavro resolves whenever a reader is given)
            value = fastavro.schemaless_reader(buf, writer, None if reader is writer else reader)
        except (EOFError, StopIteration):
            raise SerializationError(f"truncated Avro body for {name}") from None
        except Exception as err:  # noqa: BLE001 - fastavro raises many types on garbage input
            raise SerializationError(
                f"corrupt Avro body for {name}: {type(err).__name__}: {err}"
            ) from None
        if buf.tell() != len(body):
            raise SerializationError(
                f"{len(body) - buf.tell()} trailing bytes after the {name} record "
                f"(wrong schema or corrupt message)"
            )
        if not isinstance(value, dict):
            raise SerializationError(f"{name} did not decode to a record")
        return value


Encoder = Callable[[str, Mapping[str, Any]], bytes]
