"""The codec names the branch of single-record unions for fastavro (no validation walk per
union member): same bytes as fastavro's own choice, nothing else touched."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import fastavro
import pytest

from schemas.codec import SOE_MARKER, AvroCodec
from schemas.union_tags import union_tagger

pytestmark = pytest.mark.unit

SCHEMA = fastavro.parse_schema({
    "type": "record", "name": "t.Outer", "fields": [
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "inner", "type": ["null", {"type": "record", "name": "t.Inner", "fields": [
            {"name": "x", "type": "int"},
            {"name": "deep", "type": ["null", {"type": "record", "name": "t.Deep",
                                               "fields": [{"name": "y", "type": "string"}]}]},
        ]}]},
        {"name": "again", "type": ["null", "t.Inner"]},
        {"name": "many", "type": {"type": "array", "items": ["null", "t.Deep"]}},
        {"name": "either", "type": ["null", "t.Deep", {"type": "map", "values": "string"}]},
        {"name": "text", "type": ["null", "string"]},
    ]})


def test_single_record_union_members_are_tagged_by_name_recursively() -> None:
    tag = union_tagger(SCHEMA)
    assert tag is not None
    datum = {"at": datetime(2024, 11, 27, tzinfo=UTC), "inner": {"x": 1, "deep": {"y": "a"}},
             "again": None, "many": [{"y": "b"}, None], "either": {"k": "v"}, "text": "t"}
    out = tag(datum)
    assert out["inner"] == ("t.Inner", {"x": 1, "deep": ("t.Deep", {"y": "a"})})
    assert out["again"] is None and out["text"] == "t"
    assert out["many"] == [("t.Deep", {"y": "b"}), None]
    assert out["either"] == {"k": "v"}, "a dict could be the map: left to fastavro"
    assert datum["inner"] == {"x": 1, "deep": {"y": "a"}}, "the caller's datum is not changed"
    assert tag({**datum, "inner": ("t.Inner", {"x": 2, "deep": None})})["inner"][0] == "t.Inner"

    def written(value: dict[str, object]) -> bytes:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, SCHEMA, value)
        return buf.getvalue()

    assert written(out) == written(datum)


def test_a_schema_without_record_unions_needs_no_tagger() -> None:
    plain = fastavro.parse_schema({"type": "record", "name": "t.Plain", "fields": [
        {"name": "a", "type": ["null", "string"]}, {"name": "b", "type": "long"}]})
    assert union_tagger(plain) is None


def test_the_codec_writes_the_same_bytes_as_fastavros_own_union_choice() -> None:
    codec = AvroCodec()
    entry = codec.store.get("id.go.netral.PersonRef")  # a small record with no unions
    assert union_tagger(entry.parsed) is None
    event = codec.store.get("id.go.netral.CanonicalEvent")
    assert union_tagger(event.parsed) is not None  # person, report, ...: tagged
    value = {"nip": "197201132002072981", "name": "Rudi Hidayat", "agency_name": "Pemkab",
             "agency_code": None, "position": "FUNGSIONAL", "position_title": None,
             "region_code": "71.09"}
    buf = io.BytesIO()
    buf.write(SOE_MARKER + entry.fingerprint)
    fastavro.schemaless_writer(buf, entry.parsed, value)
    assert codec.encode(entry.name, value) == buf.getvalue()
