"""cases: the national record. Events, review commands, SIASN results and deadline ticks in;
CaseRecords, CaseTransitions, SiasnOrders, alerts and dead letters out.

Thin by design: the rules live in :mod:`streams.rules.cases`, the stage's state and journal in
:mod:`streams.rules.stage`. Per batch: take every input (a bad one goes to ``netral.dlq.cases``
with the reason and the stage is untouched), publish what they produced (of each case only its
last version in the batch: ``batch_outputs``) and wait for the acks,
then journal the batch's inputs (one entry) in the changelog-backed table ``cases-journal``.
Outputs before journal: a crash in between re-takes the inputs, which re-emits the same ids
(the sinks and SIASN drop them), where the other order would have lost the outputs. After a
restart or a rebalance the book is rebuilt from the journal before the first batch.

Deadline scans are inputs too: the leader's timer publishes a DeadlineTick to
``netral.deadline-ticks`` (Faust tables can only change inside a stream, and a tick taken in
order with the events is journaled and replayed like them).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import faust

from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter as Letter
from schemas.errors import InvalidMessage
from schemas.models import CanonicalEvent, DeadlineTick
from schemas.topics import ALERTS, CASE_EVENTS, CASES, DEADLINE_TICKS, EVENTS, ORDERS_SIASN

from ..config import StreamsConfig
from ..rules.calendar import default_calendar
from ..rules.cases import Outputs, batch_outputs
from ..rules.policy import load_policies
from ..rules.stage import KIND_BY_TOPIC, CaseStage, InputKind, pack
from ..topics import HubTopics
from .dead_letters import reject

STAGE = "cases"
JOURNAL = "cases-journal"
JOURNAL_PARTITION = 0
WRITER_HEADER = "netral.writer"
log = logging.getLogger(__name__)


def journal_key(index: int) -> bytes:
    return b"%012d" % index


def register(app: faust.App, topics: HubTopics, codec: AvroCodec, cfg: StreamsConfig) -> None:
    journal = app.Table(JOURNAL, partitions=1, key_type=bytes, value_type=bytes,  # raw bytes
                        help="Every input the cases stage took, in order, with its clock.")
    held: dict[str, CaseStage] = {}
    # Which application wrote an output: the live worker, or a `netral replay` under its own id.
    writer = [(WRITER_HEADER, str(app.conf.id).encode())]

    def stage() -> CaseStage:
        """The stage for the journal as it is now (rebuilt after a restart or rebalance)."""
        current = held.get("stage")
        if current is not None and current.entries == len(journal):
            return current
        fresh = CaseStage(codec, default_calendar(), load_policies())
        keys = sorted(journal.keys())
        fresh.replay((journal.data[k] for k in keys), on_error=lambda i, err: log.error(
            "cases: journal entry %d no longer applies: %s", i, err))
        log.info("cases: national record rebuilt from %d inputs in %d journal entries: %d cases",
                 fresh.taken, fresh.entries, len(fresh.book.cases))
        held["stage"] = fresh
        return fresh

    async def publish(out: Outputs) -> list[Awaitable[Any]]:
        sends: list[tuple[str, str, bytes | None]] = []
        for record in out.cases:
            sends.append((CASES, record.case_id, codec.encode_record(record, topic=CASES)))
        for case_id in out.tombstones:
            sends.append((CASES, case_id, None))
        for t in out.transitions:
            sends.append((CASE_EVENTS, t.case_id, codec.encode_record(t, topic=CASE_EVENTS)))
        for o in out.orders:
            sends.append((ORDERS_SIASN, o.nip, codec.encode_record(o, topic=ORDERS_SIASN)))
        for a in out.alerts:
            sends.append((ALERTS, a.region_code, codec.encode_record(a, topic=ALERTS)))
        futures = [await app.producer.send(topic, key.encode(), value, None, None, writer)
                   for topic, key, value in sends]
        for dead in out.dead_letters:
            futures.append(await _orphan_letter(dead.event, dead.reason))
        return futures

    async def _orphan_letter(event: CanonicalEvent, reason: str) -> Awaitable[Any]:
        letter = Letter.of(InvalidMessage(reason), stage=STAGE, topic=EVENTS, partition=0,
                           offset=-1)
        log.warning("dlq %s: waiting event %s: %s", STAGE, event.event_id, reason[:300])
        value = codec.encode_record(event, topic=EVENTS)
        return await app.producer.send(topics.dlq[STAGE].get_topic_name(),
                                       event.source_id.encode(), value, None, None,
                                       letter.headers())

    @app.agent(topics.case_inputs, name="cases", concurrency=1)
    async def cases(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(cfg.batch_size, within=cfg.batch_within_s)  # type: ignore[attr-defined]
        async for batch in batches:
            current = stage()
            taken: list[tuple[InputKind, bytes]] = []
            parts: list[Outputs] = []
            try:
                for event in batch:
                    msg = event.message
                    kind = KIND_BY_TOPIC[msg.topic]
                    try:
                        parts.append(current.take(kind, msg.value))
                    except Exception as err:  # noqa: BLE001 - reject() logs bugs
                        await reject(topics, STAGE, msg, err)
                        continue
                    taken.append((kind, msg.value or b""))
                    # A deadline scan walks every case: let timers, heartbeats and the
                    # producer run between inputs, or a burst of ticks stalls the worker.
                    await asyncio.sleep(0)
                await asyncio.gather(*await publish(batch_outputs(parts)))
            except BaseException:
                held.pop("stage", None)  # the book ran ahead of the journal: rebuild it
                raise
            if taken:
                # Written to the store and changelog directly: inside take_events the agent
                # has no current event, which Table.__setitem__ needs to pick the partition.
                key, entry = journal_key(current.entries), pack(taken)
                journal.data[key] = entry
                journal.send_changelog(JOURNAL_PARTITION, key, entry)
                current.entries += 1

    if cfg.deadline_scan_interval_s > 0:
        @app.timer(interval=cfg.deadline_scan_interval_s, on_leader=True)
        async def deadline_timer() -> None:
            tick = DeadlineTick(tick_id=str(uuid.uuid4()), at=datetime.now(UTC),
                                issued_by="timer")
            value = codec.encode_record(tick, topic=DEADLINE_TICKS)
            await (await app.producer.send(DEADLINE_TICKS, b"timer", value, None, None, None))
