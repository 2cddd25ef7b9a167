"""``netral alerts run``'s Kafka loop: plain aiokafka, offsets committed after the deliveries.

Per batch: fetch (read_committed), decode and validate each value as an ``Alert`` (undecodable or
invalid ones go to ``netral.dlq.alerts`` with the reason), hand the alerts to the dispatcher,
which returns once every delivery is recorded in the ledger, wait for the DLQ's acks, and only
then commit. A crash before the commit redelivers the batch and the ledger turns it into no new
notification. If the ledger's database is down the same batch is retried (seek back, backoff);
a channel that keeps failing is recorded as failed and the stream goes on. Digests due are sent
between batches, and every queued one on :meth:`AlertsRunner.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import ValidationError

from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.errors import InvalidMessage, RetriableError, explain
from schemas.kafka import KafkaConnection
from schemas.models.hub import Alert
from schemas.topics import ALERTS, DlqStage, dlq_topic

from .channels import (
    ChannelSender,
    ChatSender,
    EmailSender,
    RetryPolicy,
    SmtpConfig,
    WebhookSender,
)
from .dispatcher import AlertDispatcher, SenderKey
from .ledger import LedgerUnavailable
from .routes import ChatChannel, EmailChannel, Routes, WebhookChannel

log = logging.getLogger(__name__)
STAGE = DlqStage.ALERTS.value


def decode_alert(codec: AvroCodec, value: bytes | None) -> Alert:
    """Decode and validate one value; InvalidMessage says why not (no personal data in it)."""
    decoded = codec.decode(value, expect=Alert.avro_name)
    try:
        return Alert.from_fastavro(decoded.value)
    except ValidationError as err:
        raise InvalidMessage(f"invalid Alert: {explain(err)}") from None


def build_senders(routes: Routes, *, http: httpx.AsyncClient, smtp: SmtpConfig,
                  policy: RetryPolicy, clock: Callable[[], datetime]
                  ) -> dict[SenderKey, ChannelSender]:
    """One sender per (recipient, channel) of the routes file."""
    senders: dict[SenderKey, ChannelSender] = {}
    for recipient in routes.recipients:
        for channel in recipient.channels:
            sender: ChannelSender
            if isinstance(channel, WebhookChannel):
                sender = WebhookSender(channel, http, policy, clock)
            elif isinstance(channel, ChatChannel):
                sender = ChatSender(channel, http, policy, clock)
            else:
                assert isinstance(channel, EmailChannel)
                sender = EmailSender(channel, smtp, policy, clock)
            senders[(recipient.id, channel.key)] = sender
    return senders


@dataclass(frozen=True)
class AlertsRunnerConfig:
    """How the loop talks to Kafka; built by the shell from the settings."""

    kafka: KafkaConnection
    group_id: str = "netral-alerts"
    topic: str = ALERTS
    dlq: str = dlq_topic(STAGE)
    batch_size: int = 200
    poll_timeout_ms: int = 500
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    max_poll_interval_ms: int = 15 * 60 * 1000  # a batch may wait on slow channels' retries


@dataclass
class RunnerStats:
    batches: int = 0
    records: int = 0
    dead_lettered: int = 0
    ledger_retries: int = 0


class AlertsRunner:
    """Consumes ``netral.alerts`` into an :class:`AlertDispatcher`; ``start``, ``run``, ``stop``."""

    def __init__(self, dispatcher: AlertDispatcher, codec: AvroCodec,
                 cfg: AlertsRunnerConfig) -> None:
        self.dispatcher = dispatcher
        self.codec = codec
        self.cfg = cfg
        self.stats = RunnerStats()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stop = asyncio.Event()
        self._delay = cfg.retry_initial_s

    async def start(self) -> None:
        """Check the ledger's database first (a wrong URL fails before joining), then Kafka."""
        await self.dispatcher.ledger.setup()
        kwargs = self.cfg.kafka.aiokafka_kwargs()
        self._producer = AIOKafkaProducer(**kwargs, acks="all", enable_idempotence=True)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            self.cfg.topic, **kwargs, group_id=self.cfg.group_id,
            isolation_level="read_committed", enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_interval_ms=self.cfg.max_poll_interval_ms,
        )
        try:
            await self._consumer.start()
        except BaseException:
            await self._producer.stop()
            raise

    def request_stop(self) -> None:
        """Finish the current batch, then leave :meth:`run` (safe from a signal handler)."""
        self._stop.set()

    async def stop(self) -> None:
        """Send every queued digest, leave the group, close the clients."""
        self._stop.set()
        try:
            await self.dispatcher.flush_digests(everything=True)
        except LedgerUnavailable as err:
            log.error("alerts: queued digests not sent at stop (%s); they go out on the next "
                      "start", err)
        finally:
            if self._consumer is not None:
                await self._consumer.stop()
            if self._producer is not None:
                await self._producer.stop()

    async def run(self) -> RunnerStats:
        """Process batches (and due digests) until :meth:`request_stop`."""
        while not self._stop.is_set():
            await self.run_once()
        return self.stats

    async def run_once(self) -> int:
        """Fetch, deliver and commit one batch, then send due digests; returns its size."""
        assert self._consumer is not None, "call start() first"
        fetched = await self._consumer.getmany(timeout_ms=self.cfg.poll_timeout_ms,
                                               max_records=self.cfg.batch_size)
        count = sum(len(recs) for recs in fetched.values())
        try:
            if count:
                await self._batch(fetched)
            await self.dispatcher.flush_digests()
        except LedgerUnavailable as err:
            self.stats.ledger_retries += 1
            for tp, recs in fetched.items():
                if recs and tp in self._consumer.assignment():
                    self._consumer.seek(tp, recs[0].offset)
            wait = self._delay * random.uniform(0.5, 1.0)
            log.warning("alerts: %s; retrying the same batch in %.1fs", err, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=wait)
            self._delay = min(self._delay * 2, self.cfg.retry_max_s)
            return 0
        self._delay = self.cfg.retry_initial_s
        return count

    async def _batch(self, fetched: Mapping[TopicPartition, list[ConsumerRecord]]) -> None:
        alerts: list[Alert] = []
        letters: list[tuple[ConsumerRecord, BaseException]] = []
        for records in fetched.values():
            for rec in records:
                try:
                    alerts.append(decode_alert(self.codec, rec.value))
                except InvalidMessage as err:
                    letters.append((rec, err))
        await self.dispatcher.dispatch(alerts)  # LedgerUnavailable: nothing sent to the DLQ yet
        sends = [await self._dead_letter(rec, err) for rec, err in letters]
        if sends:
            try:
                await asyncio.gather(*sends)
            except KafkaError as err:
                raise RetriableError(f"DLQ {self.cfg.dlq} did not acknowledge: {err}") from err
        await self._commit({tp: recs[-1].offset + 1 for tp, recs in fetched.items() if recs})
        self.stats.batches += 1
        self.stats.records += sum(len(r) for r in fetched.values())

    async def _dead_letter(self, rec: ConsumerRecord, err: BaseException
                           ) -> asyncio.Future[object]:
        assert self._producer is not None
        letter = DeadLetter.of(err, stage=STAGE, topic=rec.topic, partition=rec.partition,
                               offset=rec.offset)
        log.warning("dlq %s: %s[%d]@%d %s: %s", STAGE, rec.topic, rec.partition, rec.offset,
                    letter.error_class, letter.reason[:300])
        self.stats.dead_lettered += 1
        self.dispatcher.metrics.dead_letters.inc()
        kept = [(k, bytes(v)) for k, v in (rec.headers or ())]
        future: asyncio.Future[object] = await self._producer.send(
            self.cfg.dlq, key=rec.key, value=rec.value or b"", headers=kept + letter.headers())
        return future

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        owned = {tp: off for tp, off in offsets.items() if tp in self._consumer.assignment()}
        if not owned:
            return
        try:
            await self._consumer.commit(owned)
        except (CommitFailedError, IllegalStateError) as err:
            log.warning("alerts: offsets not committed (%s); the batch will be redelivered, "
                        "which the ledger makes harmless", err)
