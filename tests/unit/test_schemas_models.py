"""The event contracts: .avsc files parse everywhere, models agree with them, samples round-trip."""

from __future__ import annotations

import io
import json
import types
import typing
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import avro.schema
import fastavro
import pytest
from fastavro.schema import load_schema
from pydantic import BaseModel, ValidationError

import schemas
from schemas import topics
from schemas.models import (
    RECORD_MODELS,
    TOPIC_MODELS,
    AccessLogEntry,
    Agency,
    Alert,
    AvroRecord,
    BawasluReport,
    BawasluReviewOutcome,
    BknDecision,
    CanonicalEvent,
    CaseRecord,
    CaseState,
    CaseTransition,
    DeadlineTick,
    Election,
    EscalationNotice,
    EscalationStep,
    EventType,
    EvidenceKind,
    EvidenceRef,
    IssuingBody,
    MatchCandidate,
    MatchInfo,
    MutationKind,
    MutationRequest,
    OrderAction,
    OrderOutcome,
    PersonRef,
    PolicyRegime,
    PolicyUpdate,
    Position,
    PurgeCommand,
    Recommendation,
    RegionalHeadRole,
    RegionalOfficial,
    ReportDetails,
    ReporterChannel,
    ReportKind,
    ReviewAction,
    ReviewDecision,
    SanctionDecision,
    SanctionLevel,
    Severity,
    SiasnOrder,
    SiasnOrderResult,
    SourceRef,
    TimelineEntry,
    Verification,
    ViolationKind,
    ViolationType,
)
from schemas.models import enums as enum_module

AVRO_DIR = Path(schemas.__file__).parent / "avro"
AVSC_FILES = sorted(AVRO_DIR.glob("*.avsc"))
RAW_SCHEMAS = {json.loads(p.read_text())["name"]: json.loads(p.read_text()) for p in AVSC_FILES}
NS = "id.go.netral"
NIP = "198503152010011001"


def _raw(full_name: str) -> dict[str, Any]:
    return RAW_SCHEMAS[full_name.removeprefix(f"{NS}.")]


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- the .avsc files ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", AVSC_FILES, ids=lambda p: p.name)
def test_avsc_parses_with_fastavro_and_apache_avro(path: Path) -> None:
    expanded = load_schema(str(path))
    fastavro.parse_schema(expanded)
    parsed = avro.schema.parse(json.dumps(expanded))
    assert isinstance(parsed, avro.schema.NamedSchema)
    assert parsed.fullname == path.name.removesuffix(".avsc")


