"""``netral sql-sink``: fill the national record (SQL) from the hub's topics until Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from schemas.topics import DlqStage, dlq_topic
from sinks.sql import migrate
from sinks.sql.engine import create_sql_engine, describe_url
from sinks.sql.runner import SqlRunnerConfig, SqlSinkRunner
from sinks.sql.sink import SqlSink

from ..bootstrap import codec, kafka
from ..settings import get_settings

log = logging.getLogger(__name__)


def sql_sink(
    group: str = typer.Option("netral-sql-sink", help="Kafka consumer group."),
    batch_size: int = typer.Option(1000, min=1, max=100_000,
                                   help="Records per fetch and per database transaction."),
    migrate_first: bool = typer.Option(
        False, "--migrate/--no-migrate",
        help="Run `netral db upgrade` first (handy locally; in production migrate as a step)."),
) -> None:
    """Write cases, transitions, SIASN orders and results, and alerts into the SQL record."""
    settings = get_settings()
    url = settings.resolved_database_url()
    if migrate_first:
        migrate.upgrade(url)
    engine = create_sql_engine(url)
    runner = SqlSinkRunner(
        SqlSink(engine), codec(settings),
        SqlRunnerConfig(kafka=kafka(settings, client_id=group), group_id=group,
                        batch_size=batch_size),
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runner.request_stop)
        await runner.start()
        log.info("sql-sink: group %s writing to %s", group, describe_url(url))
        try:
            await runner.run()
        finally:
            await runner.stop()

    try:
        asyncio.run(main())
    finally:
        engine.dispose()
    stats = runner.stats
    typer.echo(f"sql-sink: {stats.records} records in {stats.batches} batches, "
               f"{stats.dead_lettered} to {dlq_topic(DlqStage.SQL)}, rows changed {stats.written}")
