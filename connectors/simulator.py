"""Election simulator: realistic agency traffic with a ground truth to score the hub against.

Deterministic per seed and free of the clock: events are dated in the real 2024 election windows.
Shares follow domain.md (violation types, positions, Pilkada 2024 outcomes: most cases stall
awaiting BKN or the PPK). It produces what each agency would publish: Bawaslu reports (with
cross-agency duplicates and name-only public reports), Bawaslu review outcomes (Pilkada), BKN/KASN
verifications and recommendations, and PPK sanctions from I'DIS; some are sent late or out of
order, and a small share of native rows are bad on purpose.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from schemas.models import (
    BawasluReport,
    BawasluReviewOutcome,
    BknDecision,
    Election,
    IssuingBody,
    PersonRef,
    Recommendation,
    ReporterChannel,
    ReportKind,
    SanctionDecision,
    SanctionLevel,
    Verification,
    ViolationKind,
    ViolationType,
)
from schemas.models.raw import RawRecord
from schemas.regions import Region, RegionLevel, regions

from .samples import FIRST, LAST, POSITION_SHARES, VIOLATION_SHARES, _weighted, random_nip


class Outcome(StrEnum):
    """Where a true case ends in the simulated data (Pilkada 2024 reality, domain.md)."""

    AWAITING_BKN = "awaiting_bkn"
    AWAITING_PPK = "awaiting_ppk"
    SANCTIONED = "sanctioned"
    NOT_PROVEN = "not_proven"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


# Pilkada 2024, 1,158 reports: 667 awaiting BKN, 436 awaiting PPK, 19 sanctioned, 24 not proven,
# 27 cancelled, 60 rejected. Pemilu 2024: 450 reported, 240 proven (KASN era, no Bawaslu review).
OUTCOME_SHARES = {
    Election.PILKADA_2024: {Outcome.AWAITING_BKN: 667, Outcome.AWAITING_PPK: 436,
                            Outcome.SANCTIONED: 19, Outcome.NOT_PROVEN: 24,
                            Outcome.CANCELLED: 27, Outcome.REJECTED: 60},
    Election.PEMILU_2024: {Outcome.AWAITING_BKN: 150, Outcome.AWAITING_PPK: 200,
                           Outcome.SANCTIONED: 40, Outcome.NOT_PROVEN: 60},
}
WINDOWS = {
    Election.PILKADA_2024: (datetime(2024, 9, 25, tzinfo=UTC), datetime(2024, 12, 20, tzinfo=UTC)),
    Election.PEMILU_2024: (datetime(2023, 11, 28, tzinfo=UTC), datetime(2024, 3, 15, tzinfo=UTC)),
}
LEVEL_BY_TYPE = {
    ViolationType.SOCIAL_MEDIA: SanctionLevel.RINGAN,
    ViolationType.PARTY_MEMBERSHIP: SanctionLevel.BERAT,
    ViolationType.MOBILISATION: SanctionLevel.BERAT,
    ViolationType.STATE_FACILITIES: SanctionLevel.BERAT,
}
TITLES = ["Drs. ", "H. ", "Ir. ", ""]
SUFFIXES = [", S.Pd", ", S.E.", ", M.Si", ""]


@dataclass(frozen=True)
class SimConfig:
    election: Election = Election.PILKADA_2024
    cases: int = 100
    duplicate_rate: float = 0.2
    name_only_rate: float = 0.1
    late_rate: float = 0.05
    bad_rate: float = 0.01
    seed: int = 2024
    #: The first case's number: a wave simulated in parts (each with its own seed) numbers its
    #: cases apart, so their register numbers never meet.
    first_case: int = 0


@dataclass(frozen=True)
class SimEvent:
    """One thing an agency publishes, at its (event) time; ``native`` is set for bad rows."""

    at: datetime
    agency: str
    record: RawRecord | None = None
    native: dict[str, Any] | None = None

    @property
    def event_id(self) -> str:
        """The CanonicalEvent id the hub gives this record (what the ground truth lists)."""
        if self.record is not None:
            return self.record.event_id()
        return f"{self.agency}:{(self.native or {}).get('id_laporan', '?')}"


@dataclass
class TrueCase:
    case_no: int
    nip: str
    outcome: Outcome
    event_ids: list[str] = field(default_factory=list)
    name_only_event_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"case": self.case_no, "nip": self.nip, "outcome": self.outcome.value,
                "event_ids": self.event_ids, "name_only_event_ids": self.name_only_event_ids}


@dataclass
class Simulation:
    events: list[SimEvent]
    truth: list[TrueCase]
    bad: list[SimEvent]


def _name_variant(rng: random.Random, name: str) -> str:
    """How a member of the public might write an official's name."""
    variant = rng.choice(TITLES) + name + rng.choice(SUFFIXES)
    return variant.upper() if rng.random() < 0.2 else variant