@pytest.mark.parametrize("path", AVSC_FILES, ids=lambda p: p.name)
def test_avsc_is_one_documented_named_type(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["namespace"] == NS
    assert f"{NS}.{schema['name']}.avsc" == path.name
    assert schema["type"] in ("record", "enum")
    assert schema["doc"].strip()
    for field in schema.get("fields", []):
        assert field["doc"].strip(), f"{schema['name']}.{field['name']} has no doc"
        if isinstance(field["type"], list) and "null" in field["type"]:
            assert field["type"][0] == "null", field
            assert field.get("default", "missing") is None, field


def test_every_record_schema_has_a_model_and_back() -> None:
    records = {f"{NS}.{n}" for n, s in RAW_SCHEMAS.items() if s["type"] == "record"}
    assert records == set(RECORD_MODELS)


def test_every_enum_schema_has_a_str_enum_with_the_same_symbols() -> None:
    enums = {n: s for n, s in RAW_SCHEMAS.items() if s["type"] == "enum"}
    assert set(enums) == set(enum_module.__all__)
    for name, schema in enums.items():
        cls = getattr(enum_module, name)
        assert issubclass(cls, StrEnum)
        assert [m.value for m in cls] == schema["symbols"], name
    assert enum_module.Agency is topics.Agency


# -- models agree with their schemas ------------------------------------------------------------

_PRIMITIVES: dict[str, type] = {
    "string": str,
    "boolean": bool,
    "int": int,
    "long": int,
    "double": float,
}
_LOGICAL: dict[str, type] = {"timestamp-millis": datetime, "date": date}


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _agree(avro_type: Any, tp: Any, where: str) -> None:
    """Assert that a model annotation ``tp`` has the shape of the Avro type ``avro_type``."""
    tp = _strip(tp)
    if isinstance(avro_type, list):
        members = [_strip(a) for a in typing.get_args(tp)] if _is_union(tp) else [tp]
        assert ("null" in avro_type) == (type(None) in members), f"{where}: nullability differs"
        branches = [b for b in avro_type if b != "null"]
        members = [m for m in members if m is not type(None)]
        assert len(branches) == len(members), f"{where}: union branches differ"
        for branch, member in zip(branches, members, strict=True):
            _agree(branch, member, where)
        return
    assert not _is_union(tp), f"{where}: model is a union, Avro is {avro_type}"
    if isinstance(avro_type, dict) and "logicalType" in avro_type:
        assert tp is _LOGICAL[avro_type["logicalType"]], f"{where}: {tp} vs {avro_type}"
    elif isinstance(avro_type, dict) and avro_type["type"] == "array":
        assert typing.get_origin(tp) is tuple, f"{where}: arrays are tuples in models"
        item, ellipsis = typing.get_args(tp)
        assert ellipsis is Ellipsis
        _agree(avro_type["items"], item, f"{where}[]")
    elif avro_type in _PRIMITIVES:
        assert tp is _PRIMITIVES[avro_type], f"{where}: {tp} vs {avro_type}"
    else:
        named = _raw(avro_type)
        if named["type"] == "enum":
            assert isinstance(tp, type), where
            assert issubclass(tp, StrEnum), where
            assert [m.value for m in tp] == named["symbols"], f"{where}: enum symbols differ"
        else:
            assert isinstance(tp, type), where
            assert issubclass(tp, AvroRecord), where
            assert tp.avro_name == avro_type, f"{where}: {tp.avro_name} vs {avro_type}"


@pytest.mark.parametrize("name", sorted(RECORD_MODELS))
def test_model_agrees_with_schema_field_by_field(name: str) -> None:
    model = RECORD_MODELS[name]
    schema = _raw(name)
    assert model.avro_name == name
    assert list(model.model_fields) == [f["name"] for f in schema["fields"]], "names or order"
    for avro_field in schema["fields"]:
        where = f"{name}.{avro_field['name']}"
        field = model.model_fields[avro_field["name"]]
        _agree(avro_field["type"], field.annotation, where)
        if "default" not in avro_field:
            assert field.is_required(), f"{where}: Avro has no default, the model has one"
        else:
            expected = avro_field["default"]
            expected = () if expected == [] else expected
            assert not field.is_required(), f"{where}: Avro has a default, the model has none"
            assert field.default == expected, f"{where}: defaults differ"
    assert model.model_config.get("frozen")
    assert model.model_config.get("extra") == "forbid"


def test_topic_models_cover_every_value_topic() -> None:
    value_topics = {t.name for t in topics.catalogue() if not t.name.startswith("netral.dlq.")}
    assert set(TOPIC_MODELS) == value_topics
    assert TOPIC_MODELS[topics.raw_topic(Agency.BAWASLU)] is BawasluReport


# -- realistic samples round-trip ---------------------------------------------------------------

PERSON = PersonRef(
    nip=NIP,
    name="Drs. Asep Suryana, M.Si.",
    agency_name="Pemerintah Kota Bandung",
    agency_code="A5EB03E23CFDF6A0E040640A040252AD",
    position=Position.CAMAT_LURAH,
    position_title="Camat Cibeunying Kaler",
    region_code="32.73",
)
UNKNOWN_PERSON = PersonRef(
    name="Siti Rahmawati", agency_name="Dinas Pendidikan Kabupaten Garut", position=None
)
EVIDENCE = (
    EvidenceRef(
        kind=EvidenceKind.SCREENSHOT,
        uri="https://sigap.bawaslu.go.id/evidence/2024/LP-0121-1.png",
        sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        description="Unggahan Instagram mendukung paslon nomor urut 2",
    ),
    EvidenceRef(kind=EvidenceKind.LINK, uri="https://www.instagram.com/p/C3xYz/"),
)
REG_NO = "012/Reg/LP/PW/Kota/13.04/XI/2024"
RECOMMENDATION = Recommendation(
    violation_kind=ViolationKind.DISIPLIN,
    level=SanctionLevel.SEDANG,
    sanction="pemotongan tunjangan kinerja 25% selama 6 bulan",
    ppk_name="Wali Kota Bandung",
    ppk_agency_code="A5EB03E23CFDF6A0E040640A040252AD",
    deadline=None,
)

SAMPLES: list[AvroRecord] = [
    BawasluReport(
        source_id="bwl-2024-000121",
        recorded_at=_ts("2024-11-05T09:12:33.120+07:00"),
        election=Election.PILKADA_2024,
        report_kind=ReportKind.LAPORAN,
        register_number=REG_NO,
        reporter_channel=ReporterChannel.PUBLIC,
        incident_date=date(2024, 11, 2),
        incident_place="Lapangan Gasibu, Bandung",
        region_code="32.73",
        accused=PERSON,
        violation_type=ViolationType.SOCIAL_MEDIA,
        description="Terlapor mengunggah foto bersama pasangan calon dengan pose jari dua.",
        evidence=EVIDENCE,
        review_outcome=BawasluReviewOutcome.FORWARDED,
        reviewed_at=_ts("2024-11-07T15:00:00+07:00"),
    ),
    BknDecision(
        source_id="bkn-dec-88812",
        recorded_at=_ts("2024-11-20T10:00:00+07:00"),
        election=Election.PILKADA_2024,
        issued_by=IssuingBody.BKN,
        case_ref=REG_NO,
        nip=NIP,
        decided_at=_ts("2024-11-19T16:30:00+07:00"),
        body=RECOMMENDATION,
    ),
    BknDecision(
        source_id="bkn-dec-88813",
        recorded_at=_ts("2024-11-12T10:00:00+07:00"),
        election=Election.PILKADA_2024,
        issued_by=IssuingBody.SATGAS,
        case_ref=REG_NO,
        decided_at=_ts("2024-11-12T09:00:00+07:00"),
        body=Verification(proven=True, reasons="Terbukti dari unggahan dan keterangan saksi."),
    ),
    BknDecision(
        source_id="bkn-dec-90001",
        recorded_at=_ts("2024-12-20T10:00:00+07:00"),
        election=Election.PILKADA_2024,
        issued_by=IssuingBody.BKN,
        case_ref=REG_NO,
        nip=NIP,
        decided_at=_ts("2024-12-20T09:00:00+07:00"),
        body=EscalationNotice(
            step=EscalationStep.WARNING, letter_number="8765/B-KP.03.01/SD/F/2024"
        ),
    ),
    SanctionDecision(
        source_id="idis-331200",
        recorded_at=_ts("2025-01-10T08:00:00+07:00"),
        election=Election.PILKADA_2024,
        case_ref=REG_NO,
        nip=NIP,
        ppk_name="Wali Kota Bandung",
        agency_code="A5EB03E23CFDF6A0E040640A040252AD",
        level=SanctionLevel.SEDANG,
        sanction="pemotongan tunjangan kinerja 25% selama 6 bulan",
        decree_number="800.1.6.3/Kep.12-BKPSDM/2025",
        decided_on=date(2025, 1, 9),
    ),
    MutationRequest(
        source_id="imut-2024-7731",
        recorded_at=_ts("2024-04-15T11:00:00+07:00"),
        election=Election.PILKADA_2024,
        request_id="IMUT/3205/2024/0412",
        region_code="32.05",
        requesting_official=RegionalOfficial(
            name="Barnas Adjidin", role=RegionalHeadRole.BUPATI, acting=True
        ),
        official=PersonRef(name="Siti Rahmawati", agency_name="Pemerintah Kabupaten Garut"),
        mutation_kind=MutationKind.DISMISSAL,
        from_position="Kepala Dinas Pendidikan",
        to_position="Staf Ahli Bupati",
        requested_date=date(2024, 4, 12),
    ),
    PolicyUpdate(
        source_id="se-menpanrb-4-2024",
        recorded_at=_ts("2024-08-30T08:00:00+07:00"),
        election=Election.PILKADA_2024,
        regime=PolicyRegime.SATGAS_2024,
        effective_date=date(2024, 9, 1),
        ppk_deadline_working_days=14,
        warning_interval_working_days=5,
        reprimand_interval_working_days=5,
        decree_ref="SE MenPAN-RB 4/2024",
    ),
    CanonicalEvent(
        event_id="bawaslu:bwl-2024-000121",
        agency=Agency.BAWASLU,
        source_id="bwl-2024-000121",
        event_type=EventType.VIOLATION_REPORTED,
        occurred_at=_ts("2024-11-05T09:12:33.120+07:00"),
        recorded_at=_ts("2024-11-05T09:12:33.120+07:00"),
        election=Election.PILKADA_2024,
        case_ref=REG_NO,
        person=UNKNOWN_PERSON,
        region_code="32.05",
        incident_date=date(2024, 11, 2),
        violation_type=ViolationType.CAMPAIGN_ATTENDANCE,
        report=ReportDetails(
            report_kind=ReportKind.TEMUAN,
            reporter_channel=ReporterChannel.BAWASLU_PATROL,
            incident_place="Alun-alun Garut",
            description="Hadir dalam kampanye terbuka pasangan calon bupati.",
        ),
        evidence=EVIDENCE,
        origin_schema="id.go.netral.BawasluReport",
    ),
    CanonicalEvent(
        event_id="bkn:bkn-dec-88812",
        agency=Agency.BKN,
        source_id="bkn-dec-88812",
        event_type=EventType.RECOMMENDED,
        occurred_at=_ts("2024-11-19T16:30:00+07:00"),
        recorded_at=_ts("2024-11-20T10:00:00+07:00"),
        election=Election.PILKADA_2024,
        case_ref=REG_NO,
        person=PERSON,
        issued_by=IssuingBody.BKN,
        recommendation=RECOMMENDATION,
        origin_schema="id.go.netral.BknDecision",
    ),
    CaseRecord(
        case_id="case-01JD5X3K8R",
        version=4,
        election=Election.PILKADA_2024,
        state=CaseState.RECOMMENDED,
        person=UNKNOWN_PERSON,
        match=MatchInfo(
            score=0.82,
            matched_fields=("name", "agency_name"),
            candidates=(
                MatchCandidate(
                    case_id="case-01JCZZ1", nip=None, score=0.61, matched_fields=("name",)
                ),
            ),
        ),
        violation_type=ViolationType.CAMPAIGN_ATTENDANCE,
        violation_kind=ViolationKind.DISIPLIN,
        level=SanctionLevel.SEDANG,
        ppk_name="Bupati Garut",
        region_code="32.05",
        province_code="32",
        incident_date=date(2024, 11, 2),
        opened_at=_ts("2024-11-05T02:12:34Z"),
        updated_at=_ts("2024-11-20T03:00:01Z"),
        case_refs=(REG_NO,),
        sources=(
            SourceRef(
                event_id="bawaslu:bwl-2024-000121",
                agency=Agency.BAWASLU,
                event_type=EventType.VIOLATION_REPORTED,
                occurred_at=_ts("2024-11-05T02:12:33.120Z"),
            ),
        ),
        evidence=EVIDENCE,
        timeline=(
            TimelineEntry(
                at=_ts("2024-11-05T02:12:34Z"),
                state=CaseState.REPORTED,
                cause_event_id="bawaslu:bwl-2024-000121",
                rule="report.opened",
            ),
            TimelineEntry(
                at=_ts("2024-11-20T03:00:01Z"), state=CaseState.RECOMMENDED, rule="recommended"
            ),
        ),
        recommendation_deadline=date(2024, 12, 10),
        next_deadline=date(2024, 12, 10),
    ),
    CaseTransition(
        transition_id="case-01JD5X3K8R:4",
        case_id="case-01JD5X3K8R",
        version=4,
        from_state=CaseState.UNDER_BAWASLU_REVIEW,
        to_state=CaseState.RECOMMENDED,
        cause_event_id="bkn:bkn-dec-88812",
        at=_ts("2024-11-20T03:00:01Z"),
        rule="recommended",
    ),
    SiasnOrder(
        order_id="ord-case-01JD5X3K8R-block-1",
        case_id="case-01JD5X3K8R",
        nip=NIP,
        action=OrderAction.BLOCK,
        reason="PPK tidak menjatuhkan sanksi setelah peringatan dan teguran.",
        issued_at=_ts("2025-01-06T01:00:00Z"),
    ),
    SiasnOrderResult(
        order_id="ord-case-01JD5X3K8R-block-1",
        case_id="case-01JD5X3K8R",
        nip=NIP,
        action=OrderAction.BLOCK,
        outcome=OrderOutcome.CONFIRMED,
        at=_ts("2025-01-06T01:00:02.5Z"),
        attempts=2,
        detail="blokir layanan SIASN aktif",
    ),
    Alert(
        alert_id="alert-7f3a",
        rule="deadline.ppk.soon",
        severity=Severity.WARNING,
        region_code="32.05",
        province_code="32",
        case_id="case-01JD5X3K8R",
        agency_name="Pemerintah Kabupaten Garut",
        title="PPK deadline in 2 working days",
        detail="Bupati Garut has not imposed the recommended sanction; due 10 Dec 2024.",
        at=_ts("2024-12-06T01:00:00Z"),
        dedupe_key="deadline.ppk.soon:case-01JD5X3K8R:2024-12-10",
    ),
    DeadlineTick(tick_id="tick-7f3a", at=_ts("2024-12-23T01:00:00Z"), issued_by="timer"),
    PurgeCommand(command_id="purge-1c2d", older_than=_ts("2024-01-31T17:00:00Z"),
                 issued_by="operator.satgas.nasional", at=_ts("2026-02-01T02:00:00Z")),
    AccessLogEntry(entry_id="4711", at=_ts("2024-12-06T03:15:00.25Z"),
                   principal="satgas-jabar-01", role="province", action="read_case",
                   subject_kind="case", subject_id="case-01JD5X3K8R", remote_addr="10.12.0.7",
                   request_id="req-9b1e", detail=None),
    ReviewDecision(
        command_id="cmd-5521",
        case_id="case-01JD5X3K8R",
        action=ReviewAction.MERGE,
        target_case_id="case-01JCZZ1",
        decided_by="operator.satgas.jabar",
        reason="Same person: NIP confirmed by BKPSDM Garut.",
        at=_ts("2024-11-21T04:00:00Z"),
    ),
]


def _write_read(model: AvroRecord, **reader_options: Any) -> Any:
    schema = load_schema(str(AVRO_DIR / f"{model.avro_name}.avsc"))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, model.to_avro())
    buf.seek(0)
    return fastavro.schemaless_reader(buf, schema, schema, **reader_options)


