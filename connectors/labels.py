"""Indonesian labels agencies use in their exports, mapped to the hub's enum symbols."""

from __future__ import annotations

from datetime import datetime

ELECTION = {"pemilu 2024": "PEMILU_2024", "pemilu2024": "PEMILU_2024",
            "pilkada 2024": "PILKADA_2024", "pilkada2024": "PILKADA_2024"}
POSITION = {"jpt": "JPT", "administrator": "ADMINISTRATOR", "pengawas": "PENGAWAS",
            "fungsional": "FUNGSIONAL", "pelaksana": "PELAKSANA", "camat/lurah": "CAMAT_LURAH",
            "camat": "CAMAT_LURAH", "lurah": "CAMAT_LURAH", "pj kepala daerah": "PJ_KEPALA_DAERAH",
            "lainnya": "OTHER"}
VIOLATION = {"media sosial": "SOCIAL_MEDIA", "hadir kampanye": "CAMPAIGN_ATTENDANCE",
             "kampanye daring": "ONLINE_CAMPAIGN", "kegiatan partisan": "PARTISAN_ACTIVITY",
             "anggota partai": "PARTY_MEMBERSHIP", "hadir deklarasi": "DECLARATION_ATTENDANCE",
             "fasilitas negara": "STATE_FACILITIES",
             "keputusan menguntungkan": "FAVOURING_DECISION", "mobilisasi": "MOBILISATION",
             "lainnya": "OTHER"}
LEVEL = {"ringan": "RINGAN", "sedang": "SEDANG", "berat": "BERAT", "moral": "KODE_ETIK_MORAL"}
KIND = {"disiplin": "DISIPLIN", "kode etik": "KODE_ETIK"}
YES = {"ya", "y", "true", "1", "terbukti"}
NO = {"tidak", "t", "false", "0", "tidak terbukti"}


def instant(value: object) -> datetime:
    """An ISO 8601 time with its UTC offset, e.g. 2024-11-05T09:12:33+07:00 (no naive times)."""
    text = value if isinstance(value, datetime) else str(value).strip()
    parsed = text if isinstance(text, datetime) else datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset (write e.g. +07:00 for WIB)")
    return parsed


def yes_no(value: object) -> bool:
    text = str(value).strip().lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise ValueError(f"{value!r} is not ya/tidak")
