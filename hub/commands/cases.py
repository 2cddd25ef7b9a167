"""``netral cases tick``: ask the cases processor for a deadline scan as of a time.

The worker's leader does this every ``NETRAL_DEADLINE_SCAN_INTERVAL_S``; operators use the command
to scan now (after a calendar decree changed), and the demo and tests to walk a past calendar day
by day (``--through``). A tick from the future is refused by the processor (DLQ), so is here.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta

import typer
from aiokafka import AIOKafkaProducer

from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import DeadlineTick
from schemas.topics import DEADLINE_TICKS
from streams.rules.stage import WIB

from ..bootstrap import codec, kafka
from ..settings import get_settings

cases_app = typer.Typer(help="The cases processor: deadline scans.", no_args_is_help=True)
SCAN_TIME = time(9, 0, tzinfo=WIB)


def ticks_for(start: datetime, through: date | None, issued_by: str) -> list[DeadlineTick]:
    """One tick at ``start``, or one a day at 09:00 WIB from its date through ``through``."""
    if through is None:
        return [DeadlineTick(tick_id=str(uuid.uuid4()), at=start, issued_by=issued_by)]
    day, out = start.astimezone(WIB).date(), []
    while day <= through:
        at = datetime.combine(day, SCAN_TIME).astimezone(UTC)
        out.append(DeadlineTick(tick_id=f"{issued_by}:{day.isoformat()}", at=at,
                                issued_by=issued_by))
        day += timedelta(days=1)
    return out


async def send_ticks(conn: KafkaConnection, avro: AvroCodec, ticks: list[DeadlineTick]) -> None:
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for t in ticks:
            await producer.send(DEADLINE_TICKS, key=t.issued_by.encode(),
                                value=avro.encode_record(t, topic=DEADLINE_TICKS))
        await producer.flush()
    finally:
        await producer.stop()


def _instant(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO date or date-time "
                                 "(e.g. 2024-12-23 or 2024-12-23T09:00+07:00)") from None
    if value.tzinfo is None:
        value = datetime.combine(value.date(), SCAN_TIME) if len(text) <= 10 else \
            value.replace(tzinfo=WIB)
    if value > datetime.now(UTC):
        raise typer.BadParameter(f"{text} is in the future: deadlines are never scanned ahead")
    return value.astimezone(UTC)


@cases_app.command("tick")
def tick(
    at: str = typer.Option(None, "--at", help="Scan as of this ISO date/time (default: now); "
                           "a bare date means 09:00 WIB."),
    through: str = typer.Option(None, "--through", help="Also scan every day after --at "
                                "through this ISO date (walks a past calendar)."),
    issued_by: str = typer.Option("operator", help="Who asks (kept with the tick)."),
) -> None:
    """Publish deadline ticks to netral.deadline-ticks for the cases processor."""
    start = _instant(at)
    end = _instant(through).astimezone(WIB).date() if through else None
    settings = get_settings()
    ticks = ticks_for(start, end, issued_by)
    asyncio.run(send_ticks(kafka(settings, "netral-cases-tick"), codec(settings), ticks))
    typer.echo(f"{len(ticks)} deadline tick(s) sent to {DEADLINE_TICKS}, "
               f"{ticks[0].at.isoformat()} .. {ticks[-1].at.isoformat()}")
