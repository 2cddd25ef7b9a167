"""The cases stage's state, one input at a time, and the journal it is rebuilt from.

Pure (no I/O, no wall clock). The stage's clock is the latest time its inputs carry (an event's
``recorded_at``, a command's, result's or tick's ``at``), never going back: the national record
is a function of its inputs in order, so a replay of the same inputs gives the same record.

The Faust agent decodes a message, calls :meth:`CaseStage.take`, publishes the outputs, then
journals the input. After a restart :meth:`CaseStage.replay` re-applies the journal in order and
reaches the same book, so nothing is forgotten; an input taken again (its offset was not
committed before the crash) is a no-op or re-emits the same ids (event ids, command ids,
deterministic transition and order ids), so nothing takes effect twice.

A journal entry holds the inputs of one batch: for each, ``kind`` (1 byte), length (4 bytes,
big-endian) and the input's own Avro bytes exactly as consumed, so the journal replays under any
later reader schema; one changelog write per batch, not per input. It ends with the stage's
positions after the batch (:mod:`.positions`; tag ``O``, length, JSON ``{"topic:partition":
next offset}``), in the same write as the inputs that moved them. Entries written before
positions were have none; an older worker cannot read the newer entries.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum

from pydantic import ValidationError

from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage, explain
from schemas.models import (
    AvroRecord,
    CanonicalEvent,
    DeadlineTick,
    EventType,
    PurgeCommand,
    ReviewDecision,
    SiasnOrderResult,
)
from schemas.topics import COMMANDS, DEADLINE_TICKS, EVENTS, ORDERS_SIASN_RESULTS, PURGE_COMMANDS

from .cases import (
    CaseBook,
    Outputs,
    handle_event,
    handle_order_result,
    handle_review,
    scan_deadlines,
)
from .escalation import Calendar
from .policy import Policies, apply_policy_update
from .positions import positions_from
from .purge import handle_purge, is_purged

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WIB = timezone(timedelta(hours=7), "WIB")
"""Deadlines are counted in Jakarta's working days (WIB, UTC+7, no daylight saving)."""



class InputKind(Enum):
    """What an input of the cases stage is, by the topic it came from (one byte in the journal)."""

    EVENT = b"E"
    REVIEW = b"R"
    RESULT = b"S"
    TICK = b"T"
    PURGE = b"P"


KIND_BY_TOPIC: dict[str, InputKind] = {
    EVENTS: InputKind.EVENT,
    COMMANDS: InputKind.REVIEW,
    ORDERS_SIASN_RESULTS: InputKind.RESULT,
    DEADLINE_TICKS: InputKind.TICK,
    PURGE_COMMANDS: InputKind.PURGE,
}
_MODELS: dict[InputKind, type[AvroRecord]] = {
    InputKind.EVENT: CanonicalEvent,
    InputKind.REVIEW: ReviewDecision,
    InputKind.RESULT: SiasnOrderResult,
    InputKind.TICK: DeadlineTick,
    InputKind.PURGE: PurgeCommand,
}


def jakarta_date(at: datetime) -> date:
    """The working day an instant falls on, for deadlines."""
    return at.astimezone(WIB).date()


_LENGTH = struct.Struct(">I")


_POSITIONS = b"O"


def pack(inputs: Iterable[tuple[InputKind, bytes]],
         positions: Mapping[str, int] | None = None) -> bytes:
    """One journal entry: the inputs of a batch, in the order they were taken, then the
    stage's positions after it."""
    body = b"".join(kind.value + _LENGTH.pack(len(value)) + value for kind, value in inputs)
    if positions:
        payload = json.dumps(dict(positions), sort_keys=True, separators=(",", ":")).encode()
        body += _POSITIONS + _LENGTH.pack(len(payload)) + payload
    return body


def _frames(entry: bytes) -> Iterator[tuple[bytes, bytes]]:
    at = 0
    while at < len(entry):
        tag = entry[at:at + 1]
        (size,) = _LENGTH.unpack_from(entry, at + 1)
        start = at + 1 + _LENGTH.size
        yield tag, entry[start:start + size]
        at = start + size


def read_entry(entry: bytes) -> tuple[list[tuple[InputKind, bytes]], dict[str, int] | None]:
    """A journal entry's inputs, in order, and the positions it ends with (None: written
    before positions were), in one pass over it."""
    inputs: list[tuple[InputKind, bytes]] = []
    positions = None
    for tag, value in _frames(entry):
        if tag == _POSITIONS:
            positions = positions_from(json.loads(value))
        else:
            inputs.append((InputKind(tag), value))
    return inputs, positions


