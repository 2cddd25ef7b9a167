"""``netral worker``: run the Faust stream worker (all processors) in the foreground."""

from __future__ import annotations

import asyncio

import typer

from streams.config import StreamsConfig

from ..bootstrap import streams_config
from ..kafka_admin import create_topics
from ..logs import configure
from ..settings import NetralSettings, get_settings


def run_worker() -> None:
    """Build the app from the settings and run it until SIGTERM/SIGINT."""
    import faust  # heavy: imported only when a worker runs

    from streams.app import create_app

    settings = get_settings()
    configure(settings.log_level, settings.log_format, settings.log_client_debug)
    cfg = streams_config(settings)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    create_internal_topics(settings, cfg)
    app = create_app(cfg)
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False,
                          redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()


def create_internal_topics(settings: NetralSettings, cfg: StreamsConfig) -> None:
    """The stages' internal topics exist before the worker joins its group (idempotent)."""
    from streams.processors import early_warning

    asyncio.run(create_topics(cfg.kafka, early_warning.internal_topics(cfg.app_id),
                              partitions=cfg.partitions, replication=cfg.replication,
                              min_insync=settings.topic_min_insync))


def worker() -> None:
    """Run the stream worker (normalize and the case processors) until Ctrl-C."""
    try:
        run_worker()
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
