"""early warning: ``netral.events`` + ``netral.cases`` -> ``netral.alerts`` (keyed by region code).

Two thin steps, because a rule's state belongs to a *subject* (a region, an agency, a NIP, a case)
that is not the key of the input topics:

1. ``early-warning-route`` (events) and ``early-warning-route-cases`` decode each record (invalid
   -> ``netral.dlq.alerts`` with the reason), raise the stateless I-MUT alert directly, and re-key
   the record's original bytes once per subject onto the internal topic
   ``<app id>-early-warning-subjects`` (created by Faust, like a ``group_by`` repartition).
2. ``early-warning`` reads that topic, so every subject always meets its state in one partition of
   the changelog-backed table ``early-warning``: load, call the pure rule, save, emit.

A timer re-checks open deadlines every ``deadline_scan_s`` (days pass while a case waits): for a
case whose deadline alert is now due it sends an empty *tick* for that case's subject, and the
second step judges it like any record, so the table is only written from inside the stream.
Outputs are at least once, outside Faust's transactions (see :class:`_PlainProducer`).
Nothing depends on the partition counts of the input topics.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage, explain
from schemas.kafka import KafkaConnection
from schemas.models import Alert, AvroRecord, CanonicalEvent, CaseRecord
from schemas.topics import ALERTS, DAY_MS, DlqStage, TopicSpec

from ..config import StreamsConfig
from ..rules.calendar import default_calendar
from ..rules.early_warning import (
    CaseWatch,
    apply,
    case_subjects,
    deadline_due,
    dump_state,
    event_subjects,
    imut_alert,
    load_ikp,
    load_state,
)
from ..topics import HubTopics
from .dead_letters import reject

STAGE = DlqStage.ALERTS.value
TABLE = "early-warning"
SUBJECTS_SUFFIX = "early-warning-subjects"
SPIKE_SUBJECTS = ("region:", "province:", "agency:")  # routed from netral.events
Pending = list["asyncio.Future[Any]"]
log = logging.getLogger(__name__)


def subjects_topic_name(app_id: str) -> str:
    """The internal re-keying topic, named like Faust's own internal topics."""
    return f"{app_id}-{SUBJECTS_SUFFIX}"


def internal_topics(app_id: str) -> list[TopicSpec]:
    """Topics the shell must create before the worker starts: Faust declares an internal topic
    only as it subscribes, after the first assignment has skipped it as missing, so its
    partitions would stay unassigned until the next rebalance (minutes later)."""
    return [TopicSpec(name=subjects_topic_name(app_id), key="subject", value="routed record",
                      cleanup="delete", retention_ms=7 * DAY_MS, writer="early warning"),
            # The table's changelog too: created by Faust on first write, its metadata can lag
            # (a broker down), and the table's write then fails with PartitionsMismatch.
            TopicSpec(name=f"{app_id}-{TABLE}-changelog", key="subject",
                      value="early-warning state", cleanup="compact", retention_ms=None,
                      writer="early warning (Faust table changelog)")]


M = TypeVar("M", bound=AvroRecord)


def _decode(codec: AvroCodec, data: bytes | None, model: type[M]) -> M:
    decoded = codec.decode(data, expect=model.avro_name)
    try:
        return model.from_fastavro(decoded.value)
    except ValidationError as err:
        raise InvalidMessage(f"invalid {model.__name__}: {explain(err)}") from None


