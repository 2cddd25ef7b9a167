"""``netral lag``: committed offset, end offset and lag per consumer group, topic and partition."""

from __future__ import annotations

import asyncio
import time

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from ..bootstrap import kafka
from ..lag import LagSnapshot, Progress, progress, read_lag
from ..settings import get_settings

console = Console()


def _behind(p: Progress | None) -> str:
    if p is None:
        return "-"
    return "stalled" if p.behind_s is None else f"{p.behind_s:.0f}s"


def render(snapshot: LagSnapshot, before: LagSnapshot | None = None) -> Group:
    """The lag table; with an earlier snapshot (``--watch``) also consume rate and time behind."""
    moves = progress(before, snapshot) if before is not None else {}
    table = Table(title=f"consumer lag at {snapshot.at:%Y-%m-%d %H:%M:%S} UTC")
    columns = ["group", "topic", "partition", "committed", "end offset", "lag"]
    if before is not None:
        columns += ["msg/s", "behind"]
    for name in columns:
        table.add_column(name, justify="right" if name not in ("group", "topic") else "left")
    for p in snapshot.partitions:
        row = [p.group, p.topic, str(p.partition), str(p.committed), str(p.end), str(p.lag)]
        if before is not None:
            move = moves.get((p.group, p.topic, p.partition))
            row += [f"{move.rate:.1f}" if move else "-", _behind(move)]
        table.add_row(*row)
    totals = Table(title="total lag per group")
    totals.add_column("group")
    totals.add_column("lag", justify="right")
    for group, lag in snapshot.by_group().items():
        totals.add_row(group, str(lag))
    return Group(table, totals)


def lag(
    group: list[str] | None = typer.Option(None, "--group", "-g",
                                           help="Only this group (repeatable); default: all."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until Ctrl-C."),
    interval: float = typer.Option(2.0, min=0.2, help="Seconds between refreshes with --watch."),
) -> None:
    """Print consumer-group lag; exits non-zero with one line if the broker does not answer."""
    settings = get_settings()
    conn = kafka(settings, "netral-lag")
    groups = list(group) if group else None

    def read() -> LagSnapshot:
        return asyncio.run(read_lag(conn, groups=groups, timeout_s=settings.lag_timeout_s))

    if not watch:
        console.print(render(read()))
        return
    previous = read()
    with Live(render(previous), console=console, refresh_per_second=4) as live:
        try:
            while True:
                time.sleep(interval)
                current = read()
                live.update(render(current, previous))
                previous = current
        except KeyboardInterrupt:
            pass