def test_samples_cover_every_topic_record() -> None:
    assert {type(s) for s in SAMPLES} == set(TOPIC_MODELS.values())


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_round_trip_through_fastavro(sample: AvroRecord) -> None:
    assert type(sample).from_avro(_write_read(sample)) == sample
    assert type(sample).from_avro(_write_read(sample, return_record_name=True)) == sample


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_the_fast_dump_writes_the_same_bytes_as_the_plain_walk(sample: AvroRecord) -> None:
    """avro_dump() (pydantic-core) is what the codec writes: byte for byte what to_avro() gives."""
    schema = load_schema(str(AVRO_DIR / f"{sample.avro_name}.avsc"))
    plain, fast = io.BytesIO(), io.BytesIO()
    fastavro.schemaless_writer(plain, schema, sample.to_avro())
    fastavro.schemaless_writer(fast, schema, sample.avro_dump())
    assert fast.getvalue() == plain.getvalue()
    fast.seek(0)
    assert type(sample).from_fastavro(
        cast("dict[str, Any]", fastavro.schemaless_reader(fast, schema, schema))) == sample


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_to_avro_is_plain_data(sample: AvroRecord) -> None:
    """Only what any Avro writer takes: no models, no enums, tuples only as union notation."""

    def check(value: Any) -> None:
        assert not isinstance(value, BaseModel | StrEnum), value
        if isinstance(value, tuple):
            assert value[0] in RECORD_MODELS, value
            value = value[1]
        children = value.values() if isinstance(value, dict) else value
        for child in children if isinstance(value, dict | list) else ():
            check(child)

    check(sample.to_avro())


