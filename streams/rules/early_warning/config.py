"""The early-warning thresholds: configuration, never constants in the rules.

Built by the shell from ``NETRAL_EW_*`` (``hub/settings.py``) and handed to the processor, like
:class:`streams.config.StreamsConfig`; the rules only read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.models import Election, Position


class Pasal71Window(BaseModel):
    """UU 10/2016 Pasal 71(2): from six months before candidate determination until the end of
    the term, a regional head may not replace officials without the Minister's written approval.

    ``end`` None: open until the term ends (the hub does not know each head's term).
    """

    model_config = ConfigDict(frozen=True)

    start: date
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Pasal71Window:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"Pasal 71 window ends ({self.end}) before it starts ({self.start})")
        return self

    def contains(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


#: Pilkada 2024: candidates were determined on 22 September 2024, so the window opened on
#: 22 March 2024 (domain.md, I-MUT).
def default_pasal71() -> dict[Election, Pasal71Window]:
    return {Election.PILKADA_2024: Pasal71Window(start=date(2024, 3, 22))}


class EarlyWarningConfig(BaseModel):
    """Every threshold of the six early-warning rules (README, "Early warning")."""

    model_config = ConfigDict(frozen=True)

    spike_window_days: Annotated[int, Field(ge=1, le=31)] = 1
    """Length of one tumbling window of report counts, in calendar days (WIB)."""
    spike_baseline_windows: Annotated[int, Field(ge=1, le=90)] = 7
    """K: the baseline is the mean count of the K windows before the current one."""
    spike_min_count: Annotated[int, Field(ge=1)] = 5
    """Never a spike below this many reports in one window, however quiet the baseline."""
    spike_factor: Annotated[float, Field(gt=0)] = 3.0
    """A spike is at least this many times the baseline."""
    repeat_min_cases: Annotated[int, Field(ge=2)] = 2
    """A NIP in at least this many distinct cases is a repeat offender."""
    senior_positions: tuple[Position, ...] = (Position.JPT, Position.PJ_KEPALA_DAERAH)
    """Positions whose involvement in a case is itself a signal."""
    deadline_risk_working_days: Annotated[int, Field(ge=0, le=30)] = 3
    """Warn when the next escalation step is due within this many working days."""
    pasal71_windows: Mapping[Election, Pasal71Window] = Field(default_factory=default_pasal71)
    """The Pasal 71 window per election (an election without one raises no I-MUT alert)."""
    ikp_high: Annotated[float, Field(ge=0, le=100)] = 66.0
    """IKP score from which a region counts as high vulnerability (domain.md: 66-100)."""
    ikp_file: Path | None = None
    """IKP scores per region; None: the shipped ``streams/rules/data/ikp.csv``."""
    deadline_scan_s: Annotated[float, Field(gt=0)] = 300.0
    """How often the processor re-checks open deadlines (days pass without new records)."""
