"""IKP (Indeks Kerawanan Pemilu): Bawaslu's vulnerability score per region, loaded from a CSV.

The shipped file and its source are ``streams/rules/data/ikp.csv`` and ``IKP_SOURCE.md``. A
regency without its own score takes its province's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from schemas import regions
from schemas.errors import ConfigError

IKP_PACKAGE = "streams.rules.data"
IKP_RESOURCE = "ikp.csv"
_COLUMNS = ("region_code", "region_name", "score", "basis")
_BASES = frozenset({"published", "illustrative"})


@dataclass(frozen=True, slots=True)
class IkpScore:
    region_code: str
    score: float
    basis: str  # "published" or "illustrative"


@dataclass(frozen=True, slots=True)
class IkpTable:
    """Scores by Kemendagri region code (province or regency)."""

    scores: Mapping[str, IkpScore]

    def score_of(self, region_code: str) -> IkpScore | None:
        """The region's own score, else its province's, else None (not scored)."""
        own = self.scores.get(region_code)
        if own is not None:
            return own
        return self.scores.get(regions.province_of(region_code))


def parse_ikp(text: str, where: str) -> IkpTable:
    """Parse an IKP CSV; any bad row is a ConfigError naming the file and the line."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != _COLUMNS:
        raise ConfigError(f"{where}: header must be {','.join(_COLUMNS)}, "
                          f"got {','.join(reader.fieldnames or ())}")
    scores: dict[str, IkpScore] = {}
    for line, row in enumerate(reader, start=2):
        code = row["region_code"].strip()
        if not regions.is_known(code):
            raise ConfigError(f"{where}:{line}: unknown region code {code!r}")
        try:
            score = float(row["score"])
        except ValueError:
            raise ConfigError(f"{where}:{line}: score {row['score']!r} is not a number") from None
        if not 0 <= score <= 100:
            raise ConfigError(f"{where}:{line}: score {score} is outside 0-100")
        if row["basis"] not in _BASES:
            raise ConfigError(f"{where}:{line}: basis must be one of {sorted(_BASES)}")
        if code in scores:
            raise ConfigError(f"{where}:{line}: region {code} appears twice")
        scores[code] = IkpScore(code, score, row["basis"])
    return IkpTable(MappingProxyType(scores))


def load_ikp(path: Path | None = None) -> IkpTable:
    """The IKP table from ``path``, or the shipped one."""
    if path is None:
        text = resources.files(IKP_PACKAGE).joinpath(IKP_RESOURCE).read_text("utf-8")
        return parse_ikp(text, f"{IKP_PACKAGE}/{IKP_RESOURCE}")
    try:
        return parse_ikp(path.read_text("utf-8"), str(path))
    except OSError as err:
        raise ConfigError(f"NETRAL_EW_IKP_FILE={path}: cannot read it ({err.strerror})") from None
