"""Records shared by raw and hub records: people, evidence, and the bodies of decisions.

Field meanings are documented in the matching ``.avsc`` files; here are the checks Avro cannot
express (NIP structure, known regions, length caps, dates not in the future).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from .base import AvroRecord
from .enums import (
    EscalationStep,
    EvidenceKind,
    MutationKind,
    PolicyRegime,
    Position,
    RegionalHeadRole,
    ReporterChannel,
    ReportKind,
    SanctionLevel,
    ViolationKind,
)
from .types import MAX_EVIDENCE, Id, Name, Nip, PastDate, Ref, RegionCode, Sha256, Text, Uri

WorkingDays = Annotated[int, Field(ge=1, le=90)]


class PersonRef(AvroRecord):
    """A civil servant as a source knows them; the NIP is often missing in public reports."""

    nip: Nip | None = None
    name: Name
    agency_name: Name
    agency_code: Id | None = None
    position: Position | None = None
    position_title: Name | None = None
    region_code: RegionCode | None = None


class EvidenceRef(AvroRecord):
    """A pointer to evidence its owner keeps; the hub never stores the files."""

    kind: EvidenceKind
    uri: Uri
    sha256: Sha256 | None = None
    description: Text | None = None


Evidence = Annotated[tuple[EvidenceRef, ...], Field(max_length=MAX_EVIDENCE)]
"""An evidence list, capped: a message is not a file store."""


class RegionalOfficial(AvroRecord):
    """A regional head asking for a mutation; ``acting`` marks a Pj."""

    name: Name
    role: RegionalHeadRole
    acting: bool = False


class Verification(AvroRecord):
    """Proven (terbukti) or not proven; not proven closes the case."""

    proven: bool
    reasons: Text


class Recommendation(AvroRecord):
    """What the PPK is told to impose; a null deadline is computed by the hub from policy."""

    violation_kind: ViolationKind
    level: SanctionLevel
    sanction: Ref
    ppk_name: Name
    ppk_agency_code: Id | None = None
    deadline: date | None = None


class EscalationNotice(AvroRecord):
    """One of BKN's own steps: peringatan, teguran, pemblokiran or its lifting."""

    step: EscalationStep
    letter_number: Ref


class Sanction(AvroRecord):
    """A sanction the PPK imposed (I'DIS)."""

    ppk_name: Name
    agency_code: Id
    level: SanctionLevel
    sanction: Ref
    decree_number: Ref
    decided_on: PastDate


class MutationDetails(AvroRecord):
    """An I-MUT request, as carried on a canonical event."""

    request_id: Id
    requesting_official: RegionalOfficial
    mutation_kind: MutationKind = MutationKind.OTHER
    from_position: Name
    to_position: Name
    requested_date: PastDate
    mendagri_approval_ref: Ref | None = None


class PolicyParameters(AvroRecord):
    """Deadlines and escalation intervals for one election; configuration, not code."""

    regime: PolicyRegime
    effective_date: date
    ppk_deadline_working_days: WorkingDays
    warning_interval_working_days: WorkingDays
    reprimand_interval_working_days: WorkingDays
    decree_ref: Ref


class ReportDetails(AvroRecord):
    """What a Bawaslu report says beyond who, where and when."""

    report_kind: ReportKind
    reporter_channel: ReporterChannel
    incident_place: Name
    description: Text