def test_union_of_records_uses_tuple_notation_and_accepts_the_others() -> None:
    decision = SAMPLES[1]
    assert isinstance(decision, BknDecision)
    data = decision.to_avro()
    assert data["body"][0] == "id.go.netral.Recommendation"
    plain = dict(data, body=data["body"][1])
    typed = dict(data, body={"-type": "id.go.netral.Recommendation", **data["body"][1]})
    assert BknDecision.from_avro(plain) == decision == BknDecision.from_avro(typed)


def test_old_reader_maps_an_unknown_violation_type_to_other() -> None:
    reader = load_schema(str(AVRO_DIR / "id.go.netral.ViolationType.avsc"))
    symbols = _raw(f"{NS}.ViolationType")["symbols"]
    writer = dict(_raw(f"{NS}.ViolationType"), symbols=[*symbols, "VOTE_BUYING"])
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(writer), "VOTE_BUYING")
    buf.seek(0)
    assert fastavro.schemaless_reader(buf, fastavro.parse_schema(writer), reader) == "OTHER"


# -- validation the schema cannot express -------------------------------------------------------


def _changed(sample: AvroRecord, **changes: Any) -> dict[str, Any]:
    return {**sample.to_avro(), **changes}


REPORT = SAMPLES[0]


def test_unknown_region_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"unknown Kemendagri region code '32\.99'"):
        BawasluReport.from_avro(_changed(REPORT, region_code="32.99"))


