"""Alerts in, notifications out: route, dedupe against the ledger, mask, throttle, send, record.

:meth:`AlertDispatcher.dispatch` returns only when every delivery of the batch is recorded in
the ledger (sent, failed after its retries, or queued for a digest), which is what lets the
runner commit the batch's offsets. One recipient's channels are independent: a failing webhook
is recorded as failed and never holds back the email or another recipient. Deliveries to one
(recipient, channel) go out in batch order; different ones concurrently, up to ``concurrency``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from schemas.errors import HubError
from schemas.models.hub import Alert

from .channels import ChannelSender, DeliveryFailed
from .digest import Throttle
from .ledger import Claim, DeliveryLedger, Key, Queued, Status
from .masking import AlertView, view_of
from .messages import Message, alert_message, delivery_id, digest_message
from .metrics import AlertMetrics
from .routes import Recipient, Routes, route

log = logging.getLogger(__name__)
SenderKey = tuple[str, str]  # (recipient id, channel key)


@dataclass
class DispatchStats:
    """Counts since start, for logs, tests and the command's summary."""

    alerts: int = 0
    sent: int = 0
    failed: int = 0
    duplicates: int = 0
    queued: int = 0
    digests_sent: int = 0
    digests_failed: int = 0
    by_recipient: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Send:
    key: Key
    message: Message


