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
Nothing depends on the partition counts of the input topics.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import faust
from pydantic import ValidationError

from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage, explain
from schemas.models import Alert, AvroRecord, CanonicalEvent, CaseRecord
from schemas.topics import ALERTS, DlqStage

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
from .dead_letters import to_dlq

STAGE = DlqStage.ALERTS.value
TABLE = "early-warning"
SUBJECTS_SUFFIX = "early-warning-subjects"
SPIKE_SUBJECTS = ("region:", "province:", "agency:")  # routed from netral.events
log = logging.getLogger(__name__)


def subjects_topic_name(app_id: str) -> str:
    """The internal re-keying topic, named like Faust's own internal topics."""
    return f"{app_id}-{SUBJECTS_SUFFIX}"


M = TypeVar("M", bound=AvroRecord)


def _decode(codec: AvroCodec, data: bytes | None, model: type[M]) -> M:
    decoded = codec.decode(data, expect=model.avro_name)
    try:
        return model.from_avro(decoded.value)
    except ValidationError as err:
        raise InvalidMessage(f"invalid {model.__name__}: {explain(err)}") from None


def register(app: faust.App, topics: HubTopics, codec: AvroCodec, cfg: StreamsConfig) -> None:
    """Declare the early-warning agents, table and timer on ``app``."""
    ew = cfg.early_warning
    ikp = load_ikp(ew.ikp_file)
    calendar = default_calendar()
    subjects = app.topic(subjects_topic_name(cfg.app_id), key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw", internal=True,
                         partitions=cfg.partitions, deleting=True,
                         retention=timedelta(days=7))
    # use_partitioner: a batch (take_events) has no "current event" for Faust to take the
    # changelog partition from; the key's own partition is the same one, since the subjects
    # topic is keyed by the same bytes with the same partitioner and partition count.
    table = app.Table(TABLE, partitions=cfg.partitions, use_partitioner=True,
                      schema=faust.Schema(key_type=bytes, value_type=bytes,
                                          key_serializer="raw", value_serializer="raw"))

    async def send_alerts(alerts: tuple[Alert, ...] | list[Alert]) -> None:
        for alert in alerts:
            log.info("alert %s %s %s case=%s", alert.rule, alert.severity, alert.region_code,
                     alert.case_id)
            await topics.alerts.send(key=alert.region_code.encode(),
                                     value=codec.encode(Alert.avro_name, alert.to_avro(),
                                                        topic=ALERTS))

    async def route(msg: faust.types.Message, subject_list: tuple[str, ...]) -> None:
        for subject in subject_list:
            await subjects.send(key=subject.encode(), value=msg.value)

    @app.agent(topics.events, name="early-warning-route", concurrency=1)
    async def route_events(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(cfg.batch_size, within=cfg.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            for event in batch:
                msg = event.message
                try:
                    canonical = _decode(codec, msg.value, CanonicalEvent)
                    alert = imut_alert(canonical, ew, datetime.now(UTC))
                    subject_list = event_subjects(canonical)
                except Exception as err:  # InvalidMessage, or a bug: DLQ either way
                    if not isinstance(err, InvalidMessage):
                        log.exception("unexpected error in early warning at %s[%d]@%d",
                                      msg.topic, msg.partition, msg.offset)
                    await to_dlq(topics, STAGE, msg, err)
                    continue
                if alert is not None:
                    await send_alerts((alert,))
                await route(msg, subject_list)

    @app.agent(topics.cases, name="early-warning-route-cases", concurrency=1)
    async def route_cases(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(cfg.batch_size, within=cfg.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            for event in batch:
                msg = event.message
                if not msg.value:
                    continue  # a tombstone: a case merged away (compacted topic)
                try:
                    subject_list = case_subjects(_decode(codec, msg.value, CaseRecord))
                except Exception as err:
                    if not isinstance(err, InvalidMessage):
                        log.exception("unexpected error in early warning at %s[%d]@%d",
                                      msg.topic, msg.partition, msg.offset)
                    await to_dlq(topics, STAGE, msg, err)
                    continue
                await route(msg, subject_list)

    @app.agent(subjects, name="early-warning", concurrency=1)
    async def judge(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(cfg.batch_size, within=cfg.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            for event in batch:
                msg = event.message
                key: bytes = msg.key or b""
                subject = key.decode()
                try:
                    record: CanonicalEvent | CaseRecord | None = None
                    if msg.value and subject.startswith(SPIKE_SUBJECTS):
                        record = _decode(codec, msg.value, CanonicalEvent)
                    elif msg.value:
                        record = _decode(codec, msg.value, CaseRecord)
                    before = table.get(key)
                    state, alerts = apply(subject, load_state(before), record, ew, ikp,
                                          calendar, datetime.now(UTC))
                except Exception as err:
                    if not isinstance(err, InvalidMessage):
                        log.exception("unexpected error in early warning at %s[%d]@%d",
                                      msg.topic, msg.partition, msg.offset)
                    await to_dlq(topics, STAGE, msg, err)
                    continue
                if state is not None:
                    after = dump_state(state)
                    if after != before:
                        table[key] = after
                await send_alerts(alerts)

    @app.timer(interval=ew.deadline_scan_s)
    async def scan_deadlines() -> None:
        """Tick every local case whose deadline alert has come due since its last record."""
        now = datetime.now(UTC)
        due = []
        for key, value in list(table.items()):
            if not key.startswith(b"case:"):
                continue
            watch = load_state(value)
            if isinstance(watch, CaseWatch) and deadline_due(watch, ew, calendar, now):
                due.append(key)
        for key in due:
            await subjects.send(key=key, value=b"")
        if due:
            log.info("early warning: %d deadline re-checks", len(due))