def test_future_incident_date_is_rejected() -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).date()
    with pytest.raises(ValidationError, match="is in the future"):
        BawasluReport.from_avro(_changed(REPORT, incident_date=future))


def test_future_recorded_at_is_rejected_but_clock_skew_is_allowed() -> None:
    soon = datetime.now(UTC) + timedelta(minutes=1)
    BawasluReport.from_avro(_changed(REPORT, recorded_at=soon, reviewed_at=soon))
    with pytest.raises(ValidationError, match="is in the future"):
        BawasluReport.from_avro(_changed(REPORT, recorded_at=soon + timedelta(hours=1)))


def test_incident_after_recording_is_rejected() -> None:
    with pytest.raises(ValidationError, match="after the report was recorded"):
        BawasluReport.from_avro(_changed(REPORT, incident_date=date(2024, 11, 7)))


def test_invalid_nip_is_rejected_with_the_reason() -> None:
    accused = dict(PERSON.to_avro(), nip="198513452010011001")
    with pytest.raises(ValidationError, match="birth date 19851345 is not a real date"):
        BawasluReport.from_avro(_changed(REPORT, accused=accused))


def test_text_caps_and_evidence_cap() -> None:
    with pytest.raises(ValidationError, match="at most 5000 characters"):
        BawasluReport.from_avro(_changed(REPORT, description="x" * 5001))
    too_many = [EVIDENCE[1].to_avro()] * 51
    with pytest.raises(ValidationError, match="at most 50 items"):
        BawasluReport.from_avro(_changed(REPORT, evidence=too_many))
    with pytest.raises(ValidationError, match="at most 200 characters"):
        PersonRef(name="x" * 201, agency_name="Pemerintah Kota Bandung")


