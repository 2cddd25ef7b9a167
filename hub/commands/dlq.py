"""``netral dlq``: see what each stage rejected and why, and replay what has been fixed."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from schemas.errors import ConfigError
from schemas.topics import DlqStage

from .. import dlq
from ..bootstrap import kafka
from ..settings import get_settings

dlq_app = typer.Typer(help="Dead-letter queues: what each stage rejected, why, and replay.",
                      no_args_is_help=True)
console = Console()


def _stage_check(stage: str) -> dlq.Check | None:
    """The stage's own validation, so replay re-sends only what would now pass."""
    if stage == DlqStage.NORMALIZE.value:
        from schemas.codec import AvroCodec
        from streams.rules.normalize import normalize_record

        codec = AvroCodec()

        def check(topic: str, key: bytes | None, value: bytes) -> None:
            normalize_record(topic, key, codec.decode(value))

        return check
    return None


@dlq_app.command("list")
def list_(
    stage: DlqStage | None = typer.Option(None, help="Only this stage."),
    limit: int = typer.Option(50, min=1, help="Show at most this many (newest last)."),
) -> None:
    """List dead letters with their reason, and the count per stage."""
    stages = [stage.value] if stage else [s.value for s in DlqStage]
    letters = asyncio.run(dlq.list_letters(kafka(get_settings(), "netral-dlq"), stages))
    letters.sort(key=lambda x: x.why.failed_at)
    table = Table("id", "failed at", "source", "error", "reason")
    for letter in letters[-limit:]:
        w = letter.why
        table.add_row(letter.id, f"{w.failed_at:%Y-%m-%d %H:%M:%S}",
                      f"{w.source_topic}[{w.source_partition}]@{w.source_offset}",
                      w.error_class, w.reason[:120])
    console.print(table)
    counts = Counter(x.id.split(":")[0] for x in letters)
    console.print("counts: " + (", ".join(f"{s}={n}" for s, n in sorted(counts.items()))
                                or "no dead letters"))


@dlq_app.command("show")
def show(letter_id: str = typer.Argument(..., metavar="ID", help="stage:partition:offset")) -> None:
    """Show one dead letter: reason, origin, headers, key and the first bytes of the value."""
    letter = asyncio.run(dlq.get_letter(kafka(get_settings(), "netral-dlq"), letter_id))
    w = letter.why
    console.print(f"[bold]{letter.id}[/]  {w.error_class}: {w.reason}")
    console.print(f"from {w.source_topic}[{w.source_partition}]@{w.source_offset}, "
                  f"stage {w.stage}, failed at {w.failed_at.isoformat()}")
    console.print(f"key: {letter.key!r}")
    for k, v in letter.headers:
        console.print(f"header {k}: {v[:200].decode(errors='replace')}")
    console.print(f"value: {len(letter.value)} bytes, starts {letter.value[:48].hex(' ')}")


@dlq_app.command("replay")
def replay(
    stage: DlqStage = typer.Option(..., help="Which stage's dead letters to replay."),
    since: str | None = typer.Option(None, help="Only letters that failed at or after this "
                                     "ISO time, e.g. 2024-11-27T00:00:00+07:00."),
) -> None:
    """Re-send fixed dead letters to their source topic, each at most once (idempotent)."""
    since_dt = None
    if since:
        try:
            since_dt = datetime.fromisoformat(since)
        except ValueError:
            raise ConfigError(f"--since {since!r} is not an ISO date-time") from None
        if since_dt.tzinfo is None:
            raise ConfigError(f"--since {since!r} needs a UTC offset, e.g. +07:00")
    report = asyncio.run(dlq.replay(kafka(get_settings(), "netral-dlq"), stage.value,
                                    since=since_dt, check=_stage_check(stage.value)))
    for letter_id, reason in (report.failures or [])[:20]:
        console.print(f"[yellow]still failing[/] {letter_id}: {reason[:160]}")
    console.print(f"replayed {report.replayed}, still failing {report.still_failing}, "
                  f"older than --since {report.skipped_older}")