def simulate(cfg: SimConfig) -> Simulation:
    """The whole wave, sorted by send time (late events already displaced)."""
    rng = random.Random(cfg.seed)
    start, end = WINDOWS[cfg.election]
    places = [r for r in regions().values() if r.level is not RegionLevel.PROVINCE]
    shares = OUTCOME_SHARES[cfg.election]
    events: list[SimEvent] = []
    truth: list[TrueCase] = []
    pilkada = cfg.election is Election.PILKADA_2024
    for n in range(cfg.first_case, cfg.first_case + cfg.cases):
        region = rng.choice(places)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        person = PersonRef(nip=random_nip(rng), name=name,
                           agency_name=f"Pemerintah {region.name}",
                           position=_weighted(rng, POSITION_SHARES), region_code=region.code)
        assert person.nip is not None
        outcome = _weighted(rng, shares)
        case = TrueCase(n, person.nip, outcome)
        truth.append(case)
        vtype = _weighted(rng, VIOLATION_SHARES)
        t = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds() * 0.6)))
        incident = (t - timedelta(days=rng.randint(0, 4))).date()
        reg = f"{n:04d}/Reg/{'LP' if n % 2 else 'TM'}/PB/{region.code}/{t:%m/%Y}"

        def report(sid: str, register: str, at: datetime, accused: PersonRef,
                   kind: ReportKind, inc: date, region: Region = region,
                   vtype: ViolationType = vtype) -> BawasluReport:
            return BawasluReport(
                source_id=sid, recorded_at=at, election=cfg.election, report_kind=kind,
                register_number=register,
                reporter_channel=(ReporterChannel.PUBLIC if kind is ReportKind.LAPORAN
                                  else ReporterChannel.BAWASLU_PATROL),
                incident_date=inc, incident_place=region.name, region_code=region.code,
                accused=accused, violation_type=vtype,
                description="Dugaan pelanggaran netralitas ASN (data simulasi).")

        def add(at: datetime, agency: str, record: RawRecord, name_only: bool = False,
                case: TrueCase = case) -> None:
            ev = SimEvent(at=at, agency=agency, record=record)
            events.append(ev)
            (case.name_only_event_ids if name_only else case.event_ids).append(ev.event_id)

        first_name_only = rng.random() < cfg.name_only_rate
        accused = person if not first_name_only else person.model_copy(
            update={"nip": None, "name": _name_variant(rng, name)})
        sid = f"bwl-{cfg.seed}-{n:06d}"
        first = report(sid, reg, t, accused, ReportKind.TEMUAN if n % 2 == 0
                       else ReportKind.LAPORAN, incident)
        add(t, "bawaslu", first, name_only=first_name_only)
        if rng.random() < cfg.duplicate_rate:  # the same incident, reported again separately
            dup_t = t + timedelta(hours=rng.randint(1, 72))
            dup_name_only = rng.random() < 0.5
            dup_person = person if not dup_name_only else person.model_copy(
                update={"nip": None, "name": _name_variant(rng, name)})
            add(dup_t, "bawaslu", report(
                f"{sid}-d", f"{n:04d}/Reg/LP/PB/{region.code}/{dup_t:%m/%Y}-b", dup_t,
                dup_person, ReportKind.LAPORAN,
                incident - timedelta(days=rng.randint(0, 2))), name_only=dup_name_only)
        t2 = t + timedelta(days=rng.randint(1, 3))
        if pilkada and outcome in (Outcome.REJECTED, Outcome.CANCELLED):
            review = (BawasluReviewOutcome.REJECTED if outcome is Outcome.REJECTED
                      else BawasluReviewOutcome.CANCELLED)
            add(t2, "bawaslu", first.model_copy(update={
                "source_id": f"{sid}-r", "review_outcome": review, "reviewed_at": t2}),
                name_only=first_name_only)
            continue
        if pilkada:
            add(t2, "bawaslu", first.model_copy(update={
                "source_id": f"{sid}-r", "review_outcome": BawasluReviewOutcome.FORWARDED,
                "reviewed_at": t2}), name_only=first_name_only)
        if outcome is Outcome.AWAITING_BKN:
            continue
        body_by = IssuingBody.SATGAS if pilkada else IssuingBody.KASN
        t3 = t2 + timedelta(days=rng.randint(2, 7))
        proven = outcome is not Outcome.NOT_PROVEN
        add(t3, "bkn", BknDecision(
            source_id=f"bkn-{cfg.seed}-{n:06d}-v", recorded_at=t3, election=cfg.election,
            issued_by=body_by, case_ref=reg, nip=person.nip, decided_at=t3,
            body=Verification(proven=proven, reasons="Hasil klarifikasi (simulasi).")))
        if not proven:
            continue
        t4 = t3 + timedelta(days=rng.randint(1, 5))
        level = LEVEL_BY_TYPE.get(vtype, SanctionLevel.SEDANG)
        add(t4, "bkn", BknDecision(
            source_id=f"bkn-{cfg.seed}-{n:06d}-r", recorded_at=t4, election=cfg.election,
            issued_by=IssuingBody.BKN if pilkada else IssuingBody.KASN, case_ref=reg,
            nip=person.nip, decided_at=t4,
            body=Recommendation(violation_kind=ViolationKind.DISIPLIN, level=level,
                                sanction=f"hukuman disiplin {level.value.lower()}",
                                ppk_name=f"PPK {person.agency_name}")))
        if outcome is Outcome.SANCTIONED:
            t5 = t4 + timedelta(days=rng.randint(5, 40))
            add(t5, "ppk", SanctionDecision(
                source_id=f"idis-{cfg.seed}-{n:06d}", recorded_at=t5, election=cfg.election,
                case_ref=reg, nip=person.nip, ppk_name=f"PPK {person.agency_name}",
                agency_code=f"AG-{region.code}", level=level,
                sanction=f"hukuman disiplin {level.value.lower()}",
                decree_number=f"800/{n}/BKPSDM/{t5:%Y}", decided_on=t5.date()))
    bad = [SimEvent(at=start + timedelta(hours=i), agency="bawaslu", native=_bad_row(rng, i))
           for i in range(int(cfg.cases * cfg.bad_rate))]
    send_order = [(_send_at(rng, ev, cfg.late_rate), i, ev) for i, ev in enumerate(events)]
    send_order.sort(key=lambda x: (x[0], x[1]))
    return Simulation([ev for _, _, ev in send_order], truth, bad)


def _send_at(rng: random.Random, ev: SimEvent, late_rate: float) -> datetime:
    """When an agency actually sends an event: some arrive days late (out of order)."""
    if rng.random() < late_rate:
        return ev.at + timedelta(days=rng.randint(2, 10))
    return ev.at


def _bad_row(rng: random.Random, i: int) -> dict[str, Any]:
    """A native Bawaslu row that must be rejected (and counted), never silently dropped."""
    problems: list[dict[str, Any]] = [
        {"kode_wilayah": "99.99"}, {"terlapor": {"nip": "19851345201001100"}},
        {"dicatat_pada": "2024-11-05 09:12"}]
    return {"id_laporan": f"bad-{i}", **rng.choice(problems)}


def iter_truth_lines(sim: Simulation) -> Iterator[dict[str, Any]]:
    for case in sim.truth:
        yield case.as_json()
