"""Indonesia's provinces, regencies and cities by Kemendagri code (``data/regions.csv``).

Reports, cases and alerts carry region codes; routing to a province's Satgas and the early-warning
rules need the province of any code, and a code nobody knows is bad input. The list is the decree's
(``data/REGIONS_SOURCE.md``), shipped as package data and read once per process.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources


class RegionLevel(StrEnum):
    """Level of a region in the Kemendagri code list."""

    PROVINCE = "province"
    REGENCY = "regency"  # kabupaten
    CITY = "city"  # kota


@dataclass(frozen=True, slots=True)
class Region:
    """One province, regency or city."""

    code: str  # "32" for a province, "32.73" for a regency or city
    name: str
    level: RegionLevel
    province_code: str  # the province itself for a province


@lru_cache(maxsize=1)
def regions() -> Mapping[str, Region]:
    """Every region by code, loaded once."""
    text = resources.files("schemas").joinpath("data/regions.csv").read_text(encoding="utf-8")
    table: dict[str, Region] = {}
    for row in csv.DictReader(io.StringIO(text)):
        level = RegionLevel(row["level"])
        code = row["code"]
        province = code if level is RegionLevel.PROVINCE else row["province_code"]
        table[code] = Region(code=code, name=row["name"], level=level, province_code=province)
    return table


def is_known(code: str) -> bool:
    """True for a code in the Kemendagri list (dotted form for regencies and cities)."""
    return code in regions()


def get(code: str) -> Region:
    """The region of ``code``; ``ValueError`` with a hint for an unknown one."""
    try:
        return regions()[code]
    except KeyError:
        hint = ""
        if len(code) == 4 and code.isdigit():
            hint = f" (write regency/city codes in dotted form, e.g. {code[:2]}.{code[2:]})"
        raise ValueError(f"unknown Kemendagri region code {code!r}{hint}") from None


def province_of(code: str) -> str:
    """The 2-digit province code of any known region (a province is its own province)."""
    return get(code).province_code


def name_of(code: str) -> str:
    """The official name of a known region, e.g. ``name_of("32.73") == "Kota Bandung"``."""
    return get(code).name
