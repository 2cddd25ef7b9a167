"""``netral alerts run``'s Kafka loop: plain aiokafka, offsets committed after the deliveries.

Per batch: fetch (read_committed), decode and validate each value as an ``Alert`` (undecodable or
invalid ones go to ``netral.dlq.alerts`` with the reason), hand the alerts to the dispatcher,
which returns once every delivery is recorded in the ledger, wait for the DLQ's acks, and only
then commit (the loop is :class:`sinks.runner_base.SinkRunner`). A crash before the commit
redelivers the batch and the ledger turns it into no new notification. If the ledger's database
is down the same batch is retried (seek back, backoff); a channel that keeps failing is recorded
as failed and the stream goes on. Digests due are sent between batches, and every queued one on
:meth:`AlertsRunner.stop`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage, explain
from schemas.kafka import KafkaConnection
from schemas.models.hub import Alert
from schemas.topics import ALERTS, DlqStage, dlq_topic

from ..runner_base import Letter, LoopStats, SinkRunner
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
class RunnerStats(LoopStats):
    ledger_retries: int = 0


class AlertsRunner(SinkRunner[Alert, RunnerStats]):
    """Consumes ``netral.alerts`` into an :class:`AlertDispatcher`; ``start``, ``run``, ``stop``."""

    name = "alerts"
    stage = STAGE
    redelivery_note = "which the ledger makes harmless"
    retry_batch_on = (LedgerUnavailable,)

    def __init__(self, dispatcher: AlertDispatcher, codec: AvroCodec,
                 cfg: AlertsRunnerConfig) -> None:
        super().__init__(codec, cfg, RunnerStats(), topics=[cfg.topic], dlq=cfg.dlq,
                         consumer_options={"max_poll_interval_ms": cfg.max_poll_interval_ms})
        self.dispatcher = dispatcher
        self.cfg = cfg

    async def _setup(self) -> None:
        await self.dispatcher.ledger.setup()

    def _decode(self, rec: ConsumerRecord) -> Alert:
        return decode_alert(self.codec, rec.value)

    async def _handle(self, items: list[tuple[ConsumerRecord, Alert]]) -> list[Letter]:
        """Returns once every delivery is in the ledger; nothing is refused for the DLQ."""
        await self.dispatcher.dispatch([alert for _, alert in items])
        return []

    async def _between_batches(self) -> None:
        await self.dispatcher.flush_digests()

    async def _before_close(self) -> None:
        """Send every queued digest."""
        try:
            await self.dispatcher.flush_digests(everything=True)
        except LedgerUnavailable as err:
            log.error("alerts: queued digests not sent at stop (%s); they go out on the next "
                      "start", err)

    def _on_batch_retry(self, err: Exception) -> None:
        self.stats.ledger_retries += 1

    def _on_dead_letter(self) -> None:
        self.dispatcher.metrics.dead_letters.inc()