def unpack(entry: bytes) -> list[tuple[InputKind, bytes]]:
    """The inputs of a journal entry, in order."""
    return read_entry(entry)[0]


def entry_positions(entry: bytes) -> dict[str, int] | None:
    """The positions a journal entry ends with (None: written before positions were)."""
    return read_entry(entry)[1]


def input_time(record: AvroRecord) -> datetime:
    """When an input says it happened: what moves the stage's clock."""
    if isinstance(record, CanonicalEvent):
        return record.recorded_at
    assert isinstance(record, ReviewDecision | SiasnOrderResult | DeadlineTick | PurgeCommand)
    return record.at


@dataclass
class CaseStage:
    """The book and the election policies of the national record, and how inputs change them.

    ``taken`` counts the inputs applied; ``entries`` the journal entries they came in, so the
    agent can tell whether the book it holds reflects its table after a rebalance. ``clock``:
    the latest input time. ``positions``: the next offset to take per input partition
    (:mod:`.positions`), as the last journal entry or snapshot left them; ``legacy``: part of
    the journal it came from was written before positions were (then a partition with no
    position yet takes its first record as it comes; else from the partition's beginning).
    """

    codec: AvroCodec
    calendar: Calendar
    policies: Policies
    book: CaseBook = field(default_factory=CaseBook)
    taken: int = 0
    entries: int = 0
    clock: datetime = EPOCH
    positions: dict[str, int] = field(default_factory=dict)
    legacy: bool = False

    def decode(self, kind: InputKind, value: bytes | None) -> AvroRecord:
        """The input's record, or InvalidMessage (undecodable, wrong schema, invalid)."""
        model = _MODELS[kind]
        decoded = self.codec.decode(value, expect=model.avro_name)
        try:
            return model.from_fastavro(decoded.value)
        except ValidationError as err:
            raise InvalidMessage(f"invalid {model.__name__}: {explain(err)}") from None

    def take(self, kind: InputKind, value: bytes | None) -> Outputs:
        """Apply one input; on InvalidMessage the stage is exactly as before."""
        record = self.decode(kind, value)
        now = max(self.clock, input_time(record))
        book, policies, out = self._apply(record, now, value)
        self.book, self.policies, self.clock = book, policies, now
        self.taken += 1
        return out

    def _apply(self, record: AvroRecord, now: datetime, value: bytes | None
               ) -> tuple[CaseBook, Policies, Outputs]:
        book, policies = self.book, self.policies
        if isinstance(record, CanonicalEvent):
            if record.event_type is EventType.POLICY_UPDATED:
                return book, apply_policy_update(policies, record), Outputs()
            book, out = handle_event(book, record, now, self.calendar, policies, avro=value)
        elif isinstance(record, ReviewDecision):
            for case_id in (record.case_id, record.target_case_id):
                if case_id is not None and is_purged(book, case_id):
                    raise InvalidMessage(f"review {record.command_id}: the person of case "
                                         f"{case_id} was purged; it takes no more reviews")
            book, out = handle_review(book, record, now, self.calendar, policies)
        elif isinstance(record, SiasnOrderResult):
            if is_purged(book, record.case_id):  # a late or repeated result: nothing to close
                return book, policies, Outputs()
            book, out = handle_order_result(book, record, now, self.calendar, policies)
        elif isinstance(record, DeadlineTick):
            book, out = scan_deadlines(book, jakarta_date(record.at), now, self.calendar,
                                       policies)
        elif isinstance(record, PurgeCommand):
            book, out = handle_purge(book, record)
        else:  # pragma: no cover - _MODELS lists every kind
            raise InvalidMessage(f"the cases stage takes no {type(record).__name__}")
        return book, policies, out

    def replay(self, entries: Iterable[bytes],
               on_error: Callable[[int, InvalidMessage], None] | None = None) -> int:
        """Re-apply journal entries in order (outputs are dropped: they were published);
        returns the inputs replayed. Works on a fresh stage or on one restored from a snapshot
        (then ``entries`` already counts the entries the snapshot covers)."""
        count, before = 0, self.taken
        for entry in entries:
            self.entries += 1
            inputs, positions = read_entry(entry)
            if positions is None:
                self.legacy = True
            else:
                self.positions.update(positions)
            for kind, value in inputs:
                try:
                    self.take(kind, value)
                except InvalidMessage as err:
                    # Journaled inputs were valid when taken; a rule changed since. Say so.
                    if on_error is not None:
                        on_error(count, err)
                count += 1
        self.taken = before + count  # the invalid ones count too: they were taken once
        return count