class AlertDispatcher:
    """Plain async class: no Kafka here (the runner feeds it decoded alerts)."""

    def __init__(self, routes: Routes, ledger: DeliveryLedger,
                 senders: Mapping[SenderKey, ChannelSender], throttle: Throttle,
                 clock: Callable[[], datetime], *, concurrency: int = 8,
                 metrics: AlertMetrics | None = None) -> None:
        missing = [(r.id, c.key) for r in routes.recipients for c in r.channels
                   if (r.id, c.key) not in senders]
        if missing:
            raise ValueError(f"no sender for {missing}")
        self.routes = routes
        self.ledger = ledger
        self.senders = senders
        self.throttle = throttle
        self.clock = clock
        self.gate = asyncio.Semaphore(concurrency)
        self.stats = DispatchStats()
        self.metrics = metrics or AlertMetrics()

    async def dispatch(self, alerts: Sequence[Alert]) -> None:
        """Deliver a batch; returns once every delivery is recorded in the ledger."""
        planned: list[tuple[Alert, Recipient]] = []
        seen: set[tuple[str, str]] = set()
        for alert in alerts:
            self.stats.alerts += 1
            for recipient in route(self.routes, alert):
                if (alert.dedupe_key, recipient.id) not in seen:
                    seen.add((alert.dedupe_key, recipient.id))
                    planned.append((alert, recipient))
        keys = [Key(a.dedupe_key, r.id, c.key) for a, r in planned for c in r.channels]
        known = await self.ledger.statuses(keys)
        names: dict[str, list[str]] = {}
        claims: list[Claim] = []
        sends: list[_Send] = []
        now = self.clock()
        for alert, recipient in planned:
            mine = {c.key: known.get(Key(alert.dedupe_key, recipient.id, c.key))
                    for c in recipient.channels}
            todo = [ch for ch, status in mine.items() if status in (None, Status.PENDING)]
            repeats = sum(1 for s in mine.values() if s is not None and s is not Status.PENDING)
            self.stats.duplicates += repeats
            self.metrics.repeats.inc(repeats)
            if not todo:
                continue
            if recipient.national:
                view = view_of(alert, masked=False)
            else:
                if alert.alert_id not in names:
                    names[alert.alert_id] = await self.ledger.names_for(alert)
                view = view_of(alert, masked=True, names=names[alert.alert_id])
            fresh = all(status is None for status in mine.values())
            due = self.throttle.admit(recipient.id, now) if fresh else None
            for channel in todo:
                key = Key(alert.dedupe_key, recipient.id, channel)
                message = alert_message(view, recipient_id=recipient.id,
                                        recipient_name=recipient.name, channel=channel,
                                        dedupe_key=alert.dedupe_key)
                if mine[channel] is None:
                    claims.append(Claim(key, alert.alert_id, message.delivery_id, due_at=due,
                                        view=view.to_json() if due is not None else None))
                if due is None:
                    sends.append(_Send(key, message))
                else:
                    self.stats.queued += 1
                    self.metrics.queued.labels(recipient.id).inc()
        await self.ledger.claim(claims)
        await self._send_all(sends)

    async def _send_all(self, sends: Sequence[_Send]) -> None:
        chains: dict[SenderKey, list[_Send]] = defaultdict(list)
        for send in sends:
            chains[(send.key.recipient, send.key.channel)].append(send)

        async def run(chain: list[_Send]) -> None:
            for send in chain:
                async with self.gate:
                    await self._deliver([send.key], send.message)

        try:
            async with asyncio.TaskGroup() as tg:
                for chain in chains.values():
                    tg.create_task(run(chain))
        except ExceptionGroup as group:  # the ledger failed: surface it as a plain exception
            first = next((e for e in group.exceptions if isinstance(e, HubError)),
                         group.exceptions[0])
            raise first from None

    async def _deliver(self, keys: Sequence[Key], message: Message) -> bool:
        recipient, channel = keys[0].recipient, keys[0].channel
        sender = self.senders.get((recipient, channel))
        digest = message.kind == "digest"
        if sender is None:  # a queued digest for a recipient since removed from the routes
            await self.ledger.finish(keys, Status.FAILED, attempts=0,
                                     error="recipient or channel no longer in the routes file",
                                     delivery_id=message.delivery_id)
            self._count(digest, ok=False, recipient=recipient, channel=channel)
            return False
        started = time.monotonic()
        try:
            attempts = await sender.send(message)
        except DeliveryFailed as failed:
            self.metrics.attempts.labels(recipient, channel).inc(failed.attempts)
            log.error("alert %s to %s/%s FAILED (%d attempts): %s", message.kind, recipient,
                      channel, failed.attempts, failed.reason)
            await self.ledger.finish(keys, Status.FAILED, attempts=failed.attempts,
                                     error=failed.reason, delivery_id=message.delivery_id)
            self._count(digest, ok=False, recipient=recipient, channel=channel)
            return False
        except Exception as err:  # a bug in one channel must not stop the stream: record it
            log.exception("alert %s to %s/%s FAILED on an unexpected error", message.kind,
                          recipient, channel)
            await self.ledger.finish(keys, Status.FAILED, attempts=1,
                                     error=f"unexpected {type(err).__name__}: {err}",
                                     delivery_id=message.delivery_id)
            self._count(digest, ok=False, recipient=recipient, channel=channel)
            return False
        self.metrics.attempts.labels(recipient, channel).inc(attempts)
        self.metrics.seconds.labels(channel).observe(time.monotonic() - started)
        await self.ledger.finish(keys, Status.SENT, attempts=attempts,
                                 delivery_id=message.delivery_id)
        self._count(digest, ok=True, recipient=recipient, channel=channel)
        return True

    def _count(self, digest: bool, *, ok: bool, recipient: str, channel: str) -> None:
        self.metrics.deliveries.labels(recipient, channel, "digest" if digest else "alert",
                                       "sent" if ok else "failed").inc()
        if digest:
            if ok:
                self.stats.digests_sent += 1
            else:
                self.stats.digests_failed += 1
            return
        if ok:
            self.stats.sent += 1
            self.stats.by_recipient[recipient] = self.stats.by_recipient.get(recipient, 0) + 1
        else:
            self.stats.failed += 1

    async def flush_digests(self, *, everything: bool = False) -> int:
        """Send the digests that are due (``everything``: all queued, as on shutdown).

        Returns how many digest messages went out (or failed, recorded).
        """
        queued = await self.ledger.queued(None if everything else self.clock())
        groups: dict[tuple[str, str, datetime], list[Queued]] = defaultdict(list)
        for q in queued:
            groups[(q.key.recipient, q.key.channel, q.due_at)].append(q)
        for (recipient_id, channel, due_at), items in groups.items():
            recipient = self.routes.get(recipient_id)
            views = [AlertView.from_json(q.view) for q in items]
            keys = [q.key for q in items]
            name = recipient.name if recipient is not None else recipient_id
            message = digest_message(views, recipient_id=recipient_id, recipient_name=name,
                                     channel=channel, window_end=due_at,
                                     keys=[k.dedupe_key for k in keys])
            async with self.gate:
                await self._deliver(keys, message)
            log.info("digest of %d alerts to %s/%s (window until %s)", len(items),
                     recipient_id, channel, due_at.isoformat())
        return len(groups)


__all__ = ["AlertDispatcher", "DispatchStats", "delivery_id"]