def test_models_are_frozen_and_strict() -> None:
    with pytest.raises(ValidationError):
        setattr(REPORT, "source_id", "other")  # noqa: B010 - the assignment is the test
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        BawasluReport.from_avro(_changed(REPORT, unexpected="x"))


def test_records_share_one_set_of_given_fields_and_a_copy_never_changes_it() -> None:
    one, two = (BawasluReport.from_avro(REPORT.to_avro()) for _ in range(2))
    assert one.model_fields_set is two.model_fields_set  # one set, not one per record
    assert one.source_id is two.source_id  # ids interned: one string, not one per record
    given = set(two.model_fields_set)
    copied = one.model_copy(update={"source_id": "other"})
    assert copied.source_id == "other" and one.source_id != "other"
    assert two.model_fields_set == given  # the shared set was not written through the copy
    partial = PersonRef(name="Ratna Lubis", agency_name="Pemerintah Kabupaten Agam")
    assert partial.model_fields_set == {"name", "agency_name"}  # still what was given
    assert partial.model_dump(exclude_unset=True) == {
        "name": "Ratna Lubis", "agency_name": "Pemerintah Kabupaten Agam"}


def test_naive_timestamps_are_rejected_and_aware_ones_normalised() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        BawasluReport.from_avro(_changed(REPORT, recorded_at=datetime(2024, 11, 5, 9)))
    local = datetime.fromisoformat("2024-11-05T09:12:33.120999+07:00")
    report = BawasluReport.from_avro(_changed(REPORT, recorded_at=local, reviewed_at=local))
    assert report.recorded_at == datetime(2024, 11, 5, 2, 12, 33, 120000, tzinfo=UTC)
    assert report.recorded_at.tzinfo is UTC


