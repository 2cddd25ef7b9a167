"""normalize: one agency record -> one CanonicalEvent, and the key it travels under.

Pure: takes a decoded record, returns the event or raises InvalidMessage with a reason a person
understands (it lands in the DLQ). No I/O, no clock.

The key of ``netral.events`` decides which cases-processor partition sees an event, so everything
that can belong to one case must share it: the NIP when the record names one (all of a person's
events meet), else the Bawaslu register number the record refers to, else the source id.
"""

from __future__ import annotations

from pydantic import ValidationError

from schemas.codec import Decoded
from schemas.errors import InvalidMessage, explain
from schemas.models import (
    RAW_MODELS,
    BawasluReport,
    BawasluReviewOutcome,
    BknDecision,
    CanonicalEvent,
    EscalationNotice,
    EscalationStep,
    EventType,
    MutationDetails,
    MutationRequest,
    PolicyParameters,
    PolicyUpdate,
    Recommendation,
    ReportDetails,
    Sanction,
    SanctionDecision,
    Verification,
)
from schemas.models.raw import RawRecord
from schemas.topics import Agency

_REVIEW_EVENTS = {
    BawasluReviewOutcome.FORWARDED: EventType.REVIEW_FORWARDED,
    BawasluReviewOutcome.REJECTED: EventType.CASE_REJECTED,
    BawasluReviewOutcome.CANCELLED: EventType.CASE_CANCELLED,
}
_ESCALATION_EVENTS = {
    EscalationStep.WARNING: EventType.WARNING_ISSUED,
    EscalationStep.REPRIMAND: EventType.REPRIMAND_ISSUED,
    EscalationStep.BLOCK: EventType.BLOCK_ISSUED,
    EscalationStep.UNBLOCK: EventType.UNBLOCK_ISSUED,
}


def agency_of(topic: str) -> Agency:
    prefix = "netral.raw."
    name = topic[len(prefix):] if topic.startswith(prefix) else ""
    try:
        return Agency(name)
    except ValueError:
        raise InvalidMessage(f"{topic} is not a raw agency topic") from None


def parse_raw(topic: str, key: bytes | None, decoded: Decoded) -> RawRecord:
    """Check the record belongs on this topic under this key, and validate it."""
    model = RAW_MODELS[agency_of(topic)]
    if decoded.schema != model.avro_name:
        raise InvalidMessage(
            f"wrong schema for {topic}: expected {model.avro_name}, got {decoded.schema}"
        )
    try:
        record = model.from_fastavro(decoded.value)
    except ValidationError as err:
        raise InvalidMessage(f"invalid {model.__name__}: {explain(err)}") from None
    if not key:
        raise InvalidMessage(f"empty key: the key of {topic} must be the record's source_id")
    if key.decode(errors="replace") != record.source_id:
        raise InvalidMessage(
            f"key {key[:64]!r} does not match source_id {record.source_id!r} (keys are source ids)"
        )
    return record


def to_canonical(record: RawRecord) -> CanonicalEvent:
    """Map one validated agency record to the hub's canonical event."""
    common = {
        "agency": record.agency,
        "source_id": record.source_id,
        "recorded_at": record.recorded_at,
        "election": record.election,
        "origin_schema": type(record).avro_name,
    }
    fields: dict[str, object]
    match record:
        case BawasluReport():
            fields = _bawaslu(record)
        case BknDecision():
            fields = _bkn(record)
        case SanctionDecision():
            fields = {
                "event_type": EventType.SANCTIONED, "occurred_at": record.recorded_at,
                "case_ref": record.case_ref, "sanction": Sanction(
                    ppk_name=record.ppk_name, agency_code=record.agency_code,
                    level=record.level, sanction=record.sanction,
                    decree_number=record.decree_number, decided_on=record.decided_on),
                "nip": record.nip,
            }
        case MutationRequest():
            fields = {
                "event_type": EventType.MUTATION_REQUESTED, "occurred_at": record.recorded_at,
                "person": record.official, "region_code": record.region_code,
                "mutation": MutationDetails(
                    request_id=record.request_id,
                    requesting_official=record.requesting_official,
                    mutation_kind=record.mutation_kind, from_position=record.from_position,
                    to_position=record.to_position, requested_date=record.requested_date,
                    mendagri_approval_ref=record.mendagri_approval_ref),
            }
        case PolicyUpdate():
            fields = {
                "event_type": EventType.POLICY_UPDATED, "occurred_at": record.recorded_at,
                "policy": PolicyParameters(
                    regime=record.regime, effective_date=record.effective_date,
                    ppk_deadline_working_days=record.ppk_deadline_working_days,
                    warning_interval_working_days=record.warning_interval_working_days,
                    reprimand_interval_working_days=record.reprimand_interval_working_days,
                    decree_ref=record.decree_ref),
            }
        case _:
            raise InvalidMessage(f"no mapping for {type(record).__name__}")
    event_id = record.event_id()
    try:
        return CanonicalEvent(event_id=event_id, **common, **fields)
    except ValidationError as err:
        raise InvalidMessage(f"cannot build CanonicalEvent: {explain(err)}") from None


def _bawaslu(r: BawasluReport) -> dict[str, object]:
    base: dict[str, object] = {"case_ref": r.register_number, "person": r.accused,
                               "region_code": r.region_code, "incident_date": r.incident_date,
                               "violation_type": r.violation_type, "evidence": r.evidence}
    if r.review_outcome is None:
        return base | {
            "event_type": EventType.VIOLATION_REPORTED, "occurred_at": r.recorded_at,
            "report": ReportDetails(report_kind=r.report_kind, reporter_channel=r.reporter_channel,
                                    incident_place=r.incident_place, description=r.description),
        }
    return base | {
        "event_type": _REVIEW_EVENTS[r.review_outcome],
        "occurred_at": r.reviewed_at, "note": r.review_note,
    }


def _bkn(r: BknDecision) -> dict[str, object]:
    fields: dict[str, object] = {"case_ref": r.case_ref, "occurred_at": r.decided_at,
                                 "issued_by": r.issued_by, "nip": r.nip}
    body = r.body
    if isinstance(body, Verification):
        return fields | {"event_type": EventType.VERIFIED, "verification": body}
    if isinstance(body, Recommendation):
        return fields | {"event_type": EventType.RECOMMENDED, "recommendation": body}
    if isinstance(body, EscalationNotice):
        return fields | {"event_type": _ESCALATION_EVENTS[body.step], "escalation": body}
    raise InvalidMessage(f"unknown BKN decision body {type(body).__name__}")


def event_key(event: CanonicalEvent) -> bytes:
    """The key on ``netral.events``: NIP, else the Bawaslu register number, else the source id."""
    nip = event.person.nip if event.person and event.person.nip else event.nip
    return (nip or event.case_ref or event.source_id).encode()


def normalize_record(topic: str, key: bytes | None, decoded: Decoded
                     ) -> tuple[bytes, dict[str, object]]:
    """The whole stage for one record: validate, map, key. Returns (key, Avro-ready value)."""
    record = parse_raw(topic, key, decoded)
    event = to_canonical(record)
    return event_key(event), event.avro_dump()
