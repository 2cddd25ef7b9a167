"""Each agency's native export maps to its raw record; errors name the agency's own fields."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.agencies import PARSERS
from schemas.errors import InvalidMessage
from schemas.models import (
    BawasluReport,
    BknDecision,
    EscalationNotice,
    MutationRequest,
    PolicyUpdate,
    Recommendation,
    SanctionDecision,
    Verification,
)
from schemas.topics import Agency

pytestmark = pytest.mark.unit
NIP = "198503152010011001"
REG = "012/Reg/LP/PW/Kota/13.04/XI/2024"

BAWASLU: dict[str, Any] = {
    "id_laporan": "bwl-2024-000121", "dicatat_pada": "2024-11-05T09:12:33+07:00",
    "pemilihan": "Pilkada 2024", "jenis": "laporan", "nomor_register": REG,
    "sumber": "masyarakat", "tanggal_kejadian": "2024-11-02",
    "tempat_kejadian": "Lapangan Gasibu, Bandung", "kode_wilayah": "32.73",
    "terlapor": {"nip": NIP, "nama": "Budi Santoso", "instansi": "Pemerintah Kota Bandung",
                 "jabatan": "Kepala Seksi", "kategori_jabatan": "pengawas"},
    "jenis_pelanggaran": "media sosial", "uraian": "Mengunggah dukungan kepada paslon.",
    "bukti": [{"jenis": "tangkapan layar", "url": "https://sigap.example/e/1.png"}],
}
BKN_BASE: dict[str, Any] = {
    "id_keputusan": "bkn-dec-1", "dicatat_pada": "2024-11-20T10:00:00+07:00",
    "pemilihan": "Pilkada 2024", "diterbitkan_oleh": "BKN", "nomor_register": REG, "nip": NIP,
    "tanggal_keputusan": "2024-11-19T16:30:00+07:00",
}


def test_bawaslu_json_maps_to_a_report() -> None:
    record = PARSERS[Agency.BAWASLU](BAWASLU)
    assert isinstance(record, BawasluReport)
    assert record.accused.nip == NIP and record.accused.position == "PENGAWAS"
    assert record.violation_type == "SOCIAL_MEDIA" and record.reporter_channel == "PUBLIC"
    assert record.evidence[0].kind == "SCREENSHOT"
    assert record.recorded_at.utcoffset() is not None


def test_bawaslu_csv_row_with_dotted_columns() -> None:
    flat = {k: v for k, v in BAWASLU.items() if k not in ("terlapor", "bukti")}
    flat |= {f"terlapor.{k}": v for k, v in BAWASLU["terlapor"].items()}
    flat["bukti"] = "https://a.example/1|https://a.example/2"
    flat["terlapor.nip"] = ""  # public reports often lack the NIP: empty cell = unknown
    record = PARSERS[Agency.BAWASLU](flat)
    assert isinstance(record, BawasluReport)
    assert record.accused.nip is None
    assert [e.uri for e in record.evidence] == ["https://a.example/1", "https://a.example/2"]


@pytest.mark.parametrize(("kind", "extra", "body"), [
    ("verifikasi", {"terbukti": "ya", "alasan": "Terbukti dari unggahan."}, Verification),
    ("rekomendasi", {"jenis_hukuman": "disiplin", "tingkat": "sedang", "sanksi": "potong TPP",
                     "ppk": "Wali Kota Bandung"}, Recommendation),
    ("peringatan", {"nomor_surat": "8765/B-KP.03.01/SD/F/2024"}, EscalationNotice),
    ("blokir", {"nomor_surat": "9001/B-KP.03.01/SD/F/2025"}, EscalationNotice),
])
def test_bkn_decisions(kind: str, extra: dict[str, Any], body: type) -> None:
    record = PARSERS[Agency.BKN]({**BKN_BASE, "jenis_keputusan": kind, **extra})
    assert isinstance(record, BknDecision)
    assert isinstance(record.body, body)


def test_ppk_kemendagri_kemenpanrb() -> None:
    sanction = PARSERS[Agency.PPK]({
        "id_idis": "idis-1", "dicatat_pada": "2025-01-10T08:00:00+07:00",
        "pemilihan": "Pilkada 2024", "nomor_register": REG, "nip": NIP,
        "ppk": "Wali Kota Bandung", "kode_instansi": "A5EB03", "tingkat_hukuman": "sedang",
        "jenis_hukuman": "pemotongan tunjangan kinerja", "nomor_sk": "800/Kep.12/2025",
        "tanggal_sk": "2025-01-09"})
    assert isinstance(sanction, SanctionDecision) and sanction.level == "SEDANG"
    mutation = PARSERS[Agency.KEMENDAGRI]({
        "id_usulan": "imut-1", "dicatat_pada": "2024-04-15T11:00:00+07:00",
        "pemilihan": "Pilkada 2024", "nomor_usulan": "IMUT/3205/2024/0412",
        "kode_wilayah": "32.05", "pengusul": {"nama": "Barnas", "jabatan": "bupati", "pj": "ya"},
        "pejabat": {"nama": "Siti Rahmawati", "instansi": "Pemerintah Kabupaten Garut"},
        "jenis_mutasi": "pemberhentian", "jabatan_asal": "Kepala Dinas",
        "jabatan_tujuan": "Staf Ahli", "tanggal_usulan": "2024-04-12"})
    assert isinstance(mutation, MutationRequest)
    assert mutation.requesting_official.acting and mutation.mendagri_approval_ref is None
    policy = PARSERS[Agency.KEMENPANRB]({
        "id_kebijakan": "se-4-2024", "dicatat_pada": "2024-08-30T08:00:00+07:00",
        "pemilihan": "Pilkada 2024", "rezim": "satgas", "berlaku_mulai": "2024-09-01",
        "batas_ppk_hari_kerja": 14, "interval_peringatan_hari_kerja": 5,
        "interval_teguran_hari_kerja": 5, "dasar_hukum": "SE MenPAN-RB No. 4 Tahun 2024"})
    assert isinstance(policy, PolicyUpdate) and policy.regime == "SATGAS_2024"


@pytest.mark.parametrize(("change", "phrase"), [
    ({"kolom_asing": 1}, "unknown field(s) kolom_asing"),
    ({"jenis_pelanggaran": "korupsi"}, "jenis_pelanggaran: 'korupsi' is not one of"),
    ({"dicatat_pada": "2024-11-05T09:12:33"}, "no UTC offset"),
    ({"terlapor": {**BAWASLU["terlapor"], "nip": "19850315201001300"}}, "terlapor.nip"),
    ({"kode_wilayah": "99.99"}, "kode_wilayah"),
])
def test_errors_name_the_agency_field(change: dict[str, Any], phrase: str) -> None:
    with pytest.raises(InvalidMessage, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        PARSERS[Agency.BAWASLU]({**BAWASLU, **change})


def test_bkn_unknown_decision_kind() -> None:
    with pytest.raises(InvalidMessage, match="jenis_keputusan"):
        PARSERS[Agency.BKN]({**BKN_BASE, "jenis_keputusan": "vonis"})
