"""Records the hub writes: canonical events, cases and their audit trail, SIASN orders, alerts,
operator commands.

Only :class:`CanonicalEvent` carries agency times, so only it rejects future times; the others are
stamped by the hub's own clock, which tests and replays may set freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated

from pydantic import Field, model_validator

from .. import regions
from .base import AvroRecord
from .common import (
    EscalationNotice,
    Evidence,
    EvidenceRef,
    MutationDetails,
    PersonRef,
    PolicyParameters,
    Recommendation,
    ReportDetails,
    Sanction,
    Verification,
)
from .enums import (
    Agency,
    CaseState,
    Election,
    EscalationStep,
    EventType,
    IssuingBody,
    OrderAction,
    OrderOutcome,
    ReviewAction,
    SanctionLevel,
    Severity,
    SiasnScope,
    ViolationKind,
    ViolationType,
)
from .types import (
    MAX_CASE_LIST,
    Id,
    Name,
    Nip,
    PastDate,
    PastInstant,
    ProvinceCode,
    Ref,
    RegionCode,
    Text,
    Title,
    UtcMillis,
)

Score = Annotated[float, Field(ge=0.0, le=1.0)]
FieldNames = Annotated[tuple[Name, ...], Field(max_length=50)]

DETAIL_FIELDS: Mapping[EventType, str | None] = {
    EventType.VIOLATION_REPORTED: "report",
    EventType.VERIFIED: "verification",
    EventType.RECOMMENDED: "recommendation",
    EventType.SANCTIONED: "sanction",
    EventType.WARNING_ISSUED: "escalation",
    EventType.REPRIMAND_ISSUED: "escalation",
    EventType.BLOCK_ISSUED: "escalation",
    EventType.UNBLOCK_ISSUED: "escalation",
    EventType.REVIEW_FORWARDED: None,
    EventType.CASE_CANCELLED: None,
    EventType.CASE_REJECTED: None,
    EventType.MUTATION_REQUESTED: "mutation",
    EventType.POLICY_UPDATED: "policy",
}
"""Which detail field each event type carries (None: no detail, only ``note``)."""

_DETAILS = frozenset(n for n in DETAIL_FIELDS.values() if n)
_ESCALATION_STEP = {
    EventType.WARNING_ISSUED: EscalationStep.WARNING,
    EventType.REPRIMAND_ISSUED: EscalationStep.REPRIMAND,
    EventType.BLOCK_ISSUED: EscalationStep.BLOCK,
    EventType.UNBLOCK_ISSUED: EscalationStep.UNBLOCK,
}


class CanonicalEvent(AvroRecord):
    """One thing that happened to a case, in the hub's terms; exactly one detail per type."""

    event_id: Id
    agency: Agency
    source_id: Id
    event_type: EventType
    occurred_at: PastInstant
    recorded_at: PastInstant
    election: Election
    case_ref: Ref | None = None
    person: PersonRef | None = None
    nip: Nip | None = None
    region_code: RegionCode | None = None
    incident_date: PastDate | None = None
    violation_type: ViolationType | None = None
    issued_by: IssuingBody | None = None
    report: ReportDetails | None = None
    verification: Verification | None = None
    recommendation: Recommendation | None = None
    sanction: Sanction | None = None
    escalation: EscalationNotice | None = None
    mutation: MutationDetails | None = None
    policy: PolicyParameters | None = None
    note: Text | None = None
    evidence: Evidence = ()
    origin_schema: Ref

    @property
    def details(self) -> AvroRecord | None:
        """The detail record this event's type carries, if any."""
        name = DETAIL_FIELDS[self.event_type]
        return getattr(self, name) if name else None

    @model_validator(mode="after")
    def _consistent(self) -> CanonicalEvent:
        base = f"{self.agency}:{self.source_id}"
        if self.event_id != base and not self.event_id.startswith(base + ":"):
            raise ValueError(f"event_id {self.event_id!r} must be {base!r} or {base!r}:<suffix>")
        wanted = DETAIL_FIELDS[self.event_type]
        present = sorted(n for n in _DETAILS if getattr(self, n) is not None)
        if present != ([wanted] if wanted else []):
            want = f"exactly {wanted!r}" if wanted else "none"
            raise ValueError(
                f"{self.event_type} carries {want} of the detail fields, got {present}"
            )
        step = _ESCALATION_STEP.get(self.event_type)
        if step and self.escalation and self.escalation.step is not step:
            raise ValueError(f"{self.event_type} needs escalation step {step}")
        if self.event_type is EventType.VIOLATION_REPORTED and (
            self.person is None or self.region_code is None or self.incident_date is None
        ):
            raise ValueError("VIOLATION_REPORTED needs person, region_code and incident_date")
        return self


class MatchCandidate(AvroRecord):
    """Another case the person might be, for the reviewer."""

    case_id: Id
    nip: Nip | None = None
    score: Score
    matched_fields: FieldNames


class MatchInfo(AvroRecord):
    """Why a report without a NIP landed in this case: explainable, never silent."""

    score: Score
    matched_fields: FieldNames
    candidates: Annotated[tuple[MatchCandidate, ...], Field(max_length=20)] = ()


class SourceRef(AvroRecord):
    """One canonical event that contributed to a case."""

    event_id: Id
    agency: Agency
    event_type: EventType
    occurred_at: UtcMillis


class TimelineEntry(AvroRecord):
    """One state a case entered, and the rule that put it there."""

    at: UtcMillis
    state: CaseState
    cause_event_id: Id | None = None
    rule: Name


