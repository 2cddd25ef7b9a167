"""PPK sanction decisions as exported from BKN's I'DIS (one object or CSV row each).

Native JSON::

    {"id_idis": "idis-331200", "dicatat_pada": "2025-01-10T08:00:00+07:00",
     "pemilihan": "Pilkada 2024", "nomor_register": "012/Reg/LP/PW/Kota/13.04/XI/2024",
     "nip": "198503152010011001", "ppk": "Wali Kota Bandung",
     "kode_instansi": "A5EB03E23CFDF6A0E040640A040252AD", "tingkat_hukuman": "sedang",
     "jenis_hukuman": "pemotongan tunjangan kinerja 25% selama 6 bulan",
     "nomor_sk": "800.1.6.3/Kep.12-BKPSDM/2025", "tanggal_sk": "2025-01-09"}
"""

from __future__ import annotations

from schemas.models import SanctionDecision

from .labels import ELECTION, LEVEL, instant
from .mapping import NativeMapping

MAPPING = NativeMapping(
    model=SanctionDecision,
    fields={
        "id_idis": "source_id", "dicatat_pada": "recorded_at", "pemilihan": "election",
        "nomor_register": "case_ref", "nip": "nip", "ppk": "ppk_name",
        "kode_instansi": "agency_code", "tingkat_hukuman": "level", "jenis_hukuman": "sanction",
        "nomor_sk": "decree_number", "tanggal_sk": "decided_on",
    },
    values={"pemilihan": ELECTION, "tingkat_hukuman": LEVEL},
    convert={"dicatat_pada": instant},
)
to_record = MAPPING.to_record
