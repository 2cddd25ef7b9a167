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

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT, Message
from faust.types.enums import ProcessingGuarantee
from faust.types.tuples import ack_lock
from mode import Service

from schemas.topics import CASES

from . import diagnostics
from .rules.positions import gapless

log = logging.getLogger(__name__)
_PENDING = -1  # a seek is on its way, its offset not known yet
_MAX_HOLE = 100_000  # longer head gaps (a compacted range) are left to Faust's own gap tracking


class ReadOffsets(defaultdict[TP, int | None]):
    """Faust's per-partition read offsets, refusing the drain loop's write for a stale message.

    ``delivering`` holds, per partition, the message the drain loop is handing over: its
    offset, fetch generation, the partition's seek epoch then, and whether it was dropped. Its
    read-offset write (the next write of that offset) is refused when it was dropped, or the
    generation or the seek epoch moved on meanwhile: a seek while a message is handed over
    must not be undone by it. Seeks write other offsets, or go through ``update`` (Faust's
    ``perform_seek``), and always land; a refused write only ever lets more records through.
    """

    def __init__(self, app: AppT, epochs: Mapping[TP, int] | None = None) -> None:
        super().__init__(lambda: None)
        self.app = app
        self.epochs: Mapping[TP, int] = epochs if epochs is not None else defaultdict(int)
        self.delivering: dict[TP, tuple[int, int | None, int, bool]] = {}
        self.refused = 0

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        pending = self.delivering.get(tp)
        if pending is not None and pending[0] == offset:
            del self.delivering[tp]
            _, generation, epoch, dropped = pending
            if dropped or generation != self.app.consumer_generation_id \
                    or epoch != self.epochs[tp]:
                self.refused += 1
                log.debug("consumer: read offset %s@%s refused (dropped, or sought meanwhile)",
                          tp, offset)
                return
        super().__setitem__(tp, offset)


class RebalanceSafeConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, keeping where each partition's reading stands on the thread
    itself, where the fetch position moves: what the worker's loop knows of a partition lags
    behind it by whatever is on its way from the thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # per partition: the offset after the last record a fetch returned, or the offset of
        # this consumer's last seek; unknown after a seek of another kind
        self.returned: dict[TP, int] = {}
        # (partition, start, end): offsets the fetcher went over without a record, since the
        # loop last took them (see _fetch_records)
        self.no_records: list[tuple[TP, int, int]] = []

    async def _fetch_records(self, consumer: Any, active_partitions: Any,
                             timeout: float | None = None,  # noqa: ASYNC109 - Faust's signature
                             max_records: int | None = None) -> Any:
        """Faust's fetch, noting the offsets it went over without a record. The fetcher
        returns a partition's records in offset order from its position, which only a seek
        moves otherwise (and a seek forgets :attr:`returned`): so a jump between two records
        it returns, or from where the last ones ended to the first of these, is offsets
        holding no record (a transaction's marker, an aborted write, a compacted record; or,
        between two fetches, records retention deleted meanwhile, which only a commit may go
        over). Seen from the loop, a jump could also be records Faust dropped on the way."""
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout,
                                               max_records=max_records)
        for tp, batch in records.items():
            if not batch:
                continue
            at = self.returned.get(tp)
            for record in batch:
                if at is not None and record.offset > at:
                    self.no_records.append((tp, at, record.offset))
                at = record.offset + 1
            self.returned[tp] = batch[-1].offset + 1
        return records

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self.returned.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        for tp in assigned:  # aiokafka sets their positions from the group's commit
            self.returned.pop(tp, None)
        await super().on_partitions_assigned(assigned, generation_id)

    async def _seek_wait(self, consumer: Any, partitions: Mapping[TP, int]) -> None:
        for tp in partitions:
            self.returned.pop(tp, None)
        await super()._seek_wait(consumer, partitions)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()

        async def on_thread() -> Mapping[TP, int]:
            self.returned.clear()
            return await consumer.seek_to_committed()

        return await self.call_thread(on_thread)

    async def seek_to_beginning(self, *partitions: Any) -> None:
        consumer = self._ensure_consumer()

        async def on_thread() -> None:
            for tp in partitions:
                self.returned.pop(tp, None)
            await consumer.seek_to_beginning(*partitions)

        await self.call_thread(on_thread)

    async def reading_state(self, tp: TP) -> tuple[int | None, int | None]:
        """``tp``'s fetch position and :attr:`returned`, read together on the thread."""
        consumer = self._ensure_consumer()

        async def on_thread() -> tuple[int | None, int | None]:
            return await consumer.position(tp), self.returned.get(tp)

        return await self.call_thread(on_thread)


class RebalanceSafeConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with :class:`ReadOffsets` in place of its plain dict, and
    every record fetched before its partition's last seek dropped before the streams see it.

    A seek (the committed offsets after a rebalance or a flow stop, an explicit seek) bumps the
    partition's seek epoch before it is requested; a batch carries the epochs of when it was
    requested from the consumer thread (which runs seeks and fetches in request order), so a
    batch requested before a seek is recognised however late it is delivered. Faust stamps the
    generation at delivery, not at fetch, so the generation alone does not tell.
    """

    hole_check_s: float = 10.0  # NETRAL_WORKER_HOLE_CHECK_S; 0: no watch
    _thread: RebalanceSafeConsumerThread
    stop_commit_timeout_s: float = 15.0  # the final commit's bound (a stop must end)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holes_healed = 0
        self.lost_read_again = 0
        self._refetch: dict[TP, int] = {}  # per partition: the lowest offset to read again
        self._stage_wants: dict[TP, int] = {}  # per partition: where a stage asked to read from
        self.log_start: dict[TP, int] = {}  # per partition: its first offset, as last asked
        self._lost_floor: dict[TP, int] = {}  # per partition: lowest lost offset not seen again
        self._batch: dict[TP, tuple[int, int]] = {}  # the last batch: first, last offset
        self._reached: dict[TP, int] = {}  # the last offset of it that reached the callback
        self._refetch_wanted = asyncio.Event()
        self._seek_epoch: defaultdict[TP, int] = defaultdict(int)
        offsets = ReadOffsets(self.app, self._seek_epoch)
        self._read_offset = offsets
        self._fetched_epoch: dict[TP, int] = {}
        self._expected: dict[TP, int] = {}  # where each partition's last seek put it
        # per partition: the offset of its last seek while no record has come from there yet,
        # and whether that offset was checked against the log's start before the seek
        self._first_from: dict[TP, tuple[int, bool]] = {}
        # per partition: the last span of offsets, checked to be within the log, that a read
        # went over without a record: [start, end)
        self.no_records: dict[TP, tuple[int, int]] = {}
        # partitions without a committed offset: the offset their reading started from
        self._start: dict[TP, int] = {}
        # the group's committed offsets: as the last seek read them, or the last commit made
        self._known_committed: dict[TP, int | None] = {}
        self.stale_dropped = 0
        self._stale_logged: dict[TP, int] = {}  # the seek epoch last warned about
        # per partition: a span seen once without a record (start, first record, checked),
        # until a second read from its start shows the same first record (see callback)
        self._unconfirmed: dict[TP, tuple[int, int, bool]] = {}
        deliver: Callable[[Message], Awaitable[Any]] = self.callback

        async def callback(message: Message) -> Any:
            tp = message.tp
            self._reached[tp] = message.offset
            stale = self._fetched_epoch.get(tp, -1) != self._seek_epoch[tp]
            if stale and self._fetched_after_seek(tp, message.offset):
                self._fetched_epoch[tp] = self._seek_epoch[tp]  # the rest of its batch too
                stale = False
            epoch = self._seek_epoch[tp]
            offsets.delivering[tp] = (message.offset, message.generation_id, epoch, stale)
            if stale:
                self.stale_dropped += 1
                if self._stale_logged.get(tp) != self._seek_epoch[tp]:
                    self._stale_logged[tp] = self._seek_epoch[tp]
                    log.warning("consumer: records of %s from offset %s were fetched before its "
                                "last seek: dropped, fetched again from the sought offset",
                                tp, message.offset)
                self._lost(tp, message.offset)
                return None
            sought = self._first_from.pop(tp, None)
            if sought is not None and message.offset > sought[0]:
                seen = self._unconfirmed.pop(tp, None)
                if seen is None or seen[:2] != (sought[0], message.offset):
                    # Once is not proof: a batch fetched before the seek took effect looks
                    # the same (seen: 22..105 taken for empty, all records). Read again from
                    # the sought offset; the same first record again proves the span. This
                    # record and the rest of its batch are dropped and come again.
                    self._unconfirmed[tp] = (sought[0], message.offset, sought[1])
                    self._seek_epoch[tp] += 1
                    offsets.delivering[tp] = (message.offset, message.generation_id,
                                              self._seek_epoch[tp], True)
                    self._lost(tp, sought[0])
                    return None
                self._read_over(tp, sought[0], message.offset, checked=sought[1] or seen[2])
            elif sought is not None:
                self._unconfirmed.pop(tp, None)  # the sought offset's record came: no span
            floor = self._lost_floor.get(tp)
            if floor is not None and message.offset <= floor:
                del self._lost_floor[tp]  # it is here again
            try:
                return await deliver(message)
            except asyncio.CancelledError:  # the flow stopped while the stream's buffer was full
                self.handed_to_no_stream(message)
                raise

        self.callback = callback

    def _new_consumer_thread(self) -> RebalanceSafeConsumerThread:
        return RebalanceSafeConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _sought(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._seek_epoch[tp] += 1
            self._expected[tp] = _PENDING  # until the sought offset is known: stale is stale

    def _seek_done(self, tps: Iterable[TP]) -> None:
        """The seek has run on the consumer's thread. A batch asked for between
        :meth:`_sought` and now was fetched from the old position if the thread fetched it
        before the seek ran, yet it carries the new epoch: it is stale from now on too, unless
        it starts exactly at the sought offset (:meth:`_fetched_after_seek`). Seen: after a
        broker's death, a seek to the committed 24 while the thread still fetched from 59;
        the records from 59, taken as the first after the seek, made 24..58 "no record" and the
        commit went over twelve records never read (the fault suite, under CPU load)."""
        for tp in tps:
            self._seek_epoch[tp] += 1

    def _fetched_after_seek(self, tp: TP, offset: int) -> bool:
        """A batch requested before the seek may still have been fetched after it (the thread
        runs a long poll and a seek side by side): then it starts exactly at the sought offset.
        Compacted topics and changelogs (no exact start to expect) keep Faust's behaviour."""
        expected = self._expected.get(tp)
        return expected is None or offset == expected or not _guarded(tp.topic)

    async def _wait_next_records(self, timeout: float  # noqa: ASYNC109 - Faust's signature
                                 ) -> tuple[Any, set[TP] | None]:
        self._check_batch_handed_over()
        requested = dict(self._seek_epoch)
        records, active = await super()._wait_next_records(timeout)
        # No fetch is under way between two of these calls: the thread's spans are all here.
        spans, self._thread.no_records = self._thread.no_records, []
        for tp, start, end in spans:
            self._no_records_in(tp, start, end)
        if records:
            self._fetched_epoch = {tp: requested.get(tp, 0) for tp in records}
            self._batch = {tp: (rs[0].offset, rs[-1].offset) for tp, rs in records.items()
                           if rs and _watched(tp.topic)}
            self._reached = {}
        return records, active

    def _check_batch_handed_over(self) -> None:
        """Faust's ``getmany`` leaves out, without a word, the rest of a batch once the flow
        stops or the generation changes, and the records of a partition no longer active; the
        fetch position has moved past them all the same. Whatever of the last batch never
        reached the callback is lost, and read again."""
        for tp, (first, last) in self._batch.items():
            reached = self._reached.get(tp)
            if reached is None or reached < last:
                self._lost(tp, first if reached is None else reached + 1)
        self._batch = {}

    async def seek(self, partition: TP, offset: int, *, within_log: bool = False) -> None:
        """Faust's seek, with the bookkeeping above; ``within_log``: ``offset`` was checked
        not to be below the partition's log start just before."""
        self._sought([partition])
        self._expected[partition] = offset
        self._first_from[partition] = (offset, within_log)
        self._read_again_from(partition, offset)
        await super().seek(partition, offset)
        self._seek_done([partition])

    async def _seek(self, partition: TP, offset: int) -> None:
        """Seek on the consumer's own thread. Faust's aiokafka driver calls aiokafka's
        ``seek`` from the caller's thread (the worker's event loop): it deletes the fetcher's
        prefetched records, which the consumer thread iterates meanwhile, and completes
        futures of the thread's loop from outside it (its callbacks then run whenever that
        loop happens to wake). Faust itself never seeks that way (its seeks go through
        ``call_thread``); this consumer does, for every lost record it reads again."""
        thread = self._thread

        async def seek_in_thread() -> None:
            thread._ensure_consumer().seek(partition, offset)
            thread.returned[partition] = offset

        await thread.call_thread(seek_in_thread)

    def ack(self, message: Message) -> bool:
        """Record the ack only of a message processed in the current generation with the flow
        running; the others were skipped by the stream and are fetched again after the seek."""
        generation = message.generation_id
        current = generation is None or generation == self.app.consumer_generation_id
        if current and self.app.flow_control.is_active():
            return super().ack(message)
        message.acked = True
        self._unacked_messages.discard(message)
        self._lost(message.tp, message.offset)
        return False

    def handed_to_no_stream(self, message: Message) -> None:
        """The drain loop's message was not delivered: its read offset must not move on, and
        it must be read again."""
        offsets = self._read_offset
        if isinstance(offsets, ReadOffsets):
            offsets.delivering[message.tp] = (message.offset, message.generation_id,
                                              self._seek_epoch[message.tp], True)
        self._lost(message.tp, message.offset)

    def read_again(self, tp: TP, offset: int) -> None:
        """A stage found that ``tp``'s records from ``offset`` on never reached it: the task
        that reads lost records again seeks there, whatever the commit says (the stage's own
        position is the truth; the commit may have gone past them)."""
        known = self._stage_wants.get(tp)
        self._stage_wants[tp] = offset if known is None else min(known, offset)
        self._refetch_wanted.set()

    def _lost(self, tp: TP, offset: int) -> None:
        """``offset`` of ``tp`` was handed to no stream, or skipped by one: it must be read
        again. The seek that made it stale usually brings it back; :meth:`_read_lost_again`
        makes sure, should the fetch position already be past it."""
        if _watched(tp.topic):
            known = self._refetch.get(tp)
            self._refetch[tp] = offset if known is None else min(known, offset)
            floor = self._lost_floor.get(tp)
            self._lost_floor[tp] = offset if floor is None else min(floor, offset)
            self._refetch_wanted.set()

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust's gap tracking (offsets it never saw are compacted away or transaction
        markers, and are committed over), but never from a lost offset on: the next record
        the drain loop sees after records dropped as stale is past them, and they come again.

        Faust's drain loop passes the offset of the record it is about to hand over as the
        gap's (inclusive) end: that record is no gap, and is committable only once acked.

        Without the worker's own transactions (``at_least_once``) a topic read record by
        record that no transactional producer writes has no gaps at all: a jump there is
        records this consumer never saw (a seek past them), and committing over them lost
        554 records of ``netral.events`` in a 3-worker run. So none is recorded; the commit
        waits at them and the watchdog seeks back to it."""
        transactions = self.app.conf.processing_guarantee is ProcessingGuarantee.EXACTLY_ONCE
        if gapless(tp.topic, transactions):
            return
        offset_to -= 1
        floor = self._lost_floor.get(tp)
        if floor is not None and offset_to >= floor:
            offset_to = floor - 1
            if offset_to < offset_from:
                return
        await super()._add_gap(tp, offset_from, offset_to)

    def _read_over(self, tp: TP, start: int, first: int, *, checked: bool) -> None:
        """Read from ``start`` (a seek), the first record to come was at ``first``: the
        offsets between hold no record (transaction markers, or records of aborted
        transactions; ``netral dlq replay`` writes the raw topics and ``netral.events`` in
        transactions), or, unless ``checked`` (the seek's offset was within the log), were
        deleted by retention. Either way a gap the commit goes over: on a topic where every
        offset used to be taken for a record, a marker past the commit held it there for ever
        (seen: ``netral.raw.bawaslu[3]`` committed at 1, the marker, acked 2..1553, sought back
        every 20 s). The records come in offset order after a seek, so nothing between can
        still be on its way. Only a checked span tells the cases stage its next record
        (:attr:`no_records`): records lost to retention are an error it must report."""
        if checked:
            self.no_records[tp] = (start, first)
        self._no_records_in(tp, start, first)
        floor = self._lost_floor.get(tp)
        if floor is not None and start <= floor < first:
            del self._lost_floor[tp]  # no record was lost there
        log.info("consumer: %s offsets %d..%d hold no record (read from %d, the first record "
                 "came at %d): transaction markers or aborted writes%s, committed over", tp,
                 start, first - 1, start, first, "" if checked else ", or deleted by retention")

    def _read_again_from(self, tp: TP, offset: int) -> None:
        """``tp`` is read again from ``offset``: lost offsets from there on are no longer lost."""
        floor = self._lost_floor.get(tp)
        if floor is not None and offset <= floor:
            del self._lost_floor[tp]

    @Service.task
    async def _read_lost_again(self) -> None:
        """Seek back to each lost offset whose partition's fetch position is already past it
        (a batch dropped as stale that was in fact fetched after the seek, a message skipped
        after the seek re-read it). Seeking back re-reads only: nothing is skipped."""
        while not self.should_stop:
            with contextlib.suppress(TimeoutError):  # look again every second regardless
                await asyncio.wait_for(self._refetch_wanted.wait(), 1.0)
            if (not self._refetch and not self._stage_wants) or self.app.rebalancing \
                    or not self.flow_active:
                continue
            self._refetch_wanted.clear()
            lost, self._refetch = self._refetch, {}
            wanted, self._stage_wants = self._stage_wants, {}
            assigned = self.assignment()
            for tp, offset in wanted.items():
                lost.pop(tp, None)  # read from where its stage stands: that covers it
                if tp in assigned:
                    start = (await self._thread.earliest_offsets(tp)).get(tp, 0)
                    self.log_start[tp] = start
                    self.lost_read_again += 1
                    log.info("consumer: %s read again from %s, as its stage asked (its log "
                             "starts at %s)", tp, max(offset, start), start)
                    await self.seek(tp, max(offset, start), within_log=True)
            for tp, offset in lost.items():
                if tp not in assigned:
                    self._lost_floor.pop(tp, None)  # moved to another worker
                    continue
                start = self._read_from(tp, offset)
                position = await self._thread.position(tp)
                if position is not None and position > start:
                    self.lost_read_again += 1
                    log.info("consumer: %s offset %s was handed to no stream and the fetch "
                             "position is already %s: reading again from %s", tp, offset,
                             position, start)
                    await self.seek(tp, start)

    def _read_from(self, tp: TP, lost: int) -> int:
        """Where to read ``tp`` again from when offset ``lost`` was lost: there, or from the
        commit (the reading's start if it has none) when offsets before it were lost too."""
        committed = self._commit_floor(tp)
        if committed is not None and lost < committed:
            # done and committed below the commit, but what was lost from it on (a dropped
            # batch can span it) is not
            if self._lost_floor.get(tp, committed) < committed:
                self._lost_floor[tp] = committed
            return committed
        if committed is not None and not self._acked_up_to(tp, committed, lost):
            # offsets between the commit and the lost one were lost too, unnoticed (seen:
            # 51..144 never acked, the seek went to 145): read from the commit
            return committed
        return lost

    def _commit_floor(self, tp: TP) -> int | None:
        """The offset ``tp``'s commit stands at: the committed one, or for a partition never
        committed the offset its reading started from (its beginning). Without that start a
        never-committed partition had no floor: a fault-suite run lost offset 464 of
        ``netral.events`` with 0..463 not yet all handed over, sought to 464 and never read
        them again, and its first commit went over records never acked."""
        committed = self._committed_offset.get(tp)
        return committed if committed is not None else self._start.get(tp)

    def _acked_up_to(self, tp: TP, committed: int, offset: int) -> bool:
        """Whether every offset from ``committed`` up to ``offset`` (excluded) was acked or
        is a gap Faust saw (compaction, transaction markers); a range too long to walk counts
        as acked, and is left to the watchdog."""
        missing = range(committed, offset)
        if len(missing) > _MAX_HOLE:
            return True
        acked, gaps = self._acked_index.get(tp) or set(), self._gap[tp]
        return all(o in acked or gaps.overlaps(o) for o in missing)

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next committable offset, but never over an offset nobody acked, and each
        offset counted once.

        Faust takes a gap of exactly one offset between the committed offset and the first
        acked one for a compacted-away record and commits over it (faust-streaming #606); here
        that offset is a message skipped across a rebalance, still to be fetched again. Only
        gaps Faust saw in the fetched offsets (compaction, transaction markers) are skipped.

        Faust adds a gap's offsets to the acked ones without looking whether they were acked
        too, and its run of consecutive offsets stops at a duplicate, so each commit then moved
        one offset on (robinhood/faust #625): seen after a SIGKILL, a partition read again from
        its commit was committed at one record per commit interval for minutes. Here the acked
        offsets and the gaps below them are merged as a set, and the run is committed whole.
        """
        acked, committed = self._acked[tp], self._committed_offset[tp]
        if not acked:
            return None
        floor = self._commit_floor(tp)
        if (floor is not None and _guarded(tp.topic)  # compacted: Faust's way
                and not self._acked_up_to(tp, floor, min(acked))):
            return None
        done = set(acked)
        gaps = self._gap[tp]
        if gaps:
            top = max(done)
            spans = gaps.overlap(0, top + 1)
            if spans:
                done.update(o for span in spans for o in range(span.begin, span.end))
                gaps.chop(0, max(span.end for span in spans))
        offsets = sorted(o for o in done if committed is None or o >= committed)
        if not offsets:
            acked.clear()
            return None
        if committed and offsets[0] - committed > 1:  # Faust's own head check
            acked[:] = offsets
            return None
        end = 1
        while end < len(offsets) and offsets[end] == offsets[end - 1] + 1:
            end += 1
        acked[:] = offsets[end:]
        self._acked_index[tp].difference_update(offsets[:end])
        return offsets[end - 1] + 1

    async def _commit_offsets(self, offsets: Mapping[TP, int],
                              start_new_transaction: bool = True) -> bool:
        """Faust's commit, except that a commit that did not happen does not move the
        committed offsets Faust remembers (it records them whatever the outcome). A commit in
        flight across a rebalance fails, and would set the offset back below the one the
        seek read from the group: that partition's commit then waits for ever on records
        another worker processed."""
        did_commit = await super()._commit_offsets(offsets, start_new_transaction)
        known = self._known_committed
        if did_commit:
            known.update({tp: self._committed_offset.get(tp) for tp in offsets})
        else:
            for tp in offsets:
                self._committed_offset[tp] = known.get(tp)
        return bool(did_commit)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        """Faust's commit, which runs on the consumer's thread, except when that thread is
        gone: a crashed agent crashes every service, the thread among them, and the
        consumer's own stop then commits through it and waits for ever (seen: a worker with
        a crashed agent never exited, its log ending at the consumer's "Stopping..."). Those
        offsets stay uncommitted; the next start reads their records again (at-least-once).
        """
        thread = self._thread
        if thread.should_stop:
            log.warning("consumer: the consumer's thread has stopped (state %s): %d partitions' "
                        "offsets not committed, their records are read again at the next "
                        "start", thread.state, len(offsets))
            return False
        if not self.should_stop:
            return await super()._commit(offsets)
        try:  # stopping: the thread may stop under the call, whose answer then never comes
            return await asyncio.wait_for(super()._commit(offsets), self.stop_commit_timeout_s)
        except TimeoutError:
            log.warning("consumer: the final commit of %d partitions did not complete in %.0f s "
                        "(thread state %s): their records are read again at the next start",
                        len(offsets), self.stop_commit_timeout_s, thread.state)
            return False

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Faust forgets a revoked partition's offsets; so does this consumer's bookkeeping."""
        for tp in revoked:
            for state in (self._known_committed, self._lost_floor, self._refetch,
                          self._stale_logged, self._start, self._stage_wants, self._unconfirmed,
                          self.log_start):
                state.pop(tp, None)
        await super().on_partitions_revoked(revoked)

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
            self._known_committed[tp] = offset if offset else None
            start = offset if offset else await self._thread.position(tp)
            self._start.pop(tp, None)
            if start is None:
                self._expected.pop(tp, None)  # unknown: Faust's own behaviour
            else:
                self._expected[tp] = start
                self._first_from[tp] = (start, False)
                self._read_again_from(tp, start)
                if not offset:
                    self._start[tp] = start
        self._seek_done(committed)
        return committed


    @Service.task
    async def _watch_holes(self) -> None:
        """The safety net under the fixes above: a partition with records past its committed
        offset, nothing of it in flight, and neither its committed nor its read offset moving
        for a whole interval, is stuck behind records it was never handed. It is sought back
        to its committed offset, so it reads them again (at-least-once; every stage drops a
        re-sent input by its id), with a warning that names the partition and its state."""
        interval = self.hole_check_s
        if not interval:
            return
        seen: dict[TP, tuple[int, int | None]] = {}
        idle: set[TP] = set()
        waiting: dict[TP, tuple[tuple[int, int | None, int, int], int]] = {}
        held = 0  # intervals in a row with the flow stopped, a rebalance or a recovery
        while not self.should_stop:
            await self.sleep(interval)
            if not self.flow_active or self.app.rebalancing or self.app.in_recovery:
                seen.clear()
                idle.clear()
                held += 1
                if held % 4 == 0:
                    log.warning("consumer: no stream taken for %.0f s (flow active %s, "
                                "rebalancing %s, in recovery %s, generation %s)",
                                held * interval, self.flow_active, self.app.rebalancing,
                                self.app.in_recovery, self.app.consumer_generation_id)
                continue
            held = 0
            waiting = self._report_waiting(waiting)
            now = self._stuck_candidates()
            for tp, state in list(now.items()):
                if seen.get(tp) == state:
                    await self._heal(tp, state[0])
                    del now[tp]
            seen = now
            inactive = self._inactive_with_lag()
            for tp in inactive & idle:
                log.warning("consumer: %s assigned with records to read but not fetched for a "
                            "whole interval (paused %s, buffer full %s): resumed", tp,
                            tp in self._paused_partitions, tp in self._buffered_partitions)
                self.holes_healed += 1
                self._buffered_partitions.discard(tp)
                self.resume_partitions([tp])
            idle = inactive - idle

    def _report_waiting(self, before: dict[TP, tuple[tuple[int, int | None, int, int], int]]
                        ) -> dict[TP, tuple[tuple[int, int | None, int, int], int]]:
        """Partitions the watchdog cannot heal, because records of them are in flight: their
        (committed, read, lowest in-flight offset, in-flight count), and for how many intervals
        in a row it has not changed. At WAITING_REPORT intervals it is reported once, with
        what every task waits on (the SIGUSR1 dump): a stage holding records it never finishes
        (a send that never completes, a message lost in a buffer but still counted in flight)
        stops the partition's commit with nothing else said."""
        now: dict[TP, tuple[tuple[int, int | None, int, int], int]] = {}
        reported = False
        flight: dict[TP, list[int]] = defaultdict(list)
        for m in self._unacked_messages:
            flight[m.tp].append(m.offset)
        assigned = self.assignment()
        for tp, offsets in flight.items():
            if tp not in assigned or not self._looked_after(tp):
                continue
            committed = self._committed_with_records_past(tp)
            if committed is None:
                continue
            state = (committed, self._read_offset.get(tp), min(offsets), len(offsets))
            last, intervals = before.get(tp, (None, 0))
            intervals = intervals + 1 if last == state else 1
            now[tp] = (state, intervals)
            if intervals == WAITING_REPORT:
                log.warning("consumer: %s has not moved for %.0f s with records in flight: "
                            "committed offset %s, read offset %s, highwater %s, %d in flight "
                            "from offset %s; the stage holding them may be stuck", tp,
                            intervals * self.hole_check_s, committed, state[1],
                            self.highwater(tp), len(offsets), state[2])
                reported = True
        if reported:  # what the stages wait on, for whoever reads the log (a CI run's too)
            diagnostics.log_task_chains(asyncio.get_running_loop(), "records in flight stuck")
        return now

    def _stuck_candidates(self) -> dict[TP, tuple[int, int | None]]:
        """Guarded, active partitions with records past their committed offset and nothing in
        flight: their (committed, read) offsets, to compare one interval later."""
        in_flight = {m.tp for m in self._unacked_messages}
        active = self._get_active_partitions()
        found: dict[TP, tuple[int, int | None]] = {}
        for tp in self.assignment():
            if tp in in_flight or tp not in active or not self._looked_after(tp):
                continue
            committed = self._committed_with_records_past(tp)
            if committed is not None:
                found[tp] = (committed, self._read_offset.get(tp))
        return found

    def _inactive_with_lag(self) -> set[TP]:
        """Guarded partitions assigned here, with records past their committed offset, that
        the fetcher is not asked for (paused, or left out while their stream's buffer was full)."""
        active = self._get_active_partitions()
        return {tp for tp in self.assignment()
                if tp not in active and self._looked_after(tp)
                and self._committed_with_records_past(tp) is not None}

    def _looked_after(self, tp: TP) -> bool:
        """A partition the watchdog looks after: a watched topic whose records are acked."""
        return _watched(tp.topic) and bool(self.app.topics.acks_enabled_for(tp.topic))

    def _committed_with_records_past(self, tp: TP) -> int | None:
        """``tp``'s committed offset when records lie past it, else None (read to the end, or
        no offset known). Never committed reads from 0 under ``earliest``; under exactly_once
        a transaction's commit marker takes the partition's last offset, so that one record
        past the commit is not lag."""
        committed = self._committed_offset.get(tp)
        if committed is None and self.app.conf.consumer_auto_offset_reset == "earliest":
            committed = 0
        highwater = self.highwater(tp)
        slack = 1 if self.in_transaction else 0
        if committed is None or highwater is None or highwater <= committed + slack:
            return None
        return committed

    async def _heal(self, tp: TP, committed: int) -> None:
        position, returned = await self._thread.reading_state(tp)
        if returned == committed and position is not None and position > committed:
            self._passed_over(tp, committed, position)
            return
        acked = sorted(self._acked.get(tp) or ())
        log.warning("consumer: %s stuck at committed offset %s (read offset %s, fetch position "
                    "%s, highwater %s, acked %s..%s of %d, seek epoch %s, fetched epoch %s, "
                    "sought %s, stale dropped %d, read offsets refused %d): sought back to it",
                    tp, committed, self._read_offset.get(tp), position, self.highwater(tp),
                    acked[0] if acked else None, acked[-1] if acked else None, len(acked),
                    self._seek_epoch[tp], self._fetched_epoch.get(tp), self._expected.get(tp),
                    self.stale_dropped, self._read_offset.refused
                    if isinstance(self._read_offset, ReadOffsets) else 0)
        self.holes_healed += 1
        await self.seek(tp, committed)

    def _no_records_in(self, tp: TP, start: int, end: int) -> None:
        """Offsets [start, end) of ``tp`` hold no record (proven on the consumer's thread):
        a gap the commit goes over at once, where the watchdog would have sought the partition
        back to it two intervals later (and warned)."""
        with ack_lock:
            self._gap[tp].addi(start, end)
            self._gap[tp].merge_overlaps()
        log.debug("consumer: %s offsets %d..%d hold no record (the fetcher went over them): "
                  "committed over", tp, start, end - 1)

    def _passed_over(self, tp: TP, start: int, end: int) -> None:
        """The fetcher read ``tp`` on from ``start`` to ``end`` without returning a record,
        and every record it did return, up to ``start``, is committed (both read together on
        its thread, so nothing of it can still be on its way): those offsets hold no record
        (a transaction's marker as the partition's last offset, records of an aborted one, or
        of a log start moved on), and the commit goes over them. Without a record after them
        nothing else proves it: the watchdog took the partition for stuck, sought it back to
        the marker every two intervals and warned each time, and the group's lag stayed 1."""
        self._no_records_in(tp, start, end)
        with ack_lock:
            if end - 1 not in self._acked_index[tp]:  # the gap commits once something is acked
                self._acked_index[tp].add(end - 1)
                self._acked[tp].append(end - 1)
        log.info("consumer: %s offsets %d..%d hold no record (the fetch position is %d, every "
                 "record before it committed): transaction markers or aborted writes, "
                 "committed over", tp, start, end - 1, end)


WAITING_REPORT = 3
"""Watch intervals with a partition's records in flight and nothing moving before it is
reported (30 s at the default NETRAL_WORKER_HOLE_CHECK_S)."""


def _watched(topic: str) -> bool:
    """Topics whose lost records are read again and whose stuck partitions are sought back:
    every input but the changelogs (read by Faust's recovery, not by the streams)."""
    return not topic.endswith("-changelog")


def _guarded(topic: str) -> bool:
    """Topics read record by record from the sought offset (not compacted, not a changelog)."""
    return topic != CASES and not topic.endswith("-changelog")


class RebalanceSafeTransport(faust_aiokafka.Transport):
    Consumer = RebalanceSafeConsumer


def use_rebalance_safe_consumer(app: faust.App, hole_check_s: float = 10.0) -> None:
    """Give ``app`` the transport whose consumer is :class:`RebalanceSafeConsumer`, watching
    for stuck partitions every ``hole_check_s`` seconds (0: not at all)."""
    consumer = type("RebalanceSafeConsumer", (RebalanceSafeConsumer,),
                    {"hole_check_s": hole_check_s, "__module__": __name__})
    transport = type("RebalanceSafeTransport", (RebalanceSafeTransport,),
                     {"Consumer": consumer, "__module__": __name__})
    app.transport = transport(app.conf.broker_consumer, app)
