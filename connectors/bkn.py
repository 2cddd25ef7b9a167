"""BKN (and KASN-era) decisions: verification, recommendation to the PPK, and BKN's own
escalation steps (peringatan, teguran, pemblokiran and its lifting).

Native JSON (one decision per object; fields by ``jenis_keputusan``)::

    {"id_keputusan": "bkn-dec-88812", "dicatat_pada": "2024-11-20T10:00:00+07:00",
     "pemilihan": "Pilkada 2024", "diterbitkan_oleh": "BKN",
     "nomor_register": "012/Reg/LP/PW/Kota/13.04/XI/2024", "nip": "198503152010011001",
     "tanggal_keputusan": "2024-11-19T16:30:00+07:00", "jenis_keputusan": "rekomendasi",
     "jenis_hukuman": "disiplin", "tingkat": "sedang",
     "sanksi": "pemotongan tunjangan kinerja 25% selama 6 bulan", "ppk": "Wali Kota Bandung",
     "kode_instansi_ppk": "A5EB03E23CFDF6A0E040640A040252AD", "batas_waktu": null}

``verifikasi`` carries ``terbukti`` (ya/tidak) and ``alasan``; ``peringatan``, ``teguran``,
``blokir`` and ``buka_blokir`` carry ``nomor_surat``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.errors import InvalidMessage
from schemas.models import BknDecision
from schemas.models.raw import RawRecord

from .labels import ELECTION, KIND, LEVEL, instant, yes_no
from .mapping import NativeMapping

STEPS = {"peringatan": "WARNING", "teguran": "REPRIMAND", "blokir": "BLOCK",
         "buka_blokir": "UNBLOCK"}
DECISIONS = {"verifikasi", "rekomendasi", *STEPS}

MAPPING = NativeMapping(
    model=BknDecision,
    fields={
        "id_keputusan": "source_id", "dicatat_pada": "recorded_at", "pemilihan": "election",
        "diterbitkan_oleh": "issued_by", "nomor_register": "case_ref", "nip": "nip",
        "tanggal_keputusan": "decided_at", "jenis_keputusan": "body.step",
        "terbukti": "body.proven", "alasan": "body.reasons",
        "jenis_hukuman": "body.violation_kind", "tingkat": "body.level", "sanksi": "body.sanction",
        "ppk": "body.ppk_name", "kode_instansi_ppk": "body.ppk_agency_code",
        "batas_waktu": "body.deadline", "nomor_surat": "body.letter_number",
    },
    values={
        "pemilihan": ELECTION, "jenis_keputusan": STEPS, "jenis_hukuman": KIND, "tingkat": LEVEL,
        "diterbitkan_oleh": {"kasn": "KASN", "bkn": "BKN", "satgas": "SATGAS",
                             "bawaslu": "BAWASLU"},
    },
    convert={"dicatat_pada": instant, "tanggal_keputusan": instant, "terbukti": yes_no},
)


def to_record(row: Mapping[str, Any]) -> RawRecord:
    """Map one BKN decision; the decision kind picks which body fields apply."""
    kind = str(row.get("jenis_keputusan", "")).strip().lower()
    if kind not in DECISIONS:
        raise InvalidMessage(f"jenis_keputusan: {row.get('jenis_keputusan')!r} is not one of: "
                             f"{', '.join(sorted(DECISIONS))}")
    if kind in STEPS:
        return MAPPING.to_record(row)
    return MAPPING.to_record({k: v for k, v in row.items() if k != "jenis_keputusan"})
