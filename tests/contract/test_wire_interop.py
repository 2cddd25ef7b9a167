"""The wire format, byte for byte, against other Avro implementations.

- Apache Avro for Java (the reference, from Maven Central): decodes the hub's single-object bytes
  with its own ``BinaryMessageDecoder`` (marker, fingerprint, body) and re-encodes them with
  ``BinaryMessageEncoder`` to the identical bytes.
- The Apache ``avro`` Python package: fingerprints, bodies and whole framed messages both ways.
  Its parsing canonical form (1.12) keeps ``{"type": "long"}`` for a logical-type primitive where
  the spec's [PRIMITIVES]/[STRIP] rules (and Java, and fastavro) give ``"long"``, so its
  fingerprint of a schema *with* logical types differs from the spec's. Stripping
  ``logicalType`` first (attributes [STRIP] drops anyway) makes it compute the spec's fingerprint;
  ``test_python_avro_fingerprints`` pins both facts.

No Confluent-compatible registry server runs on this machine (Apicurio's and Confluent's are not
published as runnable artifacts on Maven Central or PyPI), so the Confluent framing is checked
with an in-process registry object implementing the codec's two-call ``SchemaRegistry`` protocol:
only the id lookup is simulated, the bytes are real.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any, cast

import avro.io
import avro.schema
import pytest
from fastavro.schema import load_schema

from schemas.codec import AvroCodec, default_store, expanded_schema
from schemas.errors import SerializationError
from schemas.models import TOPIC_MODELS, AvroRecord
from tests.unit.test_schemas_models import SAMPLES

pytestmark = pytest.mark.contract
GOLDEN = Path(__file__).parent / "golden"
HISTORY = Path(__file__).resolve().parents[2] / "schemas" / "avro" / "history"
RELEASES = sorted(p for p in HISTORY.iterdir() if p.is_dir())
TOPICAL = {m.avro_name for m in TOPIC_MODELS.values()}
TOP_SAMPLES: list[AvroRecord] = [s for s in SAMPLES if s.avro_name in TOPICAL]
SPEC_MARKER = b"\xc3\x01"  # from the Avro spec, deliberately not imported from the codec
FIXED_ID = 4242

JAVA_DIR = Path(__file__).parent / "java"
JAVA_LIBS = Path(__file__).resolve().parents[2] / ".netral" / "dist" / "avro-java"


def _short(sample: AvroRecord) -> str:
    return sample.avro_name.rsplit(".", 1)[-1]


# -- the Apache avro package, on its own -----------------------------------------------------------
def strip_logical(schema: Any) -> Any:
    """The schema without ``logicalType`` attributes (the spec's [STRIP] drops them anyway)."""
    if isinstance(schema, dict):
        return {k: strip_logical(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [strip_logical(v) for v in schema]
    return schema


def apache_schema(name: str) -> avro.schema.Schema:
    """The Apache package's parse of the expanded ``.avsc`` (named types inlined)."""
    return avro.schema.parse(json.dumps(expanded_schema(name)))


def apache_fingerprint(name: str) -> bytes:
    """CRC-64-AVRO as the Apache package computes it (8 bytes, little-endian as on the wire)."""
    stripped = avro.schema.parse(json.dumps(strip_logical(expanded_schema(name))))
    return bytes(stripped.fingerprint("CRC-64-AVRO"))


def plain(value: object) -> object:
    """Apache avro wants unions of records as plain dicts, not fastavro's tuple notation."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return plain(value[1])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def apache_body(name: str, value: dict[str, Any]) -> bytes:
    """The Avro binary body as the Apache package writes it."""
    buf = io.BytesIO()
    avro.io.DatumWriter(apache_schema(name)).write(plain(value), avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def apache_read(name: str, body: bytes) -> dict[str, Any]:
    """Decode a body with the Apache package; the whole body must be consumed."""
    buf = io.BytesIO(body)
    value = avro.io.DatumReader(apache_schema(name)).read(avro.io.BinaryDecoder(buf))
    assert buf.tell() == len(body), f"{len(body) - buf.tell()} bytes left unread by avro"
    return cast(dict[str, Any], value)


def apache_single_object(name: str, value: dict[str, Any]) -> bytes:
    """A whole single-object message built without the hub: spec marker, avro fingerprint, body."""
    return SPEC_MARKER + apache_fingerprint(name) + apache_body(name, value)


class InProcessRegistry:
    """The codec's ``SchemaRegistry`` protocol in memory: preset ids, then ids in order."""

    def __init__(self, preset: dict[int, str] | None = None) -> None:
        self.by_id: dict[int, str] = dict(preset or {})
        self.subjects: dict[tuple[str, str], int] = {}

    def register(self, subject: str, schema: str) -> int:
        key = (subject, schema)
        if key not in self.subjects:
            known = [i for i, text in self.by_id.items() if text == schema]
            self.subjects[key] = known[0] if known else max(self.by_id, default=0) + 1
            self.by_id[self.subjects[key]] = schema
        return self.subjects[key]

    def schema_by_id(self, schema_id: int) -> str:
        if schema_id not in self.by_id:
            raise LookupError(schema_id)
        return self.by_id[schema_id]


# -- fingerprints ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(default_store().current), ids=lambda n: n.split(".")[-1])
def test_python_avro_fingerprints(name: str) -> None:
    entry = default_store().get(name)
    assert apache_fingerprint(name) == entry.fingerprint
    # avro's own canonical form (logical types kept) differs only by {"type":"long"} for "long"
    own = apache_schema(name)
    assert re.sub(r'\{"type":"(int|long)"\}', r'"\1"', own.canonical_form) == entry.canonical
    if "logicalType" not in json.dumps(expanded_schema(name)):
        assert bytes(own.fingerprint("CRC-64-AVRO")) == entry.fingerprint


# -- Apache Avro for Java --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def java_avro() -> Path:
    """Apache Avro for Java, resolved once from Maven Central into the repo's cache."""
    if not (JAVA_LIBS / ".complete").exists():
        mvn = shutil.which("mvn")
        assert mvn, "Maven is needed to fetch Apache Avro for Java (see README prerequisites)"
        subprocess.run([mvn, "-q", "-B", "-f", str(JAVA_DIR / "pom.xml"),
                        "dependency:copy-dependencies", f"-DoutputDirectory={JAVA_LIBS}"],
                       check=True, timeout=600)
        (JAVA_LIBS / ".complete").write_text("1.12.0")
    return JAVA_LIBS


def test_java_reference_reads_and_writes_the_same_bytes(java_avro: Path, tmp_path: Path) -> None:
    for sample in TOP_SAMPLES:
        name = sample.avro_name
        data = AvroCodec().encode(name, sample.to_avro())
        (tmp_path / "s.avsc").write_text(json.dumps(expanded_schema(name)))
        (tmp_path / "in.bin").write_bytes(data)
        proc = subprocess.run(
            ["java", "-cp", f"{java_avro}/*", str(JAVA_DIR / "AvroInterop.java"),
             str(tmp_path / "s.avsc"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
            capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"
        fingerprint = int(proc.stdout.split("fingerprint=")[1].split()[0], 16)
        assert data[2:10] == fingerprint.to_bytes(8, "little", signed=fingerprint < 0), name
        java_bytes = (tmp_path / "out.bin").read_bytes()
        assert java_bytes == data, f"{name}: Java's single-object encoding differs"
        assert type(sample).from_avro(AvroCodec().decode(java_bytes).value) == sample


# -- single-object encoding with the Apache avro package ----------------------------------------
@pytest.mark.parametrize("sample", TOP_SAMPLES, ids=_short)
def test_hub_bytes_are_read_by_python_avro(sample: AvroRecord) -> None:
    """(a) marker + avro's fingerprint + a body avro decodes to the same values."""
    name = sample.avro_name
    data = AvroCodec().encode(name, sample.to_avro())
    assert data[:2] == SPEC_MARKER
    assert data[2:10] == apache_fingerprint(name)
    value = apache_read(name, data[10:])
    assert value == AvroCodec().decode(data).value
    assert type(sample).from_avro(value) == sample


@pytest.mark.parametrize("sample", TOP_SAMPLES, ids=_short)
def test_python_avro_messages_are_decoded_by_the_hub(sample: AvroRecord) -> None:
    """(b) a message framed and encoded only by the avro package; identical to the hub's bytes."""
    data = apache_single_object(sample.avro_name, sample.to_avro())
    decoded = AvroCodec().decode(data, expect=sample.avro_name)
    assert (decoded.schema, decoded.framing) == (sample.avro_name, "single-object")
    assert type(sample).from_avro(decoded.value) == sample
    assert data == AvroCodec().encode(sample.avro_name, sample.to_avro())


# -- Confluent framing ----------------------------------------------------------------------------
def test_hub_confluent_bytes_with_a_fixed_id() -> None:
    """(c) the hub writes 00 + the id the registry gave, big-endian, + a body avro reads."""
    sample = TOP_SAMPLES[0]
    entry = default_store().get(sample.avro_name)
    registry = InProcessRegistry({FIXED_ID: entry.full_json})
    data = AvroCodec(registry=registry).encode(entry.name, sample.to_avro(), topic="netral.x")
    assert data[:5] == b"\x00\x00\x00\x10\x92"  # 4242
    assert registry.subjects == {("netral.x-value", entry.full_json): FIXED_ID}
    # what the registry holds keeps logical types, defaults and docs (a full schema)
    assert "timestamp-millis" in entry.full_json
    assert '"default"' in entry.full_json
    assert type(sample).from_avro(apache_read(entry.name, data[5:])) == sample
    assert data[5:] == apache_body(entry.name, sample.to_avro())


@pytest.mark.parametrize("sample", TOP_SAMPLES, ids=_short)
def test_python_avro_confluent_bytes_are_decoded_by_the_hub(sample: AvroRecord) -> None:
    """(c) the schema text as the avro package serialises it, registered under a fixed id."""
    name = sample.avro_name
    registry = InProcessRegistry({FIXED_ID: str(apache_schema(name))})
    data = struct.pack(">bI", 0, FIXED_ID) + apache_body(name, sample.to_avro())
    decoded = AvroCodec(registry=registry).decode(data, expect=name)
    assert (decoded.schema, decoded.framing) == (name, "confluent")
    assert type(sample).from_avro(decoded.value) == sample


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_confluent_bytes_from_a_released_writer_schema(release: Path) -> None:
    """A registry id naming a released (older) schema resolves to the current reader."""
    sample = TOP_SAMPLES[0]
    old = load_schema(str(release / f"{sample.avro_name}.avsc"), _write_hint=False)
    registry = InProcessRegistry({7: json.dumps(old)})
    body = apache_body(sample.avro_name, sample.to_avro())
    decoded = AvroCodec(registry=registry).decode(b"\x00\x00\x00\x00\x07" + body)
    assert type(sample).from_avro(decoded.value) == sample


@pytest.mark.parametrize("text", [
    'syntax = "proto3"; message Report { string id = 1; }',
    '{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}',
    '{"type": "record", "name": "BawasluReport", "namespace": "id.go.netral",'
    ' "fields": [{"name": "election", "type": "id.go.netral.Election"}]}',
    '{"type": "array", "items": "long"}',
    '"string"',
    '{"type": "record", "name": "other.Thing", "fields": []}',
], ids=["protobuf", "json-schema", "unresolved-reference", "array", "primitive", "foreign-record"])
def test_a_registry_schema_the_hub_cannot_use_is_a_serialization_error(text: str) -> None:
    """Confluent's Protobuf and JSON Schema serialisers use the same magic byte: DLQ, no crash."""
    codec = AvroCodec(registry=InProcessRegistry({9: text}))
    with pytest.raises(SerializationError, match="schema id 9"):
        codec.decode(b"\x00\x00\x00\x00\x09\x02\x02")


# -- golden bytes ---------------------------------------------------------------------------------
def test_golden_bytes_are_stable() -> None:
    """(d) Pinned encodings of the fixed samples, also readable without the hub.

    Regenerate only for a deliberate wire change (say so in the commit), from the repo root:
    PYTHONPATH=. python -c "import tests.contract.test_wire_interop as t; t.write_golden()"
    """
    for i, sample in enumerate(TOP_SAMPLES):
        path = GOLDEN / f"{i:02d}-{sample.avro_name}.bin"
        assert path.exists(), f"missing golden file {path.name}"
        golden = path.read_bytes()
        assert AvroCodec().encode(sample.avro_name, sample.to_avro()) == golden, path.name
        assert golden[:10] == SPEC_MARKER + apache_fingerprint(sample.avro_name)
        assert type(sample).from_avro(apache_read(sample.avro_name, golden[10:])) == sample


def write_golden() -> None:
    """Rewrite ``tests/contract/golden/*.bin`` from the current samples and codec."""
    GOLDEN.mkdir(exist_ok=True)
    for i, sample in enumerate(TOP_SAMPLES):
        (GOLDEN / f"{i:02d}-{sample.avro_name}.bin").write_bytes(
            AvroCodec().encode(sample.avro_name, sample.to_avro()))
