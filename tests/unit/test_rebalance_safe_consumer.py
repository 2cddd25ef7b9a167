"""The worker's consumer refuses the read offset of a message fetched before a rebalance.

The sequence is the one that lost events in the fault suite: the drain loop is handing over
message X (the stream's buffer is full), a rebalance bumps the generation and seeks the partition
back to its committed offset C < X, then the drain loop records X as the read offset, and Faust
would drop the re-fetched C..X-1. The real Faust app and consumer class, no broker needed.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, cast

import faust
import pytest
from faust.types import TP, Message

from schemas.kafka import KafkaConnection
from streams.app import create_app
from streams.config import StreamsConfig
from streams.rebalance import ReadOffsets, RebalanceSafeConsumer

if TYPE_CHECKING:
    from faust.transport.conductor import Conductor

pytestmark = pytest.mark.unit
P = TP("netral.raw.bawaslu", 2)


@pytest.fixture
def app() -> faust.App:
    return faust.App("test-rebalance", broker="kafka://127.0.0.1:1")


def test_a_stale_message_cannot_move_the_read_offset_past_the_seek(app: faust.App) -> None:
    offsets = ReadOffsets(app)
    app.consumer_generation_id = 1
    offsets.delivering[P] = (10, 1, 0, False)
    offsets[P] = 10  # handed over within its generation: recorded
    assert offsets[P] == 10
    offsets.delivering[P] = (40, 1, 0, False)  # X = 40 is being handed over...
    app.consumer_generation_id = 2  # ...a rebalance happens...
    offsets[P] = 25  # ...and seeks back to the committed offset C = 25
    offsets[P] = 40  # the drain loop now records X
    assert offsets[P] == 25, "the re-fetched records 25..39 would be dropped"
    assert offsets.refused == 1


def test_a_seek_while_a_message_is_handed_over_is_not_undone_by_it(app: faust.App) -> None:
    """Same generation, but the partition was sought back (to read lost records again) while
    the drain loop handed message 30 over: its write would hide the re-read 5..29."""
    epochs: defaultdict[TP, int] = defaultdict(int)
    offsets = ReadOffsets(app, epochs)
    app.consumer_generation_id = 1
    offsets.delivering[P] = (30, 1, epochs[P], False)
    epochs[P] += 1  # the seek...
    offsets[P] = 5  # ...back to offset 5
    offsets[P] = 30  # the drain loop's write for message 30
    assert offsets[P] == 5 and offsets.refused == 1


def test_faust_seeks_through_update_always_land(app: faust.App) -> None:
    offsets = ReadOffsets(app)
    app.consumer_generation_id = 1
    offsets.delivering[P] = (40, 1, 0, False)
    app.consumer_generation_id = 2
    offsets.update({P: 40})  # perform_seek() to a committed offset equal to X
    assert offsets[P] == 40
    offsets.delivering[P] = (41, 2, 0, False)
    offsets[P] = 41  # the current generation's messages move it on
    assert offsets[P] == 41 and offsets.refused == 0


def _worker_app(tmp_path: Path, guarantee: str = "at_least_once") -> faust.App:
    cfg = StreamsConfig(app_id="test-rebalance-app", data_dir=tmp_path,
                        kafka=KafkaConnection(bootstrap="127.0.0.1:1", client_id="t"),
                        processing_guarantee=guarantee)
    return create_app(cfg)


def _message(offset: int, generation: int) -> Message:
    return Message(P.topic, P.partition, offset, 0.0, 0, None, b"k", b"v", None, tp=P,
                   generation_id=generation)


def test_the_worker_app_uses_the_safe_consumer(tmp_path: Path) -> None:
    app = _worker_app(tmp_path)
    assert isinstance(app.consumer, RebalanceSafeConsumer)
    assert isinstance(app.consumer._read_offset, ReadOffsets)


def test_a_message_the_stream_skipped_is_not_committable(tmp_path: Path) -> None:
    """Faust acks what the stream skips (older generation, flow suspended): not recorded."""
    app = _worker_app(tmp_path)
    consumer = cast(RebalanceSafeConsumer, app.consumer)
    # as the conductor does once the agents subscribe
    cast("Conductor", app.topics)._acking_topics.add(P.topic)
    app.consumer_generation_id = 2
    app.flow_control.resume()
    assert consumer.ack(_message(0, 1)) is False  # fetched before the rebalance
    app.flow_control.suspend()
    assert consumer.ack(_message(1, 2)) is False  # taken while recovery holds the flow
    assert not consumer._acked[P]
    app.flow_control.resume()
    assert consumer.ack(_message(2, 2)) is True  # processed in the current generation
    assert consumer._acked[P] == [2]


def test_no_commit_over_an_offset_nobody_acked(tmp_path: Path) -> None:
    """Faust commits over one missing offset at the head of the acked ones (#606): not here."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path).consumer)
    consumer._committed_offset[P] = 79
    consumer._acked[P] = [80, 81]
    assert consumer._new_offset(P) is None  # 79 is still to come
    consumer._gap[P].addi(79, 80)  # a gap the drain loop saw (compaction, a txn marker)
    assert consumer._new_offset(P) == 82
    consumer._committed_offset[P] = 82  # as the commit of 82 records it
    consumer._acked[P] = [82, 83]
    assert consumer._new_offset(P) == 84  # contiguous from the committed offset


def _reseek(consumer: RebalanceSafeConsumer, tp: TP, offset: int, checked: bool) -> None:
    """What ``seek(tp, offset)`` records, and a batch then fetched after it."""
    consumer._sought([tp])
    consumer._expected[tp] = offset
    consumer._first_from[tp] = (offset, checked)
    consumer._fetched_epoch = {tp: consumer._seek_epoch[tp]}


async def test_offsets_read_over_after_a_seek_are_committed_over(tmp_path: Path) -> None:
    """Sought to 1 (checked within the log), the first record came at 3, and again at 3 when
    read again from 1: offsets 1 and 2 are no records (a transaction marker), and the commit
    goes over them. Seen once it proves nothing (a batch fetched before the seek took
    effect looks the same): that record is dropped and 1 read again."""
    app = _worker_app(tmp_path)
    consumer = cast(RebalanceSafeConsumer, app.consumer)
    delivered: list[int] = []

    async def stream(message: Message) -> None:
        delivered.append(message.offset)

    other = TP("netral.raw.bkn", 0)
    cast("Conductor", app.topics)._tp_to_callback.update({P: stream, other: stream})
    _reseek(consumer, P, 1, True)  # as seek(P, 1, within_log=True) records it
    consumer._committed_offset[P] = 1
    assert await consumer.callback(_message(3, 0)) is None  # once: dropped, read again
    assert consumer._refetch[P] == 1 and P not in consumer.no_records and delivered == []
    assert await consumer.callback(_message(4, 0)) is None  # the rest of its batch too
    _reseek(consumer, P, 1, False)  # the read again (not checked: the first seek was)
    await consumer.callback(_message(3, 0))
    assert consumer.no_records[P] == (1, 3)
    consumer._acked[P] = [3]
    assert consumer._new_offset(P) == 4
    await consumer.callback(_message(4, 0))  # later records say nothing more
    assert consumer.no_records[P] == (1, 3)

    # read from 5, the first record at 5: no gap
    _reseek(consumer, other, 5, True)
    await consumer.callback(Message(other.topic, 0, 5, 0.0, 0, None, b"k", b"v", None,
                                    tp=other, generation_id=0))
    assert other not in consumer.no_records and not consumer._gap[other]
    assert delivered == [3, 4, 5]

    # the first read and the second disagree: records after all (not a span)
    fourth = TP("netral.raw.ppk", 0)
    cast("Conductor", app.topics)._tp_to_callback[fourth] = stream
    _reseek(consumer, fourth, 10, True)
    assert await consumer.callback(Message(fourth.topic, 0, 20, 0.0, 0, None, b"k", b"v",
                                           None, tp=fourth, generation_id=0)) is None
    _reseek(consumer, fourth, 10, False)
    await consumer.callback(Message(fourth.topic, 0, 10, 0.0, 0, None, b"k", b"v", None,
                                    tp=fourth, generation_id=0))
    assert fourth not in consumer.no_records and fourth not in consumer._unconfirmed
    assert delivered[-1] == 10

    # a seek not checked against the log's start (the commit, after a restart): the offsets
    # read over may have been deleted by retention: committed over, but no span for the stage
    third = TP("netral.events", 0)
    cast("Conductor", app.topics)._tp_to_callback[third] = stream
    for _ in range(2):
        _reseek(consumer, third, 60, False)
        consumer._committed_offset[third] = 60
        await consumer.callback(Message(third.topic, 0, 65, 0.0, 0, None, b"k", b"v", None,
                                        tp=third, generation_id=0))
    assert third not in consumer.no_records
    consumer._acked[third] = [65]
    assert consumer._new_offset(third) == 66


async def test_a_batch_fetched_before_a_seek_never_reaches_the_streams(tmp_path: Path) -> None:
    """Faust stamps the generation at delivery: a batch requested before the seek, delivered
    after it, carries the new generation. The seek epoch tells it apart."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path).consumer)
    consumer._fetched_epoch = {P: consumer._seek_epoch[P]}  # a batch requested...
    consumer._sought([P])  # ...then a seek back to the committed offset 25
    consumer._read_offset.update({P: 25})
    assert await consumer.callback(_message(40, 0)) is None  # dropped before any stream
    consumer._read_offset[P] = 40  # the drain loop's write for it
    assert consumer._read_offset[P] == 25 and consumer.stale_dropped == 1
    consumer._fetched_epoch = {P: consumer._seek_epoch[P]}  # the next batch: fetched after
    assert consumer._fetched_epoch[P] == consumer._seek_epoch[P]


def test_a_batch_requested_before_a_seek_but_fetched_after_it_is_kept(tmp_path: Path) -> None:
    """The consumer thread runs a long poll and a seek side by side: a batch requested before
    the seek can come from the sought offset. It starts exactly there, and is kept."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path).consumer)
    consumer._sought([P])
    assert not consumer._fetched_after_seek(P, 25)  # the sought offset not known yet
    consumer._expected[P] = 25  # seek_to_committed() learnt it
    assert consumer._fetched_after_seek(P, 25)
    assert not consumer._fetched_after_seek(P, 40)  # fetched from before the seek
    changelog = TP("netral-cases-journal-changelog", 0)
    assert consumer._fetched_after_seek(changelog, 7)  # compacted: Faust's own behaviour


async def test_lost_offsets_are_no_gap_to_commit_over(tmp_path: Path) -> None:
    """Records 7..14 dropped as stale, the next delivered record 15: Faust's gap tracking would
    take 7..14 for compacted away and commit over them. Lost offsets come again: no gap.
    (Under exactly_once, where gaps are transaction markers: at_least_once records none.)"""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path, "exactly_once").consumer)
    consumer._committed_offset[P] = 5  # the commit lags: 5 and 6 done, not yet committed
    consumer._lost(P, 7)
    await consumer._add_gap(P, 7, 15)  # as the drain loop calls it for record 15
    consumer._acked[P] = [5, 6, 15, 16]
    assert consumer._new_offset(P) == 7, "7..14 would be committed over"
    consumer._read_again_from(P, 7)
    assert P not in consumer._lost_floor  # sought back to 7: read again from there
    consumer._committed_offset[P] = 7  # as the commit of 7 records it
    await consumer._add_gap(P, 20, 22)  # a gap after that (a transaction marker) still counts
    consumer._acked[P] = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 22]
    assert consumer._new_offset(P) == 23


