"""Which module maps which agency's native export (used by HTTP ingest and file import)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.models.raw import RawRecord
from schemas.topics import Agency

from . import bawaslu, bkn, kemendagri, kemenpanrb, ppk

NativeParser = Callable[[Mapping[str, Any]], RawRecord]

PARSERS: dict[Agency, NativeParser] = {
    Agency.BAWASLU: bawaslu.to_record,
    Agency.BKN: bkn.to_record,
    Agency.PPK: ppk.to_record,
    Agency.KEMENDAGRI: kemendagri.to_record,
    Agency.KEMENPANRB: kemenpanrb.to_record,
}
