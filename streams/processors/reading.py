"""The cases stage takes each input partition in offset order, from its own journaled position.

The rule is :mod:`streams.rules.positions`; this is its I/O: the partition's beginning for a
stage that never took a record of it, and the seek back when records were skipped over. A
partition is sought back once per ``reseek_s`` at most: the records fetched before the seek,
still on their way, are skipped without seeking again. Offsets the consumer read over without
a record (transaction markers: ``netral dlq replay`` writes in transactions) are no records
either: once a read from the position has found its first record further on, that record is
the next. Records deleted by retention before the stage took them (a worker down longer than
``netral.events`` keeps its records) can never be read again: once the consumer has learnt the
partition's log start, that is an error in the log and ``netral_cases_inputs_expired_total``,
and the stage goes on from there, where a seek would only loop.
"""

from __future__ import annotations

import logging
import time

import faust
from faust.types import TP, Message

from ..metrics import StreamMetrics
from ..rebalance import RebalanceSafeConsumer
from ..rules.positions import Placement, gapless, place, position_key
from ..rules.stage import CaseStage

log = logging.getLogger(__name__)


class InOrder:
    """Admits a stage's records in offset order (see the module); one per cases agent.

    The agent never calls into the consumer's thread: Faust's revocation waits for the
    agents' records while that thread sits in the rebalance callback, so an agent waiting on
    it there never finishes (a fresh-clone run of test_cases_stream stalled that way right
    after a partition's beginning was asked for). The consumer's own task seeks back and
    learns each partition's log start (:meth:`RebalanceSafeConsumer.read_again`).
    """

    def __init__(self, app: faust.App, metrics: StreamMetrics, *, transactional: bool,
                 reseek_s: float) -> None:
        self.app = app
        self.metrics = metrics
        self.transactional = transactional
        self.reseek_s = reseek_s
        # per partition still waiting for the record at its position: that position, and when
        # it was last asked to be read again from there
        self.sought: dict[TP, tuple[int, float]] = {}
        self.fresh: set[TP] = set()  # partitions the stage never took a record of

    async def admit(self, stage: CaseStage, message: Message) -> bool:
        """Whether ``message`` is the next record ``stage`` has to take of its partition."""
        tp = message.tp
        key = position_key(message.topic, message.partition)
        position = stage.positions.get(key)
        if position is None and not stage.legacy:  # never took a record of it: from its start
            position = stage.positions[key] = 0
            self.fresh.add(tp)
        placed = place(position, message.offset, gapless(message.topic, self.transactional))
        if placed is Placement.AHEAD and position is not None \
                and self._no_records_before(tp, position, message.offset):
            placed = Placement.NEXT
        if placed is Placement.NEXT:
            self.sought.pop(tp, None)
            self.fresh.discard(tp)
            return True
        self.metrics.skipped.labels(placed.value).inc()
        if placed is Placement.AHEAD and position is not None:
            start = self._log_start(tp)
            if start is not None and start > position:  # never to be read again
                self._moved_to_start(stage, tp, key, position, start)
                return await self.admit(stage, message)
            if not self._sought_recently(tp, position):
                self._read_again(tp, position, message.offset)
        return False

    def retry(self) -> None:
        """Ask again for each partition still waiting for the record at its position once
        ``reseek_s`` has passed since the last ask (run by a timer). The stage asks only as
        records come, and a seek made meanwhile by the consumer for its own reasons (a
        record it lost, to its commit) could bring back every record past the position while
        the stage held back, as "sought recently": nothing then came to ask again (seen:
        ``netral.events[0]`` waiting at a transaction marker at 5 for good)."""
        for tp, (position, _) in list(self.sought.items()):
            if not self._sought_recently(tp, position):
                log.info("cases: %s still waiting for offset %d: reading again from there", tp,
                         position)
                self._read_again(tp, position, None)

    @staticmethod
    def advance(stage: CaseStage, message: Message) -> None:
        """``message`` was taken (or rejected to the DLQ): the position moves past it."""
        stage.positions[position_key(message.topic, message.partition)] = message.offset + 1

    def forget(self) -> None:
        """After a rebalance: the seeks asked for belonged to the old assignment."""
        self.sought.clear()

    def _no_records_before(self, tp: TP, position: int, offset: int) -> bool:
        """Whether the consumer, reading ``tp`` from ``position`` or before, found its first
        record at ``offset``: the offsets between are no records (transaction markers, as
        ``netral dlq replay`` writes), and a read again would only bring ``offset`` back."""
        consumer = self._consumer()
        span = None if consumer is None else consumer.no_records.get(tp)
        if span is None or not span[0] <= position < span[1] or offset != span[1]:
            return False
        log.info("cases: %s offsets %d..%d hold no record: taking offset %d next", tp,
                 position, offset - 1, offset)
        return True

    def _consumer(self) -> RebalanceSafeConsumer | None:
        """The worker's consumer; None under Faust's own (tests of other parts): nothing to
        ask it, nothing it knows."""
        consumer = self.app.consumer
        return consumer if isinstance(consumer, RebalanceSafeConsumer) else None

    def _log_start(self, tp: TP) -> int | None:
        consumer = self._consumer()
        return None if consumer is None else consumer.log_start.get(tp)

    def _moved_to_start(self, stage: CaseStage, tp: TP, key: str, position: int,
                        start: int) -> None:
        stage.positions[key] = start
        if tp in self.fresh:  # a stage's first reading starts where the partition does
            log.info("cases: %s starts at offset %d, its beginning", tp, start)
            return
        self.metrics.expired.inc(start - position)
        log.error("cases: %s offsets %d..%d were deleted (retention) before the stage took "
                  "them: the national record lacks them; going on from %d", tp, position,
                  start - 1, start)

    def _sought_recently(self, tp: TP, position: int) -> bool:
        """Whether ``tp`` was sought back to ``position`` less than ``reseek_s`` ago: the
        records fetched before that seek are still on their way."""
        last = self.sought.get(tp)
        return last is not None and last[0] == position \
            and time.monotonic() - last[1] < self.reseek_s

    def _read_again(self, tp: TP, position: int, offset: int | None) -> None:
        consumer = self._consumer()
        if consumer is None:
            return
        self.sought[tp] = (position, time.monotonic())
        if tp not in self.fresh and offset is not None:
            self.metrics.read_again.inc()
            log.warning("cases: %s offset %d handed over before offsets %d..%d, which the "
                        "stage never took: reading again from %d", tp, offset, position,
                        offset - 1, position)
        consumer.read_again(tp, position)