def test_a_lost_offset_past_unacked_ones_is_read_from_the_commit(tmp_path: Path) -> None:
    """Lost offset 145 with the commit at 51: the seek back goes to 145 only when 51..144 were
    all acked (or are gaps Faust saw); otherwise they are lost too, and it goes to 51."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path).consumer)
    assert not consumer._acked_up_to(P, 51, 145)  # nothing acked: read from the commit
    consumer._acked_index[P] = set(range(51, 145))
    assert consumer._acked_up_to(P, 51, 145)
    consumer._acked_index[P].discard(100)
    assert not consumer._acked_up_to(P, 51, 145)
    consumer._gap[P].addi(100, 101)  # a transaction marker the drain loop saw
    assert consumer._acked_up_to(P, 51, 145)
    assert consumer._acked_up_to(P, 145, 145)  # nothing between


def test_the_untaken_rest_of_a_batch_is_read_again(tmp_path: Path) -> None:
    """Faust's getmany leaves out the rest of a batch when the flow stops or the generation
    changes (and a paused partition's records), silently: those offsets are marked lost."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path).consumer)
    other = TP("netral.events", 1)
    consumer._batch = {P: (10, 19), other: (3, 5)}
    consumer._reached = {P: 14}  # 15..19 never reached the callback, nothing of `other`
    consumer._check_batch_handed_over()
    assert consumer._refetch == {P: 15, other: 3}
    assert consumer._lost_floor == {P: 15, other: 3}
    consumer._refetch.clear()
    consumer._batch, consumer._reached = {P: (20, 29)}, {P: 29}  # all handed over
    consumer._check_batch_handed_over()
    assert consumer._refetch == {}


def test_a_compacted_topic_keeps_fausts_head_gap(tmp_path: Path) -> None:
    """On netral.cases (compacted) one offset missing at the head is a compacted record: the
    commit goes over it, as Faust does, instead of waiting for a record that will not come."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path).consumer)
    cases = TP("netral.cases", 3)
    consumer._committed_offset[cases] = 154
    consumer._acked[cases] = [155, 156]
    assert consumer._new_offset(cases) == 157


async def test_a_gap_over_acked_offsets_is_committed_in_one_go(tmp_path: Path) -> None:
    """Read again from its commit after a SIGKILL, a partition's read offset lagged behind the
    records handed over, so the drain loop took acked records for a gap. Faust added the gap's
    offsets to the acked ones a second time, and its run of consecutive offsets stopped at each
    duplicate: one offset per commit (robinhood/faust #625). Here the whole run commits."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path, "exactly_once").consumer)
    consumer._committed_offset[P] = 999
    await consumer._add_gap(P, 1000, 1201)  # as the drain loop calls it for record 1201
    consumer._acked[P] = list(range(999, 1328))
    consumer._acked_index[P] = set(range(999, 1328))
    assert consumer._new_offset(P) == 1328
    assert consumer._acked[P] == [] and not consumer._acked_index[P]
    assert not consumer._gap[P], "the gap below the commit is used up"


async def test_the_record_that_ends_a_gap_is_no_gap(tmp_path: Path) -> None:
    """The drain loop passes the offset of the record it hands over as the gap's end: that
    record is committable only once acked (else a crash before its ack would skip it)."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path, "exactly_once").consumer)
    consumer._committed_offset[P] = 10
    consumer._acked[P] = [10]
    await consumer._add_gap(P, 11, 13)  # 11 and 12 a transaction marker; 13 being handed over
    assert consumer._new_offset(P) == 11
    consumer._committed_offset[P] = 11
    consumer._acked[P] = [14]  # 13 not acked yet: 11, 12 are a gap, 13 is not
    assert consumer._new_offset(P) is None
    consumer._acked[P] = [13, 14]
    assert consumer._new_offset(P) == 15


def test_a_partition_never_committed_commits_from_where_its_reading_started(
        tmp_path: Path) -> None:
    """No committed offset yet: the reading's start (the beginning) is the floor. Offsets
    263.. acked while 0..262 come again after a seek back: no commit over them."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path).consumer)
    events = TP("netral.events", 0)
    consumer._start[events] = 0  # as seek_to_committed records a partition sought to its start
    consumer._acked[events] = list(range(263, 300))
    consumer._acked_index[events] = set(range(263, 300))
    assert consumer._new_offset(events) is None, "0..262 would be committed over"
    consumer._acked[events] = list(range(0, 300))
    consumer._acked_index[events] = set(range(0, 300))
    assert consumer._new_offset(events) == 300


def test_a_lost_offset_of_a_partition_never_committed_is_read_from_its_start(
        tmp_path: Path) -> None:
    """Seen: offset 464 lost, no commit yet, 0..463 not all handed over: the seek back went
    to 464 and 0..463 were never read again. It goes to the reading's start."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path).consumer)
    events = TP("netral.events", 0)
    assert consumer._read_from(events, 464) == 464  # nothing known: as before
    consumer._start[events] = 0
    assert consumer._read_from(events, 464) == 0
    consumer._acked_index[events] = set(range(0, 464))
    assert consumer._read_from(events, 464) == 464  # all before it done: only it again
    consumer._committed_offset[events] = 500
    assert consumer._read_from(events, 464) == 500  # below the commit: from the commit


async def test_without_transactions_a_jump_in_offsets_is_no_gap(tmp_path: Path) -> None:
    """at_least_once: nothing writes transaction markers into the hub's inputs, so a jump from
    37 to 592 on netral.events is records never seen (a 3-worker run committed over 38..591
    and lost them). No gap is recorded: the commit waits at 38. A changelog keeps Faust's
    gaps (compaction)."""
    consumer = cast(RebalanceSafeConsumer, _worker_app(tmp_path).consumer)
    events = TP("netral.events", 0)
    consumer._committed_offset[events] = 38
    await consumer._add_gap(events, 38, 592)  # as the drain loop calls it for record 592
    assert not consumer._gap[events]
    consumer._acked[events] = list(range(592, 600))
    consumer._acked_index[events] = set(range(592, 600))
    assert consumer._new_offset(events) is None, "38..591 would be committed over"
    changelog = TP("netral-streams-cases-journal-changelog", 0)
    await consumer._add_gap(changelog, 5, 9)
    assert consumer._gap[changelog]
    results = TP("netral.orders.siasn.results", 1)  # the SIASN adapter writes transactions
    await consumer._add_gap(results, 5, 7)
    assert consumer._gap[results]
