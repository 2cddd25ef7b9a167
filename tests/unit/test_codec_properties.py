"""Properties of the codec: it round-trips valid records and never raises anything but
SerializationError, whatever bytes it is given."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import CONFLUENT_MAGIC, SOE_MARKER, AvroCodec, default_store
from schemas.errors import SerializationError
from schemas.models import BawasluReport, Position, ReporterChannel, ReportKind, ViolationType
from tests.factories import report

pytestmark = pytest.mark.unit
CODEC = AvroCodec()
FINGERPRINTS = [e.fingerprint for e in default_store().by_fingerprint.values()]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=120).filter(lambda s: s.strip() != "")


def _decode_only_raises_serialization_error(data: bytes) -> None:
    """Any other exception escapes and fails the property."""
    with contextlib.suppress(SerializationError):
        CODEC.decode(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    _decode_only_raises_serialization_error(data)


@settings(max_examples=300)
@given(st.sampled_from(FINGERPRINTS), st.binary(max_size=400))
def test_real_fingerprint_with_garbage_body(fp: bytes, body: bytes) -> None:
    _decode_only_raises_serialization_error(SOE_MARKER + fp + body)


@settings(max_examples=100)
@given(st.integers(0, 2**32 - 1), st.binary(max_size=200))
def test_confluent_framing_without_registry(schema_id: int, body: bytes) -> None:
    data = CONFLUENT_MAGIC + schema_id.to_bytes(4, "big") + body
    with pytest.raises(SerializationError):
        CODEC.decode(data)


BASE = report(seed=1)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=TEXT, place=TEXT, description=TEXT,
    kind=st.sampled_from(list(ReportKind)), channel=st.sampled_from(list(ReporterChannel)),
    violation=st.sampled_from(list(ViolationType)), position=st.sampled_from(list(Position)),
    days_ago=st.integers(1, 4000), millis=st.integers(0, 10**9),
)
def test_round_trip(name: str, place: str, description: str, kind: ReportKind,
                    channel: ReporterChannel, violation: ViolationType, position: Position,
                    days_ago: int, millis: int) -> None:
    recorded = (datetime(2026, 1, 1, tzinfo=UTC) - timedelta(milliseconds=millis))
    record = BawasluReport.model_validate({
        **BASE.model_dump(), "report_kind": kind, "reporter_channel": channel,
        "violation_type": violation, "incident_place": place, "description": description,
        "recorded_at": recorded,
        "incident_date": recorded.date() - timedelta(days=days_ago % 30),
        "accused": {**BASE.accused.model_dump(), "name": name, "position": position},
    })
    decoded = CODEC.decode(CODEC.encode(record.avro_name, record.to_avro()))
    assert decoded.schema == record.avro_name
    assert BawasluReport.from_avro(decoded.value) == record
    assert isinstance(record.incident_date, date)
