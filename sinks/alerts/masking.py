"""Masking personal data for recipients outside the national Satgas (pure functions).

A NIP keeps its first 4 and last 3 digits (``1985***********001``: enough to tell two apart,
not enough to identify anyone); a person's name becomes its initials (``Budi Santoso`` ->
``B. S.``). Free text (title, detail) is masked too: any 18-digit run is masked as a NIP, and the
known names of the person the alert is about (from the national record) are replaced by initials,
whole name first, then each name part of three letters or more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from schemas.models.hub import Alert
from schemas.nip import mask_nip

__all__ = ["AlertFields", "AlertView", "mask_name", "mask_nip", "mask_text", "view_of"]

_NIP_RUN = re.compile(r"(?<!\d)\d{18}(?!\d)")
_MIN_PART = 3


def mask_name(name: str) -> str:
    """Initials of each name part, ``"Dr. Siti Nurhaliza"`` -> ``"D. S. N."``."""
    parts = [p for p in re.split(r"[\s.,]+", name) if p]
    return " ".join(f"{p[0].upper()}." for p in parts) or "*"


def mask_text(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with every NIP masked and the given ``names`` reduced to initials."""
    out = _NIP_RUN.sub(lambda m: mask_nip(m.group(0)), text)
    known = sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True)
    for name in known:
        out = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", mask_name(name), out, flags=re.I)
    parts = sorted({p for n in known for p in re.split(r"[\s.,]+", n) if len(p) >= _MIN_PART},
                   key=len, reverse=True)
    for part in parts:
        out = re.sub(rf"(?<!\w){re.escape(part)}(?!\w)", f"{part[0].upper()}.", out, flags=re.I)
    return out


class AlertFields(BaseModel):
    """The fields of an alert a person is shown (``hub.api.models.AlertOut`` reuses them)."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    rule: str
    severity: str
    region_code: str
    province_code: str
    case_id: str | None
    nip: str | None
    agency_name: str | None
    title: str
    detail: str
    at: datetime


class AlertView(AlertFields):
    """What one recipient is shown of an alert: the alert's fields, masked or not."""

    masked: bool

    def to_json(self) -> dict[str, object]:
        """The view as channels send it and the digest queue keeps it (``at`` in ISO 8601)."""
        return {**self.model_dump(), "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> AlertView:
        return cls.model_validate(data)


def view_of(alert: Alert, *, masked: bool, names: Iterable[str] = ()) -> AlertView:
    """The recipient's view of ``alert``: in clear for the national Satgas, else masked."""
    names = tuple(names)

    def text(value: str) -> str:
        return mask_text(value, names) if masked else value

    nip = alert.nip
    return AlertView(
        alert_id=alert.alert_id, rule=alert.rule, severity=alert.severity.value,
        region_code=alert.region_code, province_code=alert.province_code,
        case_id=alert.case_id, nip=mask_nip(nip) if masked and nip else nip,
        agency_name=alert.agency_name, title=text(alert.title), detail=text(alert.detail),
        at=alert.at, masked=masked,
    )
