"""``netral siasn-adapter``: apply blocking orders to SIASN until Ctrl-C / SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import typer

from schemas.topics import ALERTS, ORDERS_SIASN, ORDERS_SIASN_RESULTS, DlqStage, dlq_topic
from sinks.siasn.client import HttpSiasnClient
from sinks.siasn.runner import AdapterTopics, run_adapter

from ..bootstrap import codec, kafka, siasn_config, siasn_runner_options
from ..logs import configure
from ..settings import get_settings


def siasn_adapter(
    orders_topic: str = typer.Option(ORDERS_SIASN, help="Orders to apply."),
    results_topic: str = typer.Option(ORDERS_SIASN_RESULTS, help="Where outcomes go."),
    dlq: str = typer.Option(dlq_topic(DlqStage.SIASN), help="Where failed orders go."),
    alerts_topic: str = typer.Option(ALERTS, help="Where failure alerts go."),
) -> None:
    """Apply SIASN block/unblock orders, recording each outcome with its offset (exactly once).

    Where SIASN is, the credentials and the retry policy come from ``NETRAL_SIASN_*``.
    """
    settings = get_settings()
    configure(settings.log_level, settings.log_format)
    client_config = siasn_config(settings)
    options = siasn_runner_options(settings, AdapterTopics(
        orders=orders_topic, results=results_topic, dlq=dlq, alerts=alerts_topic))
    conn = kafka(settings, "netral-siasn-adapter")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with HttpSiasnClient(client_config) as client:
            stats = await run_adapter(conn, client, codec(settings), settings.siasn_group_id,
                                      stop, options=options)
        typer.echo(f"siasn-adapter: {stats.orders} orders, {stats.confirmed} confirmed, "
                   f"{stats.already_in_effect} already in effect, {stats.failed} failed, "
                   f"{stats.dead_letters} dead letters")

    asyncio.run(main())
