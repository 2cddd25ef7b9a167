"""Properties of the codec: it round-trips valid records and never raises anything but
SerializationError, whatever bytes (or registry answers) it is given."""

from __future__ import annotations

import contextlib
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.samples import random_nip
from schemas import regions
from schemas.codec import CONFLUENT_MAGIC, SOE_MARKER, AvroCodec, Decoded, default_store
from schemas.errors import SerializationError
from schemas.models import (
    BawasluReport,
    BawasluReviewOutcome,
    Election,
    EvidenceKind,
    EvidenceRef,
    PersonRef,
    Position,
    ReporterChannel,
    ReportKind,
    ViolationType,
)
from tests.factories import report

pytestmark = pytest.mark.unit
CODEC = AvroCodec()
STORE = default_store()
FINGERPRINTS = sorted(STORE.by_fingerprint)
REPORT = STORE.get(BawasluReport.avro_name)
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


class DictRegistry:
    """The codec's SchemaRegistry protocol over a fixed dict (the answers are the test input)."""

    def __init__(self, by_id: dict[int, str]) -> None:
        self.by_id = by_id

    def register(self, subject: str, schema: str) -> int:
        raise AssertionError("decode must not register")

    def schema_by_id(self, schema_id: int) -> str:
        if schema_id not in self.by_id:
            raise LookupError(schema_id)
        return self.by_id[schema_id]


# every record schema we ship, plus things a shared registry may also hold for other producers
REGISTRY_TEXTS = [e.full_json for e in STORE.current.values()] + [
    'syntax = "proto3"; message X { string a = 1; }',  # Confluent Protobuf serializer
    '{"type": "object", "properties": {"a": {"type": "string"}}}',  # JSON Schema serializer
    '{"type": "record", "name": "id.go.netral.BawasluReport", "fields": '
    '[{"name": "e", "type": "id.go.netral.Election"}]}',  # a reference, not inlined
    '{"type": "array", "items": "long"}', '"bytes"', "null", "",
    '{"type": "record", "name": "id.go.netral.BawasluReport", "fields": '
    '[{"name": "source_id", "type": "long"}]}',  # same name, incompatible
]
REGISTRY = DictRegistry(dict(enumerate(REGISTRY_TEXTS, start=1)))
WITH_REGISTRY = AvroCodec(registry=REGISTRY)


def _only_serialization_error(codec: AvroCodec, data: bytes) -> Decoded | None:
    """Decode; any exception but SerializationError escapes and fails the property."""
    with contextlib.suppress(SerializationError):
        decoded = codec.decode(data)
        assert decoded.schema in STORE.current
        assert isinstance(decoded.value, dict)
        return decoded
    return None


# -- decoding never raises anything else ----------------------------------------------------------
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    _only_serialization_error(CODEC, data)
    _only_serialization_error(WITH_REGISTRY, data)


@settings(max_examples=200)
@given(st.sampled_from(FINGERPRINTS), st.binary(max_size=400))
def test_real_fingerprint_with_garbage_body(fp: bytes, body: bytes) -> None:
    _only_serialization_error(CODEC, SOE_MARKER + fp + body)


@settings(max_examples=100)
@given(st.integers(0, 2**32 - 1), st.binary(max_size=200))
def test_confluent_framing_without_registry(schema_id: int, body: bytes) -> None:
    with pytest.raises(SerializationError):
        CODEC.decode(CONFLUENT_MAGIC + schema_id.to_bytes(4, "big") + body)


@settings(max_examples=200)
@given(st.one_of(st.integers(1, len(REGISTRY_TEXTS) + 2), st.integers(0, 2**32 - 1)),
       st.binary(max_size=300))
def test_confluent_framing_with_registry(schema_id: int, body: bytes) -> None:
    """Known ids, unknown ids, and ids whose schema is Protobuf, JSON Schema or broken."""
    _only_serialization_error(WITH_REGISTRY, CONFLUENT_MAGIC + schema_id.to_bytes(4, "big") + body)