def register(app: faust.App, topics: HubTopics, codec: AvroCodec, cfg: StreamsConfig) -> None:
    """Declare the early-warning agents, table and timer on ``app``."""
    ew = cfg.early_warning
    ikp = load_ikp(ew.ikp_file)
    calendar = default_calendar()
    subjects_name = subjects_topic_name(cfg.app_id)
    subjects = app.topic(subjects_name, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw", internal=True,
                         partitions=cfg.partitions, deleting=True,
                         retention=timedelta(days=7))
    # Keys and values are str (subject, state JSON) with Faust's json serializer, which the
    # changelog writes and its recovery both use.
    table = app.Table(TABLE, key_type=str, value_type=str, partitions=cfg.partitions)

    out = _PlainProducer(cfg.kafka)

    @app.on_before_shutdown.connect
    async def _stop_output(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await out.stop()

    async def send_alerts(alerts: tuple[Alert, ...], pending: Pending) -> None:
        for alert in alerts:
            log.info("alert %s %s %s case=%s", alert.rule, alert.severity, alert.region_code,
                     alert.case_id)
            pending.append(await out.send(
                ALERTS, alert.region_code.encode(),
                codec.encode_record(alert, topic=ALERTS)))

    async def route(msg: faust.types.Message, subject_list: tuple[str, ...],
                    pending: Pending) -> None:
        for subject in subject_list:
            pending.append(await out.send(subjects_name, subject.encode(), msg.value or b""))

    async def acknowledged(pending: Pending) -> None:
        """Wait for the broker's acks before the events' offsets may be committed; a send the
        broker refused after the producer's retries stops the worker (nothing is skipped)."""
        try:
            await asyncio.gather(*pending)
        except KafkaError as err:
            log.critical("early warning cannot publish (%s): stopping the worker", err)
            await app.crash(err)
            raise

    @app.agent(topics.events, name="early-warning-route", concurrency=1)
    async def route_events(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(cfg.batch_size, within=cfg.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            pending: Pending = []
            for event in batch:
                msg = event.message
                try:
                    canonical = _decode(codec, msg.value, CanonicalEvent)
                    alert = imut_alert(canonical, ew, datetime.now(UTC))
                    subject_list = event_subjects(canonical)
                except Exception as err:  # noqa: BLE001 - reject() logs bugs
                    await reject(topics, STAGE, msg, err)
                    continue
                if alert is not None:
                    await send_alerts((alert,), pending)
                await route(msg, subject_list, pending)
            await acknowledged(pending)

    @app.agent(topics.cases, name="early-warning-route-cases", concurrency=1)
    async def route_cases(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(cfg.batch_size, within=cfg.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            pending: Pending = []
            for event in batch:
                msg = event.message
                if not msg.value:
                    continue  # a tombstone: a case merged away (compacted topic)
                try:
                    subject_list = case_subjects(_decode(codec, msg.value, CaseRecord))
                except Exception as err:  # noqa: BLE001 - reject() logs bugs
                    await reject(topics, STAGE, msg, err)
                    continue
                await route(msg, subject_list, pending)
            await acknowledged(pending)

    @app.agent(subjects, name="early-warning", concurrency=1)
    async def judge(stream: faust.StreamT[bytes]) -> None:
        # In batches, like the other agents: a record routed to several subjects is decoded
        # once per batch, and the alerts are acknowledged once per batch. Inside take_events
        # there is no current event, so a write names its changelog partition itself: the
        # record's own, which is the subject's (what Table.__setitem__ takes from the event).
        batches = stream.take_events(cfg.batch_size, within=cfg.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            pending: Pending = []
            decoded: dict[tuple[bool, bytes], CanonicalEvent | CaseRecord] = {}
            for event in batch:
                msg = event.message
                subject = (msg.key or b"").decode()
                try:
                    record = _record(msg.value, subject.startswith(SPIKE_SUBJECTS), decoded)
                    before = table.get(subject)
                    state, alerts = apply(subject, load_state(before), record, ew, ikp,
                                          calendar, datetime.now(UTC))
                except Exception as err:  # noqa: BLE001 - reject() logs bugs
                    await reject(topics, STAGE, msg, err)
                    continue
                if state is not None:
                    after = dump_state(state)
                    if after != before:
                        table.data[subject] = after
                        # Acknowledged with the alerts, before the batch's offsets may be
                        # committed: Faust's commit flushes unawaited sends only best-effort
                        # (0.1 s per message), so a SIGKILL could lose a committed state.
                        pending.append(table.send_changelog(msg.partition, subject, after))
                await send_alerts(alerts, pending)
                # As in the cases agent: timers, heartbeats and the producer's buffer get the
                # loop between records, not only between batches of up to 500.
                await asyncio.sleep(0)
            await acknowledged(pending)

    def _record(value: bytes | None, spike: bool,
                decoded: dict[tuple[bool, bytes], CanonicalEvent | CaseRecord]
                ) -> CanonicalEvent | CaseRecord | None:
        """The routed record (None: a deadline tick), decoded once per batch."""
        if not value:
            return None
        known = decoded.get((spike, value))
        if known is not None:
            return known
        fresh: CanonicalEvent | CaseRecord = (_decode(codec, value, CanonicalEvent) if spike
                                              else _decode(codec, value, CaseRecord))
        decoded[(spike, value)] = fresh
        return fresh

    @app.timer(interval=ew.deadline_scan_s)
    async def scan_deadlines() -> None:
        """Tick every local case whose deadline alert has come due since its last record."""
        now = datetime.now(UTC)
        due = []
        for subject, value in list(table.items()):
            if not subject.startswith("case:"):
                continue
            watch = load_state(value)
            if isinstance(watch, CaseWatch) and deadline_due(watch, ew, calendar, now):
                due.append(subject)
        await acknowledged([await out.send(subjects_name, s.encode(), b"") for s in due])
        if due:
            log.info("early warning: %d deadline re-checks", len(due))


class _PlainProducer:
    """The stage's outputs (re-keyed subjects, alerts, ticks) go through a plain idempotent
    producer (acks=all), awaited before a batch is done: at least once, never inside the
    worker's transactions.

    Faust's exactly-once producer opens one transaction per *target* partition and commits it
    only with consumed offsets of the same partition number, so a record re-keyed onto another
    partition, or sent from a timer, can wait in an open transaction until traffic happens to
    reach that partition, or be aborted when the transaction times out. Every output here is
    idempotent downstream instead: the rules count distinct event and case ids, alerts carry
    deterministic ids that the alert sink dedupes, and a tick is only a prompt. Keys go through
    the same default partitioner (murmur2) as Faust's, so a subject always meets its table
    partition. The table's changelog stays in Faust's transaction with the consumed offsets.
    """

    def __init__(self, conn: KafkaConnection) -> None:
        self._conn = conn
        self._producer: AIOKafkaProducer | None = None

    async def send(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Any]:
        """Queue one record; the future resolves when the broker acknowledged it."""
        if self._producer is None:
            self._producer = AIOKafkaProducer(**self._conn.aiokafka_kwargs(), acks="all",
                                              enable_idempotence=True)
            await self._producer.start()
        return await self._producer.send(topic, key=key, value=value)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