class CaseRecord(AvroRecord):
    """The national record of one case (compacted topic; the highest version wins)."""

    case_id: Id
    version: Annotated[int, Field(ge=1)]
    election: Election
    state: CaseState
    person: PersonRef
    match: MatchInfo | None = None
    violation_type: ViolationType
    violation_kind: ViolationKind | None = None
    level: SanctionLevel | None = None
    ppk_name: Name | None = None
    ppk_agency_code: Id | None = None
    region_code: RegionCode
    province_code: ProvinceCode
    incident_date: date
    opened_at: UtcMillis
    updated_at: UtcMillis
    case_refs: Annotated[tuple[Ref, ...], Field(max_length=MAX_CASE_LIST)] = ()
    sources: Annotated[tuple[SourceRef, ...], Field(max_length=MAX_CASE_LIST)] = ()
    evidence: Annotated[tuple[EvidenceRef, ...], Field(max_length=MAX_CASE_LIST)] = ()
    timeline: Annotated[tuple[TimelineEntry, ...], Field(max_length=MAX_CASE_LIST)] = ()
    recommendation_deadline: date | None = None
    next_deadline: date | None = None
    escalation_step: Annotated[int, Field(ge=0, le=3)] = 0
    blocked: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> CaseRecord:
        _check_province(self.region_code, self.province_code)
        if self.updated_at < self.opened_at:
            raise ValueError("updated_at is before opened_at")
        return self


class CaseTransition(AvroRecord):
    """One state change of a case, for the audit trail."""

    transition_id: Id
    case_id: Id
    version: Annotated[int, Field(ge=1)]
    from_state: CaseState | None = None
    to_state: CaseState
    cause_event_id: Id | None = None
    at: UtcMillis
    rule: Name


class SiasnOrder(AvroRecord):
    """Block or unblock one NIP in SIASN; ``order_id`` is the idempotency key."""

    order_id: Id
    case_id: Id
    nip: Nip
    action: OrderAction
    scope: SiasnScope = SiasnScope.ALL_SERVICES
    reason: Text
    legal_basis: Ref = "Peraturan BKN 1/2023"
    issued_at: UtcMillis


class SiasnOrderResult(AvroRecord):
    """What SIASN did with an order."""

    order_id: Id
    case_id: Id
    nip: Nip
    action: OrderAction
    outcome: OrderOutcome
    at: UtcMillis
    attempts: Annotated[int, Field(ge=1)]
    detail: Text | None = None


class Alert(AvroRecord):
    """An early-warning signal, routed to the Satgas of ``province_code``."""

    alert_id: Id
    rule: Name
    severity: Severity
    region_code: RegionCode
    province_code: ProvinceCode
    case_id: Id | None = None
    nip: Nip | None = None
    agency_name: Name | None = None
    title: Title
    detail: Text
    at: UtcMillis
    dedupe_key: Ref

    @model_validator(mode="after")
    def _consistent(self) -> Alert:
        _check_province(self.region_code, self.province_code)
        return self


class DeadlineTick(AvroRecord):
    """Ask the cases processor to take every escalation step due as of ``at``.

    The only hub record besides CanonicalEvent that refuses a future time: a tick from the
    future would escalate (peringatan, teguran, pemblokiran) before the law allows.
    """

    tick_id: Id
    at: PastInstant
    issued_by: Name


class ReviewDecision(AvroRecord):
    """An operator's merge or split of an ambiguously matched case."""

    command_id: Id
    case_id: Id
    action: ReviewAction
    target_case_id: Id | None = None
    event_ids: Annotated[tuple[Id, ...], Field(max_length=MAX_CASE_LIST)] = ()
    decided_by: Name
    reason: Text
    at: UtcMillis

    @model_validator(mode="after")
    def _consistent(self) -> ReviewDecision:
        if self.action is ReviewAction.MERGE and self.target_case_id in (None, self.case_id):
            raise ValueError("MERGE needs a target_case_id other than case_id")
        if self.action is ReviewAction.SPLIT and not self.event_ids:
            raise ValueError("SPLIT needs the event_ids to move into a new case")
        return self


class PurgeCommand(AvroRecord):
    """Remove the persons from closed cases last updated before ``older_than`` (UU 27/2022).

    ``netral purge`` sends it to ``netral.commands.purge``; the cases stage republishes each such
    case with its personal fields scrubbed (a new version on the compacted ``netral.cases``, so
    compaction drops the old value). Like a DeadlineTick it moves the stage's clock, so it
    refuses a future ``at``.
    """

    command_id: Id
    older_than: UtcMillis
    issued_by: Name
    at: PastInstant

    @model_validator(mode="after")
    def _consistent(self) -> PurgeCommand:
        if self.older_than > self.at:
            raise ValueError("older_than is after the command's own time: nothing that old "
                             "can be closed yet")
        return self


class AccessLogEntry(AvroRecord):
    """One read of personal data through the API (who, role, what, when, from where), as
    published from the append-only ``audit_log`` table to ``netral.audit``."""

    entry_id: Id
    at: UtcMillis
    principal: Id
    role: Name
    action: Name
    subject_kind: Name
    subject_id: Id | None = None
    remote_addr: Name | None = None
    request_id: Id | None = None
    detail: Text | None = None


def _check_province(region_code: str, province_code: str) -> None:
    if regions.province_of(region_code) != province_code:
        raise ValueError(f"province_code {province_code} is not the province of {region_code}")
