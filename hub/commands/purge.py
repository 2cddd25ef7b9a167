"""``netral purge --older-than 365d``: remove persons from closed cases, keep the aggregates.

Two copies of the national record hold persons: the SQL database and the compacted topic
``netral.cases``. The command purges the database in one transaction, then sends a
:class:`~schemas.models.PurgeCommand` with the same cutoff to ``netral.commands.purge``: the
cases stage republishes each such case scrubbed as a new version, so compaction drops the old
value (streams/rules/purge.py). Both steps are idempotent: if sending fails, run it again.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import uuid
from datetime import UTC, datetime, timedelta

import typer
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from rich.console import Console

from schemas.codec import AvroCodec
from schemas.errors import ConfigError
from schemas.kafka import KafkaConnection, kafka_failure
from schemas.models import PurgeCommand
from schemas.topics import PURGE_COMMANDS
from sinks.sql.engine import create_sql_engine, describe_url
from sinks.sql.migrate import check_schema
from sinks.sql.purge import purge_personal_data

from ..bootstrap import codec, kafka
from ..settings import get_settings

console = Console()
UNITS = {"d": 1, "w": 7, "y": 365}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12w`` or ``5y`` (365-day years) as a duration."""
    match = re.fullmatch(r"(\d+)([dwy])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"--older-than {text!r}: give a positive age like 365d, 52w or 5y")
    return timedelta(days=int(match.group(1)) * UNITS[match.group(2)])


async def send_purge(conn: KafkaConnection, avro: AvroCodec, command: PurgeCommand) -> None:
    """Publish the purge command and wait for acks=all."""
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    try:
        await producer.start()
        value = avro.encode_record(command, topic=PURGE_COMMANDS)
        await (await producer.send(PURGE_COMMANDS, key=command.command_id.encode(), value=value))
    except KafkaError as err:
        raise kafka_failure(err, conn, f"send the purge command to {PURGE_COMMANDS} (the "
                            "database part is done; run the same purge again)") from None
    finally:
        await producer.stop()


def _operator() -> str:
    try:
        return f"netral purge ({getpass.getuser()})"
    except (OSError, KeyError):  # no login name in this container
        return "netral purge"


def purge(
    older_than: str | None = typer.Option(
        None, "--older-than",
        help="Age of the last update of a closed case, e.g. 365d, 52w, 5y "
             "(default NETRAL_PERSONAL_DATA_RETENTION_DAYS)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count only; change nothing."),
    sql_only: bool = typer.Option(
        False, "--sql-only",
        help="Purge the database only; send no purge command to netral.cases' stage."),
) -> None:
    """Purge the personal data of closed cases from the national record (the database and the
    compacted netral.cases); counts stay."""
    settings = get_settings()
    if older_than is None:
        if settings.personal_data_retention_days is None:
            raise ConfigError("give --older-than (e.g. 5y) or set "
                              "NETRAL_PERSONAL_DATA_RETENTION_DAYS")
        age = timedelta(days=settings.personal_data_retention_days)
    else:
        age = parse_age(older_than)
    url = settings.resolved_database_url()
    now = datetime.now(UTC)
    engine = create_sql_engine(url)
    try:
        with engine.begin() as conn:
            check_schema(conn)
            report = purge_personal_data(conn, older_than=now - age, now=now, dry_run=dry_run)
    finally:
        engine.dispose()
    verb = "would purge" if dry_run else "purged"
    console.print(f"{describe_url(url)}: {verb} the personal data of {report.cases} closed cases "
                  f"last updated before {report.older_than:%Y-%m-%d} ({report.persons} persons "
                  f"removed, {report.orders} orders and {report.alerts} alerts without NIP)")
    if dry_run or sql_only:
        return
    command = PurgeCommand(command_id=str(uuid.uuid4()), older_than=now - age,
                           issued_by=_operator(), at=now)
    asyncio.run(send_purge(kafka(settings, "netral-purge"), codec(settings), command))
    console.print(f"sent purge {command.command_id} to {PURGE_COMMANDS}: the cases stage "
                  f"republishes those cases to netral.cases without their persons")
