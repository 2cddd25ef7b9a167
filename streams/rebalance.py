"""A Faust consumer that loses nothing across rebalances (faust-streaming 0.15.3, aiokafka 0.14).

The fault suite (tests/integration/test_faults.py: two workers, one SIGKILLed while a broker is
down) lost events in about one run of four with Faust's own consumer; the lag was 0, so offsets
had been committed over records never processed. The holes, all around a rebalance (the family
of faust-streaming issues #221 and #606):

1. A batch fetched before a seek (the seek to the committed offsets after a rebalance) can be
   delivered after it, and Faust stamps the generation at delivery, so the stream takes it as
   current; its offsets become the partition's *read offset*, and the records fetched again from
   the sought offset are dropped as already read ("DROPPED MESSAGE ROFF", no log line).
2. The stream skips a message of an older generation, or taken while recovery holds the flow,
   and Faust *acks* it: its offset becomes committable although it was never processed.
3. aiokafka's ``seek_to_committed`` does not seek a partition without a committed offset, so
   after skipped messages its fetch position stays past them (the heads of fresh partitions
   were lost: ``netral.raw.bkn[2]`` offsets 0..12, ``netral.events`` 0..27).
4. Faust commits over a single missing offset at the head of the acked ones (#606).

:class:`RebalanceSafeConsumer` closes each: a seek epoch per partition drops every record of a
batch requested before the partition's last seek (and refuses its read-offset write), a skipped
message's ack is not recorded, a never-committed partition is sought to its beginning, and no
commit goes over an offset nobody acked. Each only makes the worker read again what it may not
have processed: at-least-once, and every stage drops a re-sent input by its id.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT, Message

from schemas.topics import CASES

log = logging.getLogger(__name__)
_PENDING = -1  # a seek is on its way, its offset not known yet
_MAX_HOLE = 100_000  # longer head gaps (a compacted range) are left to Faust's own gap tracking


class ReadOffsets(defaultdict[TP, int | None]):
    """Faust's per-partition read offsets, refusing the drain loop's write for a stale message.

    ``delivering`` holds, per partition, the offset and fetch generation of the message the
    drain loop is handing over; its read-offset write (the next write of that offset) is refused
    when the consumer generation moved on meanwhile. Seeks write other offsets, or go through
    ``update`` (Faust's ``perform_seek``), and always land.
    """

    def __init__(self, app: AppT) -> None:
        super().__init__(lambda: None)
        self.app = app
        # per partition: offset, generation, fetched before a later seek
        self.delivering: dict[TP, tuple[int, int | None, bool]] = {}
        self.refused = 0

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        pending = self.delivering.get(tp)
        if pending is not None and pending[0] == offset:
            del self.delivering[tp]
            _, generation, before_seek = pending
            if before_seek or generation != self.app.consumer_generation_id:
                self.refused += 1
                log.debug("consumer: read offset %s@%s refused (fetched before a seek)",
                          tp, offset)
                return
        super().__setitem__(tp, offset)


class RebalanceSafeConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with :class:`ReadOffsets` in place of its plain dict, and
    every record fetched before its partition's last seek dropped before the streams see it.

    A seek (the committed offsets after a rebalance or a flow stop, an explicit seek) bumps the
    partition's seek epoch before it is requested; a batch carries the epochs of when it was
    requested from the consumer thread (which runs seeks and fetches in request order), so a
    batch requested before a seek is recognised however late it is delivered. Faust stamps the
    generation at delivery, not at fetch, so the generation alone does not tell.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offsets = ReadOffsets(self.app)
        self._read_offset = offsets
        self._seek_epoch: defaultdict[TP, int] = defaultdict(int)
        self._fetched_epoch: dict[TP, int] = {}
        self._expected: dict[TP, int] = {}  # where each partition's last seek put it
        self.stale_dropped = 0
        self._stale_logged: dict[TP, int] = {}  # the seek epoch last warned about
        deliver: Callable[[Message], Awaitable[Any]] = self.callback

        async def callback(message: Message) -> Any:
            tp = message.tp
            stale = self._fetched_epoch.get(tp, -1) != self._seek_epoch[tp]
            if stale and self._fetched_after_seek(tp, message.offset):
                self._fetched_epoch[tp] = self._seek_epoch[tp]  # the rest of its batch too
                stale = False
            offsets.delivering[tp] = (message.offset, message.generation_id, stale)
            if stale:
                self.stale_dropped += 1
                if self._stale_logged.get(tp) != self._seek_epoch[tp]:
                    self._stale_logged[tp] = self._seek_epoch[tp]
                    log.warning("consumer: records of %s from offset %s were fetched before its "
                                "last seek: dropped, fetched again from the sought offset",
                                tp, message.offset)
                return None
            return await deliver(message)

        self.callback = callback

    def _sought(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._seek_epoch[tp] += 1
            self._expected[tp] = _PENDING  # until the sought offset is known: stale is stale

    def _fetched_after_seek(self, tp: TP, offset: int) -> bool:
        """A batch requested before the seek may still have been fetched after it (the thread
        runs a long poll and a seek side by side): then it starts exactly at the sought offset.
        Compacted topics and changelogs (no exact start to expect) keep Faust's behaviour."""
        expected = self._expected.get(tp)
        return expected is None or offset == expected or not _guarded(tp.topic)

    async def _wait_next_records(self, timeout: float  # noqa: ASYNC109 - Faust's signature
                                 ) -> tuple[Any, set[TP] | None]:
        requested = dict(self._seek_epoch)
        records, active = await super()._wait_next_records(timeout)
        if records:
            self._fetched_epoch = {tp: requested.get(tp, 0) for tp in records}
        return records, active

    async def seek(self, partition: TP, offset: int) -> None:
        self._sought([partition])
        self._expected[partition] = offset
        await super().seek(partition, offset)

    def ack(self, message: Message) -> bool:
        """Record the ack only of a message processed in the current generation with the flow
        running; the others were skipped by the stream and are fetched again after the seek."""
        generation = message.generation_id
        current = generation is None or generation == self.app.consumer_generation_id
        if current and self.app.flow_control.is_active():
            return super().ack(message)
        message.acked = True
        self._unacked_messages.discard(message)
        return False

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next committable offset, but never over an offset nobody acked.

        Faust takes a gap of exactly one offset between the committed offset and the first
        acked one for a compacted-away record and commits over it (faust-streaming #606); here
        that offset is a message skipped across a rebalance, still to be fetched again. Only
        gaps Faust saw in the fetched offsets (compaction, transaction markers) are skipped.
        """
        acked, committed = self._acked[tp], self._committed_offset[tp]
        if acked and committed is not None:
            first = min(acked)
            gaps = self._gap[tp]
            missing = range(committed, first)
            if missing and len(missing) <= _MAX_HOLE and not all(map(gaps.overlaps, missing)):
                return None
        return super()._new_offset(tp)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Seek to the committed offsets, and a partition without one to its beginning."""
        self._sought(self.assignment())
        committed = await super().seek_to_committed()
        fresh = [tp for tp, offset in committed.items() if not offset]
        if fresh and self.app.conf.consumer_auto_offset_reset == "earliest":
            log.info("consumer: %d partitions without a committed offset sought to their "
                     "beginning", len(fresh))
            await self._thread.seek_to_beginning(*fresh)
        for tp, offset in committed.items():
            start = offset if offset else await self._thread.position(tp)
            if start is None:
                self._expected.pop(tp, None)  # unknown: Faust's own behaviour
            else:
                self._expected[tp] = start
        return committed


def _guarded(topic: str) -> bool:
    """Topics read record by record from the sought offset (not compacted, not a changelog)."""
    return topic != CASES and not topic.endswith("-changelog")


class RebalanceSafeTransport(faust_aiokafka.Transport):
    Consumer = RebalanceSafeConsumer


def use_rebalance_safe_consumer(app: faust.App) -> None:
    """Give ``app`` the transport whose consumer is :class:`RebalanceSafeConsumer`."""
    app.transport = RebalanceSafeTransport(app.conf.broker_consumer, app)
