"""The wire format, byte for byte, against other Avro implementations.

- Apache Avro for Java (the reference, from Maven Central): decodes the hub's single-object bytes
  with its own ``BinaryMessageDecoder`` (marker, fingerprint, body) and re-encodes them with
  ``BinaryMessageEncoder`` to the identical bytes.
- The Apache ``avro`` Python package: bodies both ways. Its parsing canonical form keeps
  ``{"type": "long"}`` for logical types where the spec (and Java, and fastavro) write ``"long"``,
  so its fingerprints differ for schemas with logical types; Java is the fingerprint reference.

No Confluent-compatible registry server can run on this machine (Apicurio's and Confluent's are
not published as runnable artifacts on Maven Central or PyPI), so the Confluent framing is checked
with an in-process registry object implementing the codec's two-call protocol.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from pathlib import Path

import avro.io
import avro.schema
import pytest

from schemas.codec import SOE_MARKER, AvroCodec, expanded_schema
from schemas.models import TOPIC_MODELS, BawasluReport
from tests.unit.test_schemas_models import SAMPLES

pytestmark = pytest.mark.contract
GOLDEN = Path(__file__).parent / "golden"
TOPICAL = {m.avro_name for m in TOPIC_MODELS.values()}
TOP_SAMPLES = [s for s in SAMPLES if s.avro_name in TOPICAL]


JAVA_DIR = Path(__file__).parent / "java"
JAVA_LIBS = Path(__file__).resolve().parents[2] / ".netral" / "dist" / "avro-java"


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


def _apache(name: str) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(expanded_schema(name)))


def _apache_write(schema: avro.schema.Schema, value: dict) -> bytes:
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(value, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def _apache_read(schema: avro.schema.Schema, body: bytes) -> dict:
    return avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(body)))


def _plain(value: object) -> object:
    """Apache avro wants unions of records as plain dicts, not fastavro's tuple notation."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return _plain(value[1])
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class InProcessRegistry:
    """The codec's SchemaRegistry protocol, in memory (ids assigned in order)."""

    def __init__(self) -> None:
        self.by_id: dict[int, str] = {}
        self.by_subject: dict[tuple[str, str], int] = {}

    def register(self, subject: str, schema: str) -> int:
        key = (subject, schema)
        if key not in self.by_subject:
            self.by_subject[key] = len(self.by_id) + 1
            self.by_id[self.by_subject[key]] = schema
        return self.by_subject[key]

    def schema_by_id(self, schema_id: int) -> str:
        if schema_id not in self.by_id:
            raise LookupError(schema_id)
        return self.by_id[schema_id]


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


@pytest.mark.parametrize("sample", TOP_SAMPLES, ids=lambda s: s.avro_name.split(".")[-1])
def test_hub_bodies_are_readable_by_python_avro(sample: BawasluReport) -> None:
    data = AvroCodec().encode(sample.avro_name, sample.to_avro())
    assert data[:2] == SOE_MARKER
    value = _apache_read(_apache(sample.avro_name), data[10:])
    assert type(sample).from_avro(value) == sample


@pytest.mark.parametrize("sample", TOP_SAMPLES, ids=lambda s: s.avro_name.split(".")[-1])
def test_python_avro_bodies_are_decoded_by_the_hub(sample: BawasluReport) -> None:
    schema = _apache(sample.avro_name)
    body = _apache_write(schema, _plain(sample.to_avro()))  # type: ignore[arg-type]
    header = AvroCodec().encode(sample.avro_name, sample.to_avro())[:10]
    decoded = AvroCodec().decode(header + body)
    assert decoded.schema == sample.avro_name
    assert type(sample).from_avro(decoded.value) == sample


def test_confluent_framing_both_ways() -> None:
    sample = TOP_SAMPLES[0]
    registry = InProcessRegistry()
    codec = AvroCodec(registry=registry)
    data = codec.encode(sample.avro_name, sample.to_avro(), topic="netral.raw.bawaslu")
    (schema_id,) = struct.unpack(">I", data[1:5])
    assert data[0] == 0
    assert registry.by_subject[("netral.raw.bawaslu-value", registry.by_id[schema_id])] == schema_id
    # what the registry holds keeps logical types and defaults (a full schema, not canonical form)
    assert "timestamp-millis" in registry.by_id[schema_id]
    assert type(sample).from_avro(_apache_read(_apache(sample.avro_name), data[5:])) == sample
    # and bytes framed by someone else with that id decode in a fresh codec
    other = struct.pack(">bI", 0, schema_id) + _apache_write(
        _apache(sample.avro_name), _plain(sample.to_avro()))  # type: ignore[arg-type]
    decoded = AvroCodec(registry=registry).decode(other)
    assert decoded.framing == "confluent"
    assert type(sample).from_avro(decoded.value) == sample


def test_golden_bytes_are_stable() -> None:
    """Regenerate (only for a deliberate wire change) with:
    python -c "from tests.contract.test_wire_interop import write_golden; write_golden()"
    """
    for i, sample in enumerate(TOP_SAMPLES):
        path = GOLDEN / f"{i:02d}-{sample.avro_name}.bin"
        assert path.exists(), f"missing golden file {path.name}"
        assert AvroCodec().encode(sample.avro_name, sample.to_avro()) == path.read_bytes()


def write_golden() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for i, sample in enumerate(TOP_SAMPLES):
        (GOLDEN / f"{i:02d}-{sample.avro_name}.bin").write_bytes(
            AvroCodec().encode(sample.avro_name, sample.to_avro()))
