"""``netral topics``: create every hub topic with explicit configs (idempotent)."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from schemas.kafka import KafkaConnection
from schemas.topics import TopicSpec, catalogue

from ..bootstrap import kafka
from ..kafka_admin import TopicsReport, brokers_for, create_topics, replication_for
from ..settings import NetralSettings, get_settings

topics_app = typer.Typer(help="The hub's topics (created explicitly, never auto-created).",
                         no_args_is_help=True)
console = Console()


def hub_catalogue(settings: NetralSettings) -> list[TopicSpec]:
    """The catalogue with the operator's retention settings (raw topics, access log)."""
    return catalogue(raw_retention_days=settings.raw_retention_days,
                     audit_retention_days=settings.audit_retention_days)


def ensure_topics(settings: NetralSettings) -> TopicsReport:
    """Create the missing topics of the catalogue; a second call creates nothing.

    Replication is the operator's (NETRAL_TOPIC_REPLICATION / _MIN_INSYNC), else the
    cluster's: RF min(3, brokers), min ISR RF - 1.
    """
    conn = kafka(settings, client_id="netral-admin")

    async def create() -> TopicsReport:
        replication, min_insync = await topic_replication(settings, conn, "create topics")
        return await create_topics(conn, hub_catalogue(settings),
                                   partitions=settings.topic_partitions,
                                   replication=replication, min_insync=min_insync)

    return asyncio.run(create())


async def topic_replication(settings: NetralSettings, conn: KafkaConnection,
                            action: str) -> tuple[int, int]:
    """(RF, min ISR) for the topics the hub creates on the cluster ``conn`` reaches, asked
    before ``action`` (what a failure's one line says could not be done)."""
    if settings.topic_replication is not None and settings.topic_min_insync is not None:
        return settings.topic_replication, settings.topic_min_insync
    return replication_for(await brokers_for(conn, action), settings.topic_replication,
                           settings.topic_min_insync)


@topics_app.command("create")
def create() -> None:
    """Create every topic of the catalogue that does not exist yet; print what exists.

    Existing topics get the catalogue's retention.ms if it changed (NETRAL_RAW_RETENTION_DAYS,
    NETRAL_AUDIT_RETENTION_DAYS).
    """
    report = ensure_topics(get_settings())
    for name in report.created:
        console.print(f"[green]created[/] {name}")
    for name in report.existing:
        console.print(f"[dim]exists[/]  {name}")
    for name in report.altered:
        console.print(f"[yellow]retention set[/] {name}")
    console.print(f"{len(report.created)} created, {len(report.existing)} already existed")


@topics_app.command("list")
def list_() -> None:
    """Show the topic catalogue: key, value, cleanup, retention and writer."""
    table = Table("topic", "key", "value", "cleanup", "retention (days)", "written by")
    for spec in hub_catalogue(get_settings()):
        days = f"{spec.retention_ms / 86_400_000:.0f}" if spec.retention_ms else "forever"
        table.add_row(spec.name, spec.key, spec.value, spec.cleanup, days, spec.writer)
    console.print(table)
