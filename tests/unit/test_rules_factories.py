"""Builders of canonical events for the rules tests (imported by the other test_rules_* modules),
and a check that each builds a valid event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from schemas.models import (
    Agency,
    CanonicalEvent,
    Election,
    EscalationNotice,
    EscalationStep,
    EventType,
    EvidenceKind,
    EvidenceRef,
    IssuingBody,
    PersonRef,
    Position,
    Recommendation,
    ReportDetails,
    ReporterChannel,
    ReportKind,
    Sanction,
    SanctionLevel,
    Verification,
    ViolationKind,
    ViolationType,
)
from streams.rules.calendar import default_calendar
from streams.rules.policy import load_policies

pytestmark = pytest.mark.unit

NIP_A = "198503152010011001"
NIP_B = "199001012015032002"
NIP_C = "197806302005011003"
REF = "0001/Reg/LP/PB/32.73/10/2024"
PILKADA = Election.PILKADA_2024
PEMILU = Election.PEMILU_2024
CAL = default_calendar()
POLICIES = load_policies()


def at(day: date | str, hour: int = 3) -> datetime:
    """An instant on ``day`` (03:00 UTC = 10:00 WIB by default)."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


def person(nip: str | None = NIP_A, name: str = "Budi Santoso",
           agency: str = "Pemerintah Kota Bandung", region: str | None = "32.73",
           position: Position | None = Position.CAMAT_LURAH) -> PersonRef:
    return PersonRef(nip=nip, name=name, agency_name=agency, position=position,
                     region_code=region)


def _event(agency: Agency, sid: str, event_type: EventType, when: datetime,
           election: Election, **fields: Any) -> CanonicalEvent:
    return CanonicalEvent(event_id=f"{agency}:{sid}", agency=agency, source_id=sid,
                          event_type=event_type, occurred_at=when, recorded_at=when,
                          election=election, origin_schema="id.go.netral.Test", **fields)


def report(sid: str, when: datetime, *, ref: str | None = REF, who: PersonRef | None = None,
           vtype: ViolationType = ViolationType.CAMPAIGN_ATTENDANCE,
           incident: date | None = None, election: Election = PILKADA, region: str = "32.73",
           evidence: tuple[str, ...] = ()) -> CanonicalEvent:
    return _event(
        Agency.BAWASLU, sid, EventType.VIOLATION_REPORTED, when, election, case_ref=ref,
        person=who or person(), region_code=region,
        incident_date=incident or (when - timedelta(days=1)).date(), violation_type=vtype,
        report=ReportDetails(report_kind=ReportKind.LAPORAN,
                             reporter_channel=ReporterChannel.PUBLIC,
                             incident_place="Kota Bandung", description="ASN hadir kampanye"),
        evidence=tuple(EvidenceRef(kind=EvidenceKind.LINK, uri=u) for u in evidence))


def review(sid: str, when: datetime, outcome: EventType, *, ref: str = REF,
           election: Election = PILKADA) -> CanonicalEvent:
    """A Bawaslu review outcome: REVIEW_FORWARDED, CASE_CANCELLED or CASE_REJECTED."""
    return _event(Agency.BAWASLU, sid, outcome, when, election, case_ref=ref,
                  note="hasil kajian")


def verified(sid: str, when: datetime, proven: bool = True, *, ref: str = REF,
             nip: str | None = NIP_A, election: Election = PILKADA,
             body: IssuingBody | None = None) -> CanonicalEvent:
    issuer = body or (IssuingBody.SATGAS if election is PILKADA else IssuingBody.KASN)
    return _event(Agency.BKN, sid, EventType.VERIFIED, when, election, case_ref=ref, nip=nip,
                  issued_by=issuer, verification=Verification(proven=proven, reasons="klarifikasi"))


def recommended(sid: str, when: datetime, *, ref: str = REF, nip: str | None = NIP_A,
                election: Election = PILKADA, level: SanctionLevel = SanctionLevel.SEDANG,
                deadline: date | None = None) -> CanonicalEvent:
    issuer = IssuingBody.BKN if election is PILKADA else IssuingBody.KASN
    return _event(Agency.BKN, sid, EventType.RECOMMENDED, when, election, case_ref=ref, nip=nip,
                  issued_by=issuer, recommendation=Recommendation(
                      violation_kind=ViolationKind.DISIPLIN, level=level,
                      sanction="pemotongan tunjangan kinerja 25% 6 bulan",
                      ppk_name="Wali Kota Bandung", ppk_agency_code="A5", deadline=deadline))


def sanctioned(sid: str, when: datetime, *, ref: str = REF, nip: str = NIP_A,
               election: Election = PILKADA) -> CanonicalEvent:
    return _event(Agency.PPK, sid, EventType.SANCTIONED, when, election, case_ref=ref, nip=nip,
                  sanction=Sanction(ppk_name="Wali Kota Bandung", agency_code="A5",
                                    level=SanctionLevel.SEDANG, sanction="tunjangan 25%",
                                    decree_number="800/1/BKPSDM/2024", decided_on=when.date()))


_STEP_EVENTS = {EscalationStep.WARNING: EventType.WARNING_ISSUED,
                EscalationStep.REPRIMAND: EventType.REPRIMAND_ISSUED,
                EscalationStep.BLOCK: EventType.BLOCK_ISSUED,
                EscalationStep.UNBLOCK: EventType.UNBLOCK_ISSUED}


def escalated(sid: str, when: datetime, step: EscalationStep, *, ref: str = REF,
              nip: str | None = NIP_A, election: Election = PILKADA) -> CanonicalEvent:
    """BKN's own letter: peringatan, teguran, pemblokiran or its lifting."""
    return _event(Agency.BKN, sid, _STEP_EVENTS[step], when, election, case_ref=ref, nip=nip,
                  issued_by=IssuingBody.BKN,
                  escalation=EscalationNotice(step=step, letter_number=f"B-{sid}"))


BUILDERS: dict[str, Callable[..., CanonicalEvent]] = {
    "report": lambda: report("r1", at("2024-10-01")),
    "review": lambda: review("r1:fwd", at("2024-10-02"), EventType.REVIEW_FORWARDED),
    "verified": lambda: verified("v1", at("2024-10-03")),
    "recommended": lambda: recommended("rec1", at("2024-10-04")),
    "sanctioned": lambda: sanctioned("s1", at("2024-10-05")),
    "escalated": lambda: escalated("w1", at("2024-10-06"), EscalationStep.WARNING),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builders_make_valid_events(name: str) -> None:
    event = BUILDERS[name]()
    assert event.event_id.startswith(f"{event.agency}:")
