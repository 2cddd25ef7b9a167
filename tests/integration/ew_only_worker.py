"""``python -m tests.integration.ew_only_worker``: the hub's worker app with only the
early-warning agents, for tests that restart a worker of their own. The other stages stay in the
session's worker, so this one adds no second normalize or cases output on the shared topics."""

from __future__ import annotations

import faust

from hub.bootstrap import streams_config
from hub.commands.worker import create_internal_topics
from hub.logs import configure
from hub.settings import get_settings
from streams.app import create_app


def main() -> None:
    settings = get_settings()
    configure(settings.log_level, settings.log_format)
    cfg = streams_config(settings)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    create_internal_topics(settings, cfg)
    app = create_app(cfg)
    for name in [n for n in app.agents if not n.startswith("early-warning")]:
        del app.agents[name]
    faust.Worker(app, loglevel="INFO", override_logging=False, redirect_stdouts=False,
                 quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
