"""Realistic sample Bawaslu reports, deterministic per seed (the demo and the tests use them).

Shares follow domain.md: proven Pemilu 2024 cases by violation type and offenders by position.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from schemas.models import (
    BawasluReport,
    Election,
    PersonRef,
    Position,
    ReporterChannel,
    ReportKind,
    ViolationType,
)
from schemas.regions import RegionLevel, regions

T = TypeVar("T")
VIOLATION_SHARES = {
    ViolationType.SOCIAL_MEDIA: 15.8, ViolationType.CAMPAIGN_ATTENDANCE: 12.9,
    ViolationType.ONLINE_CAMPAIGN: 11.3, ViolationType.PARTISAN_ACTIVITY: 10.8,
    ViolationType.PARTY_MEMBERSHIP: 7.1, ViolationType.DECLARATION_ATTENDANCE: 9.0,
    ViolationType.STATE_FACILITIES: 8.0, ViolationType.FAVOURING_DECISION: 7.0,
    ViolationType.MOBILISATION: 6.0, ViolationType.OTHER: 12.1,
}
POSITION_SHARES = {
    Position.FUNGSIONAL: 23.3, Position.JPT: 22.9, Position.PELAKSANA: 18.3,
    Position.CAMAT_LURAH: 16.7, Position.ADMINISTRATOR: 10.4, Position.PENGAWAS: 6.4,
    Position.PJ_KEPALA_DAERAH: 2.0,
}
FIRST = ["Ahmad", "Budi", "Siti", "Dewi", "Agus", "Rina", "Hendra", "Nur", "Yusuf", "Ratna",
         "Fajar", "Indah", "Joko", "Lestari", "Rudi", "Wahyuni", "Bambang", "Sri", "Eko", "Putri"]
LAST = ["Saputra", "Wijaya", "Hidayat", "Kusuma", "Nasution", "Siregar", "Pratama", "Lubis",
        "Santoso", "Rahmawati", "Harahap", "Setiawan", "Gunawan", "Putra", "Handayani"]


def random_nip(rng: random.Random) -> str:
    """A structurally valid NIP: birth date, CPNS start after age 18, gender, sequence."""
    birth = date(1965, 1, 1) + timedelta(days=rng.randrange(0, 365 * 33))
    start_year = min(birth.year + rng.randint(21, 30), 2023)
    return (f"{birth:%Y%m%d}{start_year}{rng.randint(1, 12):02d}"
            f"{rng.choice('12')}{rng.randint(1, 999):03d}")


def _weighted(rng: random.Random, shares: Mapping[T, float]) -> T:
    return rng.choices(list(shares), weights=list(shares.values()))[0]


def sample_reports(n: int, seed: int = 2024, election: Election = Election.PILKADA_2024,
                   now: datetime | None = None) -> list[BawasluReport]:
    """``n`` Bawaslu reports about distinct people, recorded in the recent past."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    places = [r for r in regions().values() if r.level is not RegionLevel.PROVINCE]
    out = []
    for i in range(n):
        region = rng.choice(places)
        recorded = now - timedelta(hours=rng.randint(1, 72))
        out.append(BawasluReport(
            source_id=f"bwl-{seed}-{i:06d}",
            recorded_at=recorded.replace(microsecond=0),
            election=election,
            report_kind=rng.choice([ReportKind.TEMUAN, ReportKind.LAPORAN]),
            register_number=f"{i:03d}/Reg/LP/PB/{region.code}/{recorded:%m/%Y}",
            reporter_channel=rng.choice(list(ReporterChannel)),
            incident_date=(recorded - timedelta(days=rng.randint(0, 5))).date(),
            incident_place=region.name,
            region_code=region.code,
            accused=PersonRef(
                nip=random_nip(rng),
                name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                agency_name=f"Pemerintah {region.name}",
                position=_weighted(rng, POSITION_SHARES),
            ),
            violation_type=_weighted(rng, VIOLATION_SHARES),
            description="ASN diduga tidak netral dalam pemilihan (data contoh).",
        ))
    return out
