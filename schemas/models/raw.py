"""Raw records: one top-level record per ``netral.raw.<agency>`` topic, as each agency sends it.

One record type per topic keeps a Confluent registry's TopicNameStrategy working. Every raw record
starts with ``source_id`` (the agency's own id, also the Kafka key), ``recorded_at`` and
``election``. These are outside input: times must not lie in the future.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from pydantic import model_validator

from ..topics import Agency
from .base import AvroRecord
from .common import (
    EscalationNotice,
    Evidence,
    PersonRef,
    Recommendation,
    RegionalOfficial,
    Verification,
    WorkingDays,
)
from .enums import (
    BawasluReviewOutcome,
    Election,
    IssuingBody,
    MutationKind,
    PolicyRegime,
    ReporterChannel,
    ReportKind,
    SanctionLevel,
    ViolationType,
)
from .types import (
    CLOCK_SKEW,
    LATEST_UTC_OFFSET,
    Id,
    Name,
    Nip,
    PastDate,
    PastInstant,
    Ref,
    RegionCode,
    Text,
)


class RawRecord(AvroRecord):
    """Fields every agency record carries; ``agency`` says which raw topic it belongs on."""

    __avro_abstract__ = True
    agency: ClassVar[Agency]

    source_id: Id
    recorded_at: PastInstant
    election: Election

    def event_id(self) -> str:
        """The id of the CanonicalEvent this record becomes (``<agency>:<source_id>``)."""
        return f"{self.agency}:{self.source_id}"


class BawasluReport(RawRecord):
    """A temuan or laporan; a later version (same source_id) carries Bawaslu's review outcome."""

    agency: ClassVar[Agency] = Agency.BAWASLU

    report_kind: ReportKind
    register_number: Ref
    reporter_channel: ReporterChannel
    incident_date: PastDate
    incident_place: Name
    region_code: RegionCode
    accused: PersonRef
    violation_type: ViolationType
    description: Text
    evidence: Evidence = ()
    review_outcome: BawasluReviewOutcome | None = None
    reviewed_at: PastInstant | None = None
    review_note: Text | None = None

    def event_id(self) -> str:
        """A review outcome is its own event, after the report it reviews."""
        base = super().event_id()
        return f"{base}:{self.review_outcome.value.lower()}" if self.review_outcome else base

    @model_validator(mode="after")
    def _consistent(self) -> BawasluReport:
        if (self.review_outcome is None) != (self.reviewed_at is None):
            raise ValueError("review_outcome and reviewed_at must be given together")
        if self.incident_date > _local_date(self.recorded_at):
            raise ValueError(
                f"incident_date {self.incident_date} is after the report was recorded "
                f"({self.recorded_at.isoformat()})"
            )
        return self


class BknDecision(RawRecord):
    """A verification, recommendation or BKN escalation step on one Bawaslu case."""

    agency: ClassVar[Agency] = Agency.BKN

    issued_by: IssuingBody
    case_ref: Ref
    nip: Nip | None = None
    decided_at: PastInstant
    body: Verification | Recommendation | EscalationNotice

    @model_validator(mode="after")
    def _consistent(self) -> BknDecision:
        if isinstance(self.body, EscalationNotice) and self.issued_by is not IssuingBody.BKN:
            raise ValueError(f"escalation steps are BKN's, not {self.issued_by}'s")
        deadline = self.body.deadline if isinstance(self.body, Recommendation) else None
        if deadline is not None and deadline < self.decided_at.date():
            raise ValueError(f"recommendation deadline {deadline} is before the decision")
        return self


class SanctionDecision(RawRecord):
    """A sanction the PPK imposed, as exported from I'DIS; it closes the case."""

    agency: ClassVar[Agency] = Agency.PPK

    case_ref: Ref
    nip: Nip
    ppk_name: Name
    agency_code: Id
    level: SanctionLevel
    sanction: Ref
    decree_number: Ref
    decided_on: PastDate


class MutationRequest(RawRecord):
    """An I-MUT request to replace an official; a Pasal 71 signal when unapproved in the window."""

    agency: ClassVar[Agency] = Agency.KEMENDAGRI

    request_id: Id
    region_code: RegionCode
    requesting_official: RegionalOfficial
    official: PersonRef
    mutation_kind: MutationKind = MutationKind.OTHER
    from_position: Name
    to_position: Name
    requested_date: PastDate
    mendagri_approval_ref: Ref | None = None


class PolicyUpdate(RawRecord):
    """KemenPAN-RB's case-handling parameters for one election."""

    agency: ClassVar[Agency] = Agency.KEMENPANRB

    regime: PolicyRegime
    effective_date: date
    ppk_deadline_working_days: WorkingDays
    warning_interval_working_days: WorkingDays
    reprimand_interval_working_days: WorkingDays
    decree_ref: Ref


def _local_date(instant: datetime) -> date:
    """The latest local calendar date in Indonesia at ``instant`` (WIT, UTC+9)."""
    return (instant + LATEST_UTC_OFFSET + CLOCK_SKEW).date()


RAW_MODELS: dict[Agency, type[RawRecord]] = {
    m.agency: m
    for m in (BawasluReport, BknDecision, SanctionDecision, MutationRequest, PolicyUpdate)
}
"""The record each agency publishes on ``netral.raw.<agency>``."""
