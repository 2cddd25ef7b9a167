"""Structured logs: JSON lines in production, readable lines locally.

The Kafka client libraries log debug records on their hot path; they stay at WARNING (perf-notes:
~9% of Faust's per-event cost was building unused records). Their DEBUG records also carry whole
message values (aiokafka's producer logs every record it sends), i.e. NIPs and names, so
NETRAL_LOG_LEVEL=DEBUG raises them only to INFO; NETRAL_LOG_CLIENT_DEBUG=true is the explicit,
personal-data-bearing opt-in for debugging a client library.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

NOISY = ("aiokafka", "kafka", "faust", "mode", "asyncio", "httpx", "urllib3")
# Once per rebalance, and what ops need to see a worker resume: kept at INFO.
REBALANCE = ("faust.tables.recovery",)


def configure(level: str = "INFO", fmt: str = "console", client_debug: bool = False) -> None:
    """Install one handler on the root logger (stderr), replacing any earlier one."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    libraries = "DEBUG" if client_debug else "INFO" if level == "DEBUG" else "WARNING"
    for name in NOISY:
        logging.getLogger(name).setLevel(libraries)
    for name in REBALANCE:
        logging.getLogger(name).setLevel(level if client_debug else max(
            logging.getLevelName(level), logging.INFO))
