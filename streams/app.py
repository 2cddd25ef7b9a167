"""The Faust application, built by a factory (nothing is created at import time)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from mode import CrashingSupervisor

from schemas.codec import AvroCodec

from . import diagnostics
from .config import StreamsConfig
from .metrics import StreamMetrics
from .processors import cases, early_warning, normalize
from .rebalance import use_rebalance_safe_consumer
from .topics import declare_topics


def _broker_kwargs(cfg: StreamsConfig) -> dict[str, Any]:
    conn = cfg.kafka
    kwargs: dict[str, Any] = {
        "broker": ";".join(f"kafka://{h}" for h in conn.bootstrap.split(",")),
    }
    if conn.sasl_mechanism:
        kwargs["broker_credentials"] = faust.SASLCredentials(
            username=conn.username,
            password=conn.password.get_secret_value() if conn.password else None,
            mechanism=conn.sasl_mechanism,
            ssl_context=conn.aiokafka_kwargs().get("ssl_context"),
        )
    elif conn.security_protocol == "SSL":
        kwargs["broker_credentials"] = faust.SSLCredentials(
            conn.aiokafka_kwargs()["ssl_context"]
        )
    return kwargs


def create_app(cfg: StreamsConfig, codec: AvroCodec | None = None,
               metrics: StreamMetrics | None = None) -> faust.App:
    """Build the worker app with every processor registered on it; ``metrics``: where the
    stages count (the worker serves them), else a registry of the app's own."""
    app = faust.App(
        cfg.app_id,
        **_broker_kwargs(cfg),
        processing_guarantee=cfg.processing_guarantee,
        topic_partitions=cfg.partitions,
        topic_replication_factor=cfg.replication,
        datadir=str(cfg.data_dir),
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        # A fresh single-node broker: join fast, notice a dead worker in seconds, not minutes.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=30.0,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_linger=cfg.producer_linger_ms / 1000,
        producer_max_batch_size=cfg.producer_batch_bytes,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        producer_max_request_size=cfg.max_message_bytes * 9,
        consumer_max_fetch_size=cfg.max_message_bytes * 9,
        # A bug in an agent stops the worker with the error. Faust's default (one-for-one)
        # restarted the crashed actor, which then took nothing: seen, the cases stage sat dead
        # in a live worker, its lag growing. A stopped worker is what ops and supervisors see.
        agent_supervisor=CrashingSupervisor,
    )
    # see streams/rebalance.py: events lost after a rebalance
    use_rebalance_safe_consumer(app, cfg.hole_check_s)
    topics = declare_topics(app)
    codec = codec or AvroCodec(max_bytes=cfg.max_message_bytes)
    # Faust wants every worker of one app (consumer group) to hold the same agents: a process
    # running other stages runs under its own app id.
    if "normalize" in cfg.stages:
        normalize.register(app, topics, codec, cfg)
    if "cases" in cfg.stages:
        cases.register(app, topics, codec, cfg, metrics or StreamMetrics())
    if "early-warning" in cfg.stages:
        early_warning.register(app, topics, codec, cfg)

    @app.task
    async def diagnose_on_signal() -> None:
        # kill -USR1: the pending tasks' await chains in the log; -USR2: the threads' stacks
        diagnostics.install(asyncio.get_running_loop())

    return app
