"""Burst control (pure): past N alerts for one recipient within a window, the rest wait for one
digest at the window's end.

Windows are tumbling and per recipient: the first alert opens a window of ``window`` length; the
first ``threshold`` alerts in it go out at once, later ones join the digest due at the window's
end. The clock is passed in, so the rule is tested without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class _Window:
    start: datetime
    count: int = 0


@dataclass
class Throttle:
    """Per-recipient tumbling windows; ``admit`` says send now (None) or when the digest is due."""

    threshold: int
    window: timedelta
    _windows: dict[str, _Window] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.window <= timedelta(0):
            raise ValueError("digest threshold must be >= 1 and the window positive")

    def admit(self, recipient_id: str, now: datetime) -> datetime | None:
        """Count one alert for ``recipient_id``: None to send it now, else its digest's due time."""
        current = self._windows.get(recipient_id)
        if current is None or now >= current.start + self.window:
            current = self._windows[recipient_id] = _Window(start=now)
        current.count += 1
        if current.count <= self.threshold:
            return None
        return current.start + self.window
