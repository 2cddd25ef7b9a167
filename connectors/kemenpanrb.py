"""KemenPAN-RB: case-handling policy for an election (deadlines and escalation intervals).

Native JSON::

    {"id_kebijakan": "se-menpanrb-4-2024", "dicatat_pada": "2024-08-30T08:00:00+07:00",
     "pemilihan": "Pilkada 2024", "rezim": "satgas", "berlaku_mulai": "2024-09-01",
     "batas_ppk_hari_kerja": 14, "interval_peringatan_hari_kerja": 5,
     "interval_teguran_hari_kerja": 5, "dasar_hukum": "SE MenPAN-RB No. 4 Tahun 2024"}
"""

from __future__ import annotations

from schemas.models import PolicyUpdate

from .labels import ELECTION, instant
from .mapping import NativeMapping

MAPPING = NativeMapping(
    model=PolicyUpdate,
    fields={
        "id_kebijakan": "source_id", "dicatat_pada": "recorded_at", "pemilihan": "election",
        "rezim": "regime", "berlaku_mulai": "effective_date",
        "batas_ppk_hari_kerja": "ppk_deadline_working_days",
        "interval_peringatan_hari_kerja": "warning_interval_working_days",
        "interval_teguran_hari_kerja": "reprimand_interval_working_days",
        "dasar_hukum": "decree_ref",
    },
    values={"pemilihan": ELECTION, "rezim": {"kasn": "KASN_2024", "satgas": "SATGAS_2024"}},
    convert={"dicatat_pada": instant},
)
to_record = MAPPING.to_record
