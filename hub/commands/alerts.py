"""``netral alerts run`` (deliver alerts to the Satgas) and ``netral alerts receiver`` (a local
webhook receiver for the demo)."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import typer
from aiokafka import AIOKafkaProducer
from prometheus_client import start_http_server

from schemas import regions
from schemas.errors import ConfigError
from schemas.models.enums import Severity
from schemas.models.hub import Alert
from schemas.topics import ALERTS, DlqStage, dlq_topic
from sinks.alerts.digest import Throttle
from sinks.alerts.dispatcher import AlertDispatcher
from sinks.alerts.ledger import DeliveryLedger
from sinks.alerts.metrics import AlertMetrics
from sinks.alerts.routes import load_routes
from sinks.alerts.runner import AlertsRunner, AlertsRunnerConfig, build_senders
from sinks.sql import migrate
from sinks.sql.engine import create_sql_engine, describe_url

from ..bootstrap import alert_retry_policy, alert_routes, codec, kafka, smtp_config
from ..settings import get_settings

log = logging.getLogger(__name__)
alerts_app = typer.Typer(help="Satgas alert channels: webhook, email, chat.",
                         no_args_is_help=True)


def _now() -> datetime:
    return datetime.now(UTC)


@alerts_app.command("run")
def run(
    topic: str = typer.Option(ALERTS, help="Alerts to deliver."),
    dlq: str = typer.Option(dlq_topic(DlqStage.ALERTS), help="Where invalid alerts go."),
    migrate_first: bool = typer.Option(
        False, "--migrate/--no-migrate", help="Run `netral db upgrade` first (local use)."),
) -> None:
    """Deliver each alert once per recipient (ledger in the SQL database), offsets after."""
    settings = get_settings()
    routes = alert_routes(settings)
    url = settings.resolved_database_url()
    if migrate_first:
        migrate.upgrade(url)
    conn = kafka(settings, client_id=settings.alerts_group_id)
    engine = create_sql_engine(url)

    metrics = AlertMetrics()
    if settings.alerts_metrics_port:
        start_http_server(settings.alerts_metrics_port, addr=settings.alerts_metrics_host,
                          registry=metrics.registry)

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            dispatcher = AlertDispatcher(
                routes, DeliveryLedger(engine, _now),
                build_senders(routes, http=http, smtp=smtp_config(settings),
                              policy=alert_retry_policy(settings), clock=_now),
                Throttle(settings.alerts_digest_threshold,
                         timedelta(seconds=settings.alerts_digest_window_s)),
                _now, concurrency=settings.alerts_concurrency, metrics=metrics)
            runner = AlertsRunner(dispatcher, codec(settings), AlertsRunnerConfig(
                kafka=conn, group_id=settings.alerts_group_id, topic=topic, dlq=dlq,
                batch_size=settings.alerts_batch_size,
                retry_max_s=settings.alerts_backoff_max_s))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, runner.request_stop)
            await runner.start()
            log.info("alerts: %d recipients, group %s, ledger in %s", len(routes.recipients),
                     settings.alerts_group_id, describe_url(url))
            try:
                await runner.run()
            finally:
                await runner.stop()
            s = dispatcher.stats
            typer.echo(f"alerts: {s.alerts} alerts, {s.sent} sent, {s.failed} failed, "
                       f"{s.duplicates} repeats skipped, {s.queued} into "
                       f"{s.digests_sent} digests, {runner.stats.dead_lettered} to {dlq}")

    try:
        asyncio.run(main())
    finally:
        engine.dispose()


@alerts_app.command("receiver")
def receiver(
    port: int = typer.Option(8790, min=0, max=65535, help="TCP port."),
    host: str = typer.Option("127.0.0.1", help="Interface (loopback by default)."),
    out: Path | None = typer.Option(None, help="JSON-lines file to append to "
                                    "(default NETRAL_ALERTS_RECEIVER_FILE)."),
    routes_file: Path | None = typer.Option(None, "--routes",
                                            help="Where the secrets are (default: the routes "
                                                 "file of the settings)."),
    fail_first: int = typer.Option(0, min=0, help="Answer 503 to the first N deliveries."),
) -> None:
    """A local webhook (and chat bot) receiver that checks signatures and logs what arrives."""
    import uvicorn

    from ..alerts_receiver import ReceiverConfig, create_receiver_app, secrets_of

    settings = get_settings()
    routes = load_routes(routes_file) if routes_file else alert_routes(settings)
    out_file = out or settings.resolved_alerts_receiver_file()
    config = ReceiverConfig(secrets=secrets_of(routes), out_file=out_file,
                            tolerance_s=settings.alerts_signature_tolerance_s,
                            fail_first=fail_first)
    typer.echo(f"alert receiver on http://{host}:{port}/webhook/<recipient>, appending to "
               f"{out_file}")
    uvicorn.run(create_receiver_app(config), host=host, port=port, log_level="warning")


@alerts_app.command("test")
def send_test_alert(
    region: str = typer.Option("31", help="Kemendagri region code the alert is about."),
    severity: Severity = typer.Option(Severity.INFO, help="INFO, WARNING or CRITICAL."),
    agency: str | None = typer.Option(None, help="Agency name, to reach an agency recipient."),
    topic: str = typer.Option(ALERTS, help="Where to publish it."),
) -> None:
    """Publish one test alert (rule netral.test), to check routes and channels end to end."""
    settings = get_settings()
    if not regions.is_known(region):
        raise ConfigError(f"--region {region!r} is no Kemendagri region code (e.g. 32.73)")
    alert_id = f"netral-test-{uuid.uuid4().hex[:12]}"
    alert = Alert(alert_id=alert_id, rule="netral.test", severity=severity, region_code=region,
                  province_code=regions.province_of(region), agency_name=agency,
                  title=f"Test alert for {regions.name_of(region)}",
                  detail="A test sent by `netral alerts test`: this channel works. No action "
                         "needed.", at=_now(), dedupe_key=f"netral.test:{alert_id}")
    conn = kafka(settings, client_id="netral-alerts-test")
    value = codec(settings).encode_record(alert, topic=topic)

    async def send() -> None:
        producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all",
                                    enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(topic, value=value, key=region.encode())
        finally:
            await producer.stop()

    asyncio.run(send())
    typer.echo(f"published {alert_id} ({severity.value}, {region}) to {topic}")
