"""Pydantic models of every Avro record in ``schemas/avro``, and where each top-level one goes.

``RECORD_MODELS`` maps an Avro full name to its model (shared and nested records included), so a
decoded message can be validated by its schema name; ``TOPIC_MODELS`` names the one value record of
each topic the hub owns.
"""

from __future__ import annotations

from ..topics import (
    ALERTS,
    CASE_EVENTS,
    CASES,
    COMMANDS,
    EVENTS,
    ORDERS_SIASN,
    ORDERS_SIASN_RESULTS,
    raw_topic,
)
from .base import NAMESPACE, AvroRecord, registry
from .common import (
    EscalationNotice,
    EvidenceRef,
    MutationDetails,
    PersonRef,
    PolicyParameters,
    Recommendation,
    RegionalOfficial,
    ReportDetails,
    Sanction,
    Verification,
)
from .enums import (
    Agency,
    BawasluReviewOutcome,
    CaseState,
    Election,
    EscalationStep,
    EventType,
    EvidenceKind,
    IssuingBody,
    MutationKind,
    OrderAction,
    OrderOutcome,
    PolicyRegime,
    Position,
    RegionalHeadRole,
    ReporterChannel,
    ReportKind,
    ReviewAction,
    SanctionLevel,
    Severity,
    SiasnScope,
    ViolationKind,
    ViolationType,
)
from .hub import (
    DETAIL_FIELDS,
    Alert,
    CanonicalEvent,
    CaseRecord,
    CaseTransition,
    MatchCandidate,
    MatchInfo,
    ReviewDecision,
    SiasnOrder,
    SiasnOrderResult,
    SourceRef,
    TimelineEntry,
)
from .raw import (
    RAW_MODELS,
    BawasluReport,
    BknDecision,
    MutationRequest,
    PolicyUpdate,
    RawRecord,
    SanctionDecision,
)

RECORD_MODELS: dict[str, type[AvroRecord]] = dict(sorted(registry().items()))
"""Every record model by Avro full name, e.g. ``"id.go.netral.BawasluReport"``."""

TOPIC_MODELS: dict[str, type[AvroRecord]] = {
    **{raw_topic(agency): model for agency, model in RAW_MODELS.items()},
    EVENTS: CanonicalEvent,
    CASES: CaseRecord,
    CASE_EVENTS: CaseTransition,
    ORDERS_SIASN: SiasnOrder,
    ORDERS_SIASN_RESULTS: SiasnOrderResult,
    ALERTS: Alert,
    COMMANDS: ReviewDecision,
}
"""The value record of each topic (DLQ topics carry original bytes, so they have none)."""

__all__ = [
    "DETAIL_FIELDS",
    "NAMESPACE",
    "RAW_MODELS",
    "RECORD_MODELS",
    "TOPIC_MODELS",
    "Agency",
    "Alert",
    "AvroRecord",
    "BawasluReport",
    "BawasluReviewOutcome",
    "BknDecision",
    "CanonicalEvent",
    "CaseRecord",
    "CaseState",
    "CaseTransition",
    "Election",
    "EscalationNotice",
    "EscalationStep",
    "EventType",
    "EvidenceKind",
    "EvidenceRef",
    "IssuingBody",
    "MatchCandidate",
    "MatchInfo",
    "MutationDetails",
    "MutationKind",
    "MutationRequest",
    "OrderAction",
    "OrderOutcome",
    "PersonRef",
    "PolicyParameters",
    "PolicyRegime",
    "PolicyUpdate",
    "Position",
    "RawRecord",
    "Recommendation",
    "RegionalHeadRole",
    "RegionalOfficial",
    "ReportDetails",
    "ReportKind",
    "ReporterChannel",
    "ReviewAction",
    "ReviewDecision",
    "Sanction",
    "SanctionDecision",
    "SanctionLevel",
    "Severity",
    "SiasnOrder",
    "SiasnOrderResult",
    "SiasnScope",
    "SourceRef",
    "TimelineEntry",
    "Verification",
    "ViolationKind",
    "ViolationType",
]
