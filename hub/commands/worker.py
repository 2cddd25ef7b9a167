"""``netral worker``: run the Faust stream worker (all processors) in the foreground.

A stop is bounded: after SIGTERM (or SIGINT) Faust stops its services gracefully, but with its
brokers gone that can take minutes (each client's stop waits on requests that never return, and
the interpreter then waits on the consumer's thread). A watchdog armed by the signal ends the
process after ``NETRAL_WORKER_STOP_TIMEOUT_S`` with :data:`FORCED_STOP_EXIT` and one log line,
so supervisors, tests and benches never have to SIGKILL an orphan. Nothing is lost by it: the
worker commits only what it has published, and the next start resumes from there.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading

import typer

from streams.config import StreamsConfig

from ..bootstrap import streams_config
from ..kafka_admin import create_topics
from ..logs import configure
from ..settings import get_settings
from .topics import topic_replication

#: Exit code of a stop that did not finish within the bound (as timeout(1) uses it).
FORCED_STOP_EXIT = 124
log = logging.getLogger("hub.worker")


class StopWatchdog:
    """Ends the process ``timeout_s`` after :meth:`arm` unless it has exited by then."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._timer: threading.Timer | None = None

    def arm(self, signame: str) -> None:
        """Start the countdown (once: a second signal does not extend it)."""
        if self._timer is not None:
            return
        self._timer = threading.Timer(self.timeout_s, self._force, args=(signame,))
        self._timer.daemon = True  # runs even while the interpreter waits on other threads
        self._timer.start()

    def _force(self, signame: str) -> None:
        log.error("worker: graceful stop after %s did not finish within %g s "
                  "(NETRAL_WORKER_STOP_TIMEOUT_S; brokers unreachable?): stop forced, exit %d",
                  signame, self.timeout_s, FORCED_STOP_EXIT)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(FORCED_STOP_EXIT)  # skips the thread joins that never return


def run_worker() -> None:
    """Build the app from the settings and run it until SIGTERM/SIGINT."""
    import faust  # heavy: imported only when a worker runs
    from prometheus_client import start_http_server

    from streams.app import create_app
    from streams.metrics import StreamMetrics

    settings = get_settings()
    configure(settings.log_level, settings.log_format, settings.log_client_debug)
    cfg = streams_config(settings)
    replication, min_insync = asyncio.run(topic_replication(
        settings, cfg.kafka, "create the worker's internal topics"))
    cfg = cfg.model_copy(update={"replication": replication})
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    create_internal_topics(cfg, min_insync)
    metrics = StreamMetrics()
    app = create_app(cfg, metrics=metrics)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host,
                          registry=metrics.registry)
    tune_gc(settings.worker_gc_threshold)
    watchdog = StopWatchdog(settings.worker_stop_timeout_s)

    class Worker(faust.Worker):
        """Faust's worker, with the stop watchdog armed by SIGTERM/SIGINT.

        asyncio dispatches a signal to Faust's handler through its wakeup fd, i.e. only when
        the event loop gets to run; the Python-level handler set here runs as soon as the main
        thread executes bytecode, so the watchdog is armed even while a long batch (or a
        thread join at exit) holds the loop. The wakeup fd still carries the signal to Faust.
        """

        def install_signal_handlers(self) -> None:
            super().install_signal_handlers()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda signum, _frame: watchdog.arm(
                    signal.Signals(signum).name))

    worker = Worker(app, loglevel=settings.log_level, override_logging=False,
                    redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()


def tune_gc(threshold: int) -> None:
    """Fewer cyclic-GC passes for a worker whose state is a large, long-lived object graph.

    Reference counting frees almost everything the rules allocate; the cyclic collector only
    has to find cycles, but at Python's default threshold (700 allocations) it runs every few
    events and each pass walks the young objects (measured: ~10% of the cases stage's CPU on
    the bench.cases wave, ~3% at 50,000). ``gc.freeze()`` moves what exists after start-up
    (modules, the app) out of every later pass. Nothing the program computes depends on it.
    """
    if threshold <= 0:
        return
    _, second, third = gc.get_threshold()
    gc.set_threshold(threshold, second, third)
    gc.freeze()


def create_internal_topics(cfg: StreamsConfig, min_insync: int) -> None:
    """The stages' internal topics exist before the worker joins its group (idempotent), with
    the replication of the hub's own topics: Faust makes the tables' other changelogs (the
    cases journal) with ``cfg.replication`` too."""
    from streams.processors import cases, early_warning

    specs = [*(early_warning.internal_topics(cfg.app_id) if "early-warning" in cfg.stages
               else []),
             *(cases.internal_topics(cfg.app_id) if "cases" in cfg.stages else [])]
    if not specs:
        return
    asyncio.run(create_topics(cfg.kafka, specs,
                              partitions=cfg.partitions, replication=cfg.replication,
                              min_insync=min_insync))


def worker() -> None:
    """Run the stream worker (normalize and the case processors) until Ctrl-C."""
    try:
        run_worker()
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
