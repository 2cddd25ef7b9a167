"""``netral import``: a CSV or XLSX export -> the agency's outbox -> the hub."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from connectors.file_import import import_file, read_rows, write_rejects
from connectors.outbox import OutboxRelay, agency_engine
from schemas.codec import AvroCodec
from schemas.topics import Agency

from ..bootstrap import kafka
from ..settings import get_settings

console = Console()


def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="A .csv or .xlsx export with a header row."),
    agency: Agency = typer.Option(..., help="Whose export this is."),
    database: str | None = typer.Option(None, help="Outbox database (default: the agency's "
                                        "local outbox in the state folder)."),
    rejects: Path | None = typer.Option(None, help="Where to write rejected rows (CSV; default "
                                        "<file>.rejects.csv when there are any)."),
    send: bool = typer.Option(True, help="Relay the queued rows to Kafka right away."),
) -> None:
    """Validate each row, queue new ones, send them, and report accepted/rejected/duplicates."""
    settings = get_settings()
    url = database or f"sqlite:///{settings.state_dir() / 'connectors' / f'{agency.value}.db'}"
    if database is None:
        (settings.state_dir() / "connectors").mkdir(parents=True, exist_ok=True)
    engine = agency_engine(url)
    total = sum(1 for _ in read_rows(file))
    with Progress(console=console) as progress:
        task = progress.add_task(f"validating {file.name}", total=total)
        report = import_file(file, agency, engine, AvroCodec(),
                             progress=lambda n: progress.advance(task, n))
    sent = 0
    if send and report.accepted:
        relay = OutboxRelay(engine, kafka(settings, f"netral-import-{agency.value}"))

        async def drain() -> int:
            await relay.start()
            try:
                return (await relay.run(once=True)).sent
            finally:
                await relay.stop()

        sent = asyncio.run(drain())
    console.print(f"{file.name}: {report.rows} rows, [green]{report.accepted} accepted[/], "
                  f"[red]{len(report.rejected)} rejected[/], {report.duplicates} duplicates "
                  f"(already imported); {sent} sent to netral.raw.{agency.value}")
    if report.rejected:
        out = rejects or file.with_suffix(file.suffix + ".rejects.csv")
        write_rejects(out, report)
        console.print(f"rejected rows with reasons: {out}")
