"""Bawaslu: temuan and laporan as exported from its case system (one object or CSV row each).

Native JSON (CSV uses the same names, nested ones dotted: ``terlapor.nip``; ``bukti`` as URLs
separated by ``|``)::

    {"id_laporan": "bwl-2024-000121", "dicatat_pada": "2024-11-05T09:12:33+07:00",
     "pemilihan": "Pilkada 2024", "jenis": "laporan",
     "nomor_register": "012/Reg/LP/PW/Kota/13.04/XI/2024", "sumber": "masyarakat",
     "tanggal_kejadian": "2024-11-02", "tempat_kejadian": "Lapangan Gasibu, Bandung",
     "kode_wilayah": "32.73",
     "terlapor": {"nip": "198503152010011001", "nama": "Budi Santoso",
                  "instansi": "Pemerintah Kota Bandung", "jabatan": "Kepala Seksi",
                  "kategori_jabatan": "pengawas"},
     "jenis_pelanggaran": "media sosial", "uraian": "...",
     "bukti": [{"jenis": "tangkapan layar", "url": "https://...", "sha256": "..."}],
     "hasil_kajian": "diteruskan", "dikaji_pada": "2024-11-07T15:00:00+07:00"}
"""

from __future__ import annotations

from typing import Any

from schemas.models import BawasluReport

from .labels import ELECTION, POSITION, VIOLATION, instant
from .mapping import NativeMapping

EVIDENCE_KIND = {"foto": "PHOTO", "video": "VIDEO", "tangkapan layar": "SCREENSHOT",
                 "dokumen": "DOCUMENT", "tautan": "LINK", "lainnya": "OTHER"}


def evidence(value: Any) -> list[dict[str, Any]]:
    """A list of {jenis, url, sha256, keterangan}, or URLs separated by '|' (CSV)."""
    if isinstance(value, str):
        return [{"kind": "LINK", "uri": u.strip()} for u in value.split("|") if u.strip()]
    items = []
    for item in value:
        kind = EVIDENCE_KIND.get(str(item.get("jenis", "tautan")).lower())
        if kind is None:
            raise ValueError(f"bukti jenis {item.get('jenis')!r} is not one of: "
                             f"{', '.join(EVIDENCE_KIND)}")
        items.append({"kind": kind, "uri": item.get("url"), "sha256": item.get("sha256"),
                      "description": item.get("keterangan")})
    return items


MAPPING = NativeMapping(
    model=BawasluReport,
    fields={
        "id_laporan": "source_id", "dicatat_pada": "recorded_at", "pemilihan": "election",
        "jenis": "report_kind", "nomor_register": "register_number",
        "sumber": "reporter_channel", "tanggal_kejadian": "incident_date",
        "tempat_kejadian": "incident_place", "kode_wilayah": "region_code",
        "terlapor.nip": "accused.nip", "terlapor.nama": "accused.name",
        "terlapor.instansi": "accused.agency_name", "terlapor.jabatan": "accused.position_title",
        "terlapor.kategori_jabatan": "accused.position",
        "jenis_pelanggaran": "violation_type", "uraian": "description", "bukti": "evidence",
        "hasil_kajian": "review_outcome", "dikaji_pada": "reviewed_at",
        "catatan_kajian": "review_note",
    },
    values={
        "pemilihan": ELECTION, "jenis": {"temuan": "TEMUAN", "laporan": "LAPORAN"},
        "sumber": {"masyarakat": "PUBLIC", "pengawasan": "BAWASLU_PATROL",
                   "media": "MEDIA_MONITORING", "pelimpahan": "REFERRAL", "lainnya": "OTHER"},
        "terlapor.kategori_jabatan": POSITION, "jenis_pelanggaran": VIOLATION,
        "hasil_kajian": {"diteruskan": "FORWARDED", "ditolak": "REJECTED",
                         "dibatalkan": "CANCELLED"},
    },
    convert={"dicatat_pada": instant, "dikaji_pada": instant, "bukti": evidence},
)
to_record = MAPPING.to_record
