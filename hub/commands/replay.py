"""``netral replay --from-beginning``: rebuild the national record from the raw topics.

A stream worker under a new application id (so a new consumer group and fresh tables: a new
cases journal) reads every raw topic from the beginning; its normalize re-emits the same
canonical events (ids come from the raw records) and its cases stage, reading netral.events from
the beginning, drops every copy after the first, so it rebuilds the same record the live worker
holds, and publishes it under the same case ids, versions and transition ids, each output
headed ``netral.writer: <application id>``. The command waits until the new group has no lag on
any of its inputs, then stops the worker (``--follow`` keeps it running as the new live worker).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

import typer

from schemas.errors import RetriableError
from schemas.kafka import KafkaConnection

from ..bootstrap import kafka
from ..kafka_admin import wait_group_stable
from ..lag import read_lag
from ..settings import get_settings
from .up import spawn_hub, stop_process


async def caught_up(conn: KafkaConnection, group: str, timeout_s: float,
                    settle_s: float = 2.0) -> int:
    """Wait until ``group`` has committed every input to its end, twice ``settle_s`` apart;
    returns the records it consumed."""
    deadline = time.monotonic() + timeout_s
    previous: int | None = None
    while time.monotonic() < deadline:
        snapshot = await read_lag(conn, groups=[group])
        lag = sum(p.lag for p in snapshot.partitions)
        consumed = sum(p.committed for p in snapshot.partitions)
        if snapshot.partitions and lag == 0 and consumed == previous:
            return consumed
        previous = consumed if lag == 0 else None
        await asyncio.sleep(settle_s)
    raise RetriableError(f"replay group {group} still behind after {timeout_s:.0f}s")


def replay(
    from_beginning: bool = typer.Option(False, "--from-beginning",
                                        help="Read every raw topic from its first record."),
    app_id: str = typer.Option(None, help="Application id (consumer group, tables) of the "
                               "replay; default <NETRAL_WORKER_APP_ID>-replay-<UTC time>."),
    follow: bool = typer.Option(False, help="Keep the worker running once caught up."),
    timeout_s: float = typer.Option(3600.0, min=1.0, help="Give up after this many seconds."),
) -> None:
    """Rebuild the national record from the raw topics under a new consumer group."""
    if not from_beginning:
        raise typer.BadParameter("say --from-beginning: a replay always starts at the first "
                                 "raw record (a new group with fresh tables)")
    settings = get_settings()
    conn = kafka(settings, "netral-replay")
    name = app_id or f"{settings.worker_app_id}-replay-{datetime.now(UTC):%Y%m%d%H%M%S}"
    log_path = settings.state_dir() / "logs" / f"{name}.log"
    env = dict(os.environ, NETRAL_KAFKA_BOOTSTRAP=conn.bootstrap,
               NETRAL_HOME=str(settings.state_dir()), NETRAL_WORKER_APP_ID=name,
               NETRAL_DEADLINE_SCAN_INTERVAL_S="0")  # recorded ticks replay; no new ones
    started = time.monotonic()
    worker = spawn_hub(["worker"], env, log_path)
    try:
        asyncio.run(wait_group_stable(conn, name, timeout_s=min(timeout_s, 300)))
        consumed = asyncio.run(caught_up(conn, name, timeout_s))
        typer.echo(f"replay {name}: caught up in {time.monotonic() - started:.1f}s, "
                   f"{consumed} input records consumed (log: {log_path})")
        while follow and worker.poll() is None:
            time.sleep(0.5)
    finally:
        if not follow:
            stop_process(worker)

