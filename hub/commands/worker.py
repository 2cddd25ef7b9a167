"""``netral worker``: run the Faust stream worker (all processors) in the foreground."""

from __future__ import annotations

import typer

from ..bootstrap import streams_config
from ..logs import configure
from ..settings import get_settings


def run_worker() -> None:
    """Build the app from the settings and run it until SIGTERM/SIGINT."""
    import faust  # heavy: imported only when a worker runs

    from streams.app import create_app

    settings = get_settings()
    configure(settings.log_level, settings.log_format, settings.log_client_debug)
    cfg = streams_config(settings)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(cfg)
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False,
                          redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()


def worker() -> None:
    """Run the stream worker (normalize and the case processors) until Ctrl-C."""
    try:
        run_worker()
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
