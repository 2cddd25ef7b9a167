"""``netral connector``: run an agency's outbox relay against its own database."""

from __future__ import annotations

import asyncio
import contextlib

import typer
from rich.console import Console
from sqlalchemy.exc import ArgumentError, OperationalError

from connectors.outbox import OutboxRelay, agency_engine
from schemas.errors import ConfigError
from schemas.topics import Agency

from ..bootstrap import kafka
from ..settings import get_settings

connector_app = typer.Typer(help="Agency connectors: relay an agency's outbox to the hub.",
                            no_args_is_help=True)
console = Console()


@connector_app.command("run")
def run(
    agency: Agency = typer.Option(..., help="Whose outbox this is (names the raw topic)."),
    database: str = typer.Option(..., help="SQLAlchemy URL of the agency's database."),
    once: bool = typer.Option(False, help="Drain what is queued, then exit."),
    batch_size: int = typer.Option(500, min=1, max=10_000, help="Rows per produce batch."),
) -> None:
    """Relay unsent outbox rows to netral.raw.<agency>, marking each sent after acks=all."""
    try:
        engine = agency_engine(database)
    except (ArgumentError, OperationalError) as err:
        raise ConfigError(f"--database {database!r} is not usable: {err}") from None
    relay = OutboxRelay(engine, kafka(get_settings(), f"netral-connector-{agency.value}"),
                        batch_size=batch_size)

    async def main() -> None:
        await relay.start()
        try:
            await relay.run(once=once)
        finally:
            await relay.stop()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop after the current batch
        asyncio.run(main())
    console.print(f"{agency.value}: sent {relay.stats.sent} outbox rows "
                  f"in {relay.stats.batches} batches")