def test_review_outcome_and_time_go_together() -> None:
    with pytest.raises(ValidationError, match="given together"):
        BawasluReport.from_avro(_changed(REPORT, reviewed_at=None))


def test_escalation_steps_are_bkns_own() -> None:
    notice = SAMPLES[3]
    with pytest.raises(ValidationError, match="escalation steps are BKN's"):
        BknDecision.from_avro(_changed(notice, issued_by="KASN"))


def test_canonical_event_carries_exactly_its_detail() -> None:
    event = SAMPLES[8]
    assert isinstance(event, CanonicalEvent)
    assert event.details == RECOMMENDATION
    with pytest.raises(ValidationError, match="carries exactly 'recommendation'"):
        CanonicalEvent.from_avro(_changed(event, recommendation=None))
    with pytest.raises(ValidationError, match="got \\['recommendation', 'verification'\\]"):
        CanonicalEvent.from_avro(
            _changed(event, verification={"proven": True, "reasons": "terbukti"})
        )
    with pytest.raises(ValidationError, match="carries none"):
        CanonicalEvent.from_avro(_changed(event, event_type="CASE_REJECTED"))


def test_canonical_event_id_names_its_source() -> None:
    event = SAMPLES[8]
    CanonicalEvent.from_avro(_changed(event, event_id="bkn:bkn-dec-88812:RECOMMENDED"))
    with pytest.raises(ValidationError, match="must be 'bkn:bkn-dec-88812'"):
        CanonicalEvent.from_avro(_changed(event, event_id="bkn:other"))


def test_case_and_alert_province_must_match_region() -> None:
    with pytest.raises(ValidationError, match=r"not the province of 32\.05"):
        CaseRecord.from_avro(_changed(SAMPLES[9], province_code="33"))
    with pytest.raises(ValidationError, match="not a province code"):
        Alert.from_avro(_changed(SAMPLES[13], province_code="32.05"))


def test_hub_records_accept_future_deadlines() -> None:
    case = CaseRecord.from_avro(_changed(SAMPLES[9], next_deadline=date(2099, 1, 1)))
    assert case.next_deadline == date(2099, 1, 1)


def test_review_decision_rules() -> None:
    with pytest.raises(ValidationError, match="MERGE needs a target_case_id"):
        ReviewDecision.from_avro(_changed(SAMPLES[-1], target_case_id=None))
    with pytest.raises(ValidationError, match="SPLIT needs the event_ids"):
        ReviewDecision.from_avro(_changed(SAMPLES[-1], action="SPLIT"))


def test_siasn_order_defaults() -> None:
    order = SAMPLES[11]
    assert isinstance(order, SiasnOrder)
    assert order.legal_basis == "Peraturan BKN 1/2023"
    assert order.to_avro()["scope"] == "ALL_SERVICES"


def test_validation_errors_are_value_errors() -> None:
    """Stages map ValueError (ValidationError is one) to InvalidMessage and the DLQ."""
    assert issubclass(ValidationError, ValueError)
