"""Kemendagri I-MUT: requests to appoint, transfer or dismiss officials in a region.

Native JSON (CSV: dotted column names such as ``pengusul.nama``)::

    {"id_usulan": "imut-2024-7731", "dicatat_pada": "2024-04-15T11:00:00+07:00",
     "pemilihan": "Pilkada 2024", "nomor_usulan": "IMUT/3205/2024/0412", "kode_wilayah": "32.05",
     "pengusul": {"nama": "Barnas Adjidin", "jabatan": "bupati", "pj": "ya"},
     "pejabat": {"nip": null, "nama": "Siti Rahmawati", "instansi": "Pemerintah Kabupaten Garut"},
     "jenis_mutasi": "pemberhentian", "jabatan_asal": "Kepala Dinas Pendidikan",
     "jabatan_tujuan": "Staf Ahli Bupati", "tanggal_usulan": "2024-04-12",
     "nomor_persetujuan_mendagri": null}
"""

from __future__ import annotations

from schemas.models import MutationRequest

from .labels import ELECTION, instant, yes_no
from .mapping import NativeMapping

MAPPING = NativeMapping(
    model=MutationRequest,
    fields={
        "id_usulan": "source_id", "dicatat_pada": "recorded_at", "pemilihan": "election",
        "nomor_usulan": "request_id", "kode_wilayah": "region_code",
        "pengusul.nama": "requesting_official.name", "pengusul.jabatan":
        "requesting_official.role", "pengusul.pj": "requesting_official.acting",
        "pejabat.nip": "official.nip", "pejabat.nama": "official.name",
        "pejabat.instansi": "official.agency_name", "jenis_mutasi": "mutation_kind",
        "jabatan_asal": "from_position", "jabatan_tujuan": "to_position",
        "tanggal_usulan": "requested_date",
        "nomor_persetujuan_mendagri": "mendagri_approval_ref",
    },
    values={
        "pemilihan": ELECTION,
        "pengusul.jabatan": {"gubernur": "GUBERNUR", "bupati": "BUPATI",
                             "walikota": "WALIKOTA", "wali kota": "WALIKOTA",
                             "lainnya": "OTHER"},
        "jenis_mutasi": {"pengangkatan": "APPOINTMENT", "mutasi": "TRANSFER",
                         "pemberhentian": "DISMISSAL", "lainnya": "OTHER"},
    },
    convert={"dicatat_pada": instant, "pengusul.pj": yes_no},
)
to_record = MAPPING.to_record
