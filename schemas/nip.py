"""The NIP (Nomor Induk Pegawai), the 18-digit civil-servant id, and what it encodes.

Layout: birth date ``YYYYMMDD``, CPNS start ``YYYYMM``, gender digit (1 male, 2 female), a 3-digit
sequence. An invalid NIP is bad input, not a crash: :func:`parse_nip` raises only ``ValueError``,
with one sentence a person can act on. Messages show the NIP masked (it is personal data and ends up
in DLQ headers and logs); the part that is wrong is quoted, since that is what the reader must fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

NIP_LENGTH = 18
MIN_CPNS_AGE = 18
_DIGITS = re.compile(r"[0-9]+")


class Gender(StrEnum):
    """The gender digit of a NIP."""

    MALE = "1"
    FEMALE = "2"


@dataclass(frozen=True, slots=True)
class NipInfo:
    """What a valid NIP says about its holder."""

    birth_date: date
    cpns_start: tuple[int, int]  # (year, month) the person became a CPNS
    gender: Gender
    sequence: int


def mask_nip(nip: str) -> str:
    """``198503152010011001`` -> ``1985***********001``: enough to tell NIPs apart in a log."""
    if len(nip) <= 7:
        return "*" * len(nip)
    return nip[:4] + "*" * (len(nip) - 7) + nip[-3:]


def parse_nip(nip: str, today: date) -> NipInfo:
    """Check a NIP's structure and decode it; ``today`` bounds the CPNS start (no future starts)."""
    if len(nip) != NIP_LENGTH:
        raise ValueError(f"NIP must be {NIP_LENGTH} digits, got {len(nip)} characters")
    if not (nip.isascii() and _DIGITS.fullmatch(nip)):
        bad = next(i for i, c in enumerate(nip) if c not in "0123456789")
        raise ValueError(f"NIP must contain only digits 0-9; character {bad + 1} is not a digit")
    masked = mask_nip(nip)
    try:
        birth = date(int(nip[0:4]), int(nip[4:6]), int(nip[6:8]))
    except ValueError:
        raise ValueError(f"NIP {masked}: birth date {nip[0:8]} is not a real date") from None
    start_year, start_month = int(nip[8:12]), int(nip[12:14])
    if not 1 <= start_month <= 12:
        raise ValueError(f"NIP {masked}: CPNS start month {nip[12:14]} is not a month (01-12)")
    start = (start_year, start_month)
    if start < (birth.year + MIN_CPNS_AGE, birth.month):
        raise ValueError(
            f"NIP {masked}: CPNS start {nip[8:14]} is before the holder turned {MIN_CPNS_AGE} "
            f"(born {nip[0:8]})"
        )
    if start > (today.year, today.month):
        raise ValueError(f"NIP {masked}: CPNS start {nip[8:14]} is in the future")
    if nip[14] not in (Gender.MALE, Gender.FEMALE):
        raise ValueError(f"NIP {masked}: gender digit {nip[14]} must be 1 (male) or 2 (female)")
    return NipInfo(
        birth_date=birth, cpns_start=start, gender=Gender(nip[14]), sequence=int(nip[15:])
    )
