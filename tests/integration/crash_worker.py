"""``python -m tests.integration.crash_worker TOPIC``: the hub's own worker app
(:func:`streams.app.create_app` from the ``NETRAL_*`` settings) with one more agent, on TOPIC,
that raises on a message saying ``boom``: a bug in an agent, as the cases stage crashed on a
missing setting. The test expects the whole worker to stop with an error, not to run on with
that stage dead."""

from __future__ import annotations

import sys

import faust

from hub.bootstrap import streams_config
from hub.logs import configure
from hub.settings import get_settings
from streams.app import create_app


def main() -> None:
    settings = get_settings()
    configure("INFO", "console")
    cfg = streams_config(settings)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(cfg)
    source = app.topic(sys.argv[1], value_serializer="raw", partitions=1)

    @app.agent(source)
    async def buggy(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            if value == b"boom":
                raise RuntimeError("a bug in an agent")

    faust.Worker(app, loglevel="INFO", override_logging=False, redirect_stdouts=False,
                 quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
