"""``netral audit relay``: publish the API's personal-data access log to ``netral.audit``."""

from __future__ import annotations

import asyncio
import contextlib

import typer
from rich.console import Console

from sinks.sql.engine import create_sql_engine, describe_url
from sinks.sql.migrate import check_schema

from ..audit_relay import AuditRelay
from ..bootstrap import kafka
from ..settings import get_settings

audit_app = typer.Typer(help="The personal-data access log (audit_log and netral.audit).",
                        no_args_is_help=True)
console = Console()


@audit_app.command("relay")
def relay(
    once: bool = typer.Option(False, help="Publish what is queued, then exit."),
    batch_size: int = typer.Option(500, min=1, max=10_000, help="Entries per produce batch."),
) -> None:
    """Publish the access-log entries not yet on netral.audit.

    Keyed by entry id, acks=all, each marked only after the broker acknowledged it. The API does
    this itself every NETRAL_AUDIT_RELAY_S; run this when the API is down, or with
    NETRAL_AUDIT_RELAY_S=0 there (one relay per database).
    """
    settings = get_settings()
    url = settings.resolved_database_url()
    engine = create_sql_engine(url)
    try:
        with engine.connect() as conn:
            check_schema(conn)
        audit = AuditRelay(engine, kafka(settings, "netral-audit-relay"), batch_size=batch_size)

        async def main() -> None:
            await audit.start()
            try:
                await audit.run(once=once, poll_s=max(settings.audit_relay_s, 0.2))
            finally:
                await audit.stop()

        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop after the current batch
            asyncio.run(main())
        left = audit.backlog()
    finally:
        engine.dispose()
    console.print(f"{describe_url(url)}: published {audit.stats.sent} access-log entries "
                  f"({audit.recovered} found already on the topic), {left} waiting")