# -- valid reports, and damaged ones ------------------------------------------------------------
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=120)
PLACES = sorted(code for code, r in regions.regions().items())
NIPS = st.integers(0, 2**32).map(lambda seed: random_nip(random.Random(seed)))
INSTANTS = st.integers(-2 * 10**12, int(NOW.timestamp() * 1000)).map(
    lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))
EVIDENCE = st.builds(
    EvidenceRef, kind=st.sampled_from(list(EvidenceKind)), uri=TEXT,
    sha256=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    description=st.none() | TEXT)
PERSONS = st.builds(
    PersonRef, nip=st.none() | NIPS, name=TEXT, agency_name=TEXT,
    agency_code=st.none() | TEXT.filter(lambda s: len(s) <= 100),
    position=st.none() | st.sampled_from(list(Position)), position_title=st.none() | TEXT,
    region_code=st.none() | st.sampled_from(PLACES))


@st.composite
def reports(draw: st.DrawFn) -> BawasluReport:
    """Valid reports over the whole schema: unions, arrays, enums, dates before 1970."""
    recorded = draw(INSTANTS)
    review = draw(st.none() | st.tuples(st.sampled_from(list(BawasluReviewOutcome)),
                                        st.integers(0, 10**9), st.none() | TEXT))
    return BawasluReport(
        source_id=draw(TEXT.filter(lambda s: len(s) <= 100)), recorded_at=recorded,
        election=draw(st.sampled_from(list(Election))),
        report_kind=draw(st.sampled_from(list(ReportKind))), register_number=draw(TEXT),
        reporter_channel=draw(st.sampled_from(list(ReporterChannel))),
        incident_date=recorded.date() - timedelta(days=draw(st.integers(0, 400))),
        incident_place=draw(TEXT), region_code=draw(st.sampled_from(PLACES)),
        accused=draw(PERSONS), violation_type=draw(st.sampled_from(list(ViolationType))),
        description=draw(TEXT), evidence=tuple(draw(st.lists(EVIDENCE, max_size=4))),
        review_outcome=review[0] if review else None,
        reviewed_at=min(NOW, recorded + timedelta(milliseconds=review[1])) if review else None,
        review_note=review[2] if review else None,
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(reports())
def test_round_trip(record: BawasluReport) -> None:
    data = CODEC.encode(record.avro_name, record.to_avro())
    assert data[:10] == SOE_MARKER + REPORT.fingerprint
    decoded = CODEC.decode(data, expect=record.avro_name)
    assert (decoded.schema, decoded.framing) == (record.avro_name, "single-object")
    assert BawasluReport.from_avro(decoded.value) == record


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(reports(), st.data())
def test_truncated_message_is_a_serialization_error(record: BawasluReport,
                                                    data: st.DataObject) -> None:
    """Every strict prefix of a valid message fails cleanly (never a partial record)."""
    full = CODEC.encode(record.avro_name, record.to_avro())
    cut = data.draw(st.integers(0, len(full) - 1))
    with pytest.raises(SerializationError):
        CODEC.decode(full[:cut])


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(reports(), st.data())
def test_damaged_body_is_decoded_or_a_serialization_error(record: BawasluReport,
                                                          data: st.DataObject) -> None:
    full = bytearray(CODEC.encode(record.avro_name, record.to_avro()))
    at = data.draw(st.integers(10, len(full) - 1))
    full[at] ^= data.draw(st.integers(1, 255))
    _only_serialization_error(CODEC, bytes(full))


def test_registry_fixtures_are_what_they_claim() -> None:
    """The registry's junk entries really are unusable, and its real ones really decode."""
    assert json.loads(REGISTRY_TEXTS[0])["type"] == "record"
    real = REGISTRY_TEXTS.index(REPORT.full_json) + 1
    sample = report(seed=1)
    body = CODEC.encode(REPORT.name, sample.to_avro())[10:]
    decoded = WITH_REGISTRY.decode(CONFLUENT_MAGIC + real.to_bytes(4, "big") + body)
    assert BawasluReport.from_avro(decoded.value) == sample
    for junk in range(len(STORE.current) + 1, len(REGISTRY_TEXTS) + 1):
        with pytest.raises(SerializationError):
            WITH_REGISTRY.decode(CONFLUENT_MAGIC + junk.to_bytes(4, "big") + body)
