"""Consume rate and time behind between two lag snapshots (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.lag import LagSnapshot, LagWatch, PartitionLag, progress, watch

pytestmark = pytest.mark.unit
T0 = datetime(2024, 11, 27, tzinfo=UTC)


def test_rate_and_time_behind() -> None:
    before = LagSnapshot(at=T0, partitions=[
        PartitionLag("g", "t", 0, committed=100, end=1000),
        PartitionLag("g", "t", 1, committed=50, end=50),
        PartitionLag("g", "t", 2, committed=10, end=20)])
    after = LagSnapshot(at=T0 + timedelta(seconds=10), partitions=[
        PartitionLag("g", "t", 0, committed=300, end=1100),
        PartitionLag("g", "t", 1, committed=50, end=50),
        PartitionLag("g", "t", 2, committed=10, end=30),
        PartitionLag("g", "t", 3, committed=0, end=5)])
    moves = progress(before, after)
    assert moves[("g", "t", 0)].rate == 20.0
    assert moves[("g", "t", 0)].behind_s == 40.0  # 800 behind at 20/s
    assert moves[("g", "t", 1)].behind_s == 0.0  # caught up
    assert moves[("g", "t", 2)].rate == 0 and moves[("g", "t", 2)].behind_s is None  # stalled
    assert ("g", "t", 3) not in moves  # new partition: no earlier position


def test_watch_table_shows_rate_and_time_behind() -> None:
    from rich.console import Console

    from hub.commands.lag import render

    before = LagSnapshot(at=T0, partitions=[PartitionLag("g", "t", 0, 100, 1000)])
    after = LagSnapshot(at=T0 + timedelta(seconds=10),
                        partitions=[PartitionLag("g", "t", 0, 300, 1100)])
    console = Console(width=200, record=True)
    console.print(render(after, before))
    text = console.export_text()
    assert "msg/s" in text and "behind" in text
    row = next(line for line in text.splitlines() if "300" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells == ["g", "t", "0", "300", "1100", "800", "20.0", "40s"]
    plain = Console(width=200, record=True)
    plain.print(render(after))
    assert "msg/s" not in plain.export_text()


def snap(seconds: float, lag: int, group: str = "g") -> LagSnapshot:
    return LagSnapshot(at=T0 + timedelta(seconds=seconds),
                       partitions=[PartitionLag(group, "t", 0, committed=0, end=lag)])


def test_lag_alerts_once_per_episode_after_the_set_time() -> None:
    state = LagWatch(threshold=100, after_s=60)
    fired = []
    for t, lag in [(0, 50), (10, 150), (40, 900), (69, 500), (70, 500), (100, 800), (130, 20),
                   (140, 200), (199, 300), (200, 300)]:
        state, due = watch(state, snap(t, lag))
        fired += [(t, e.group, e.lag, (e.since - T0).total_seconds()) for e in due]
    # over 100 from t=10; 60 s later (t=70) one alert; back under at 130; over again from 140,
    # alert at 200; never twice in one episode
    assert fired == [(70, "g", 500, 10.0), (200, "g", 300, 140.0)]


def test_lag_at_the_threshold_is_not_behind() -> None:
    state, due = watch(LagWatch(threshold=100, after_s=0), snap(0, 100))
    assert due == [] and state.since == {}
    _, due = watch(state, snap(1, 101))
    assert [e.group for e in due] == ["g"]
