"""stored: a case's canonical events as the book keeps them, as Avro bytes, decoded on demand.

A decoded CanonicalEvent held in a case's log cost about 4 KB of Python objects, against about
300 bytes as Avro: half the book's memory per case (tracemalloc over a 1,000-case wave). Yet the
log is read only when the case is re-folded (an event older than the newest one, a review's
merge or split) or snapshotted; an event in order is folded from the decoded event the stage
already has. So the log keeps :class:`StoredEvent`: the fold key and the few fields the rules
ask of an entry without folding it, plus the event's single-object Avro encoding (the input's
own bytes when it came framed that way, so keeping it costs nothing; the fingerprint names the
writer schema, so a later reader schema still reads it).

Re-folds come soon after the case's earlier events (a duplicate from another agency, a letter
sent before its report), so the events kept most recently stay decoded in a small LRU memo
(``RECENT`` events, a few MB): without it the re-folds' decoding cost 5-10% of the stage's CPU.

Pure: the codec is built on the shipped schemas and never talks to a registry; the memo is keyed
by the bytes, and the same bytes always decode to the same event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from cachetools import LRUCache

from schemas.codec import SOE_MARKER, AvroCodec
from schemas.errors import InvalidMessage
from schemas.models import CanonicalEvent, EventType


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A canonical event of a case: what the rules ask of it unfolded, and its Avro bytes."""

    event_id: str
    occurred_at: datetime
    event_type: EventType
    avro: bytes  # single-object encoding (SOE marker, schema fingerprint, body)


RECENT = 4096
_recent: LRUCache[bytes, CanonicalEvent] = LRUCache(maxsize=RECENT)


@cache
def _codec() -> AvroCodec:
    return AvroCodec()  # single-object framing, the shipped schemas


def keep(event: CanonicalEvent, avro: bytes | None = None) -> StoredEvent:
    """``event`` as a log keeps it; ``avro``: its bytes as consumed, reused when they are the
    single-object encoding (a Confluent-framed input would need the registry to read again,
    so it is encoded anew)."""
    if avro is None or avro[:2] != SOE_MARKER:
        avro = _codec().encode_record(event)
    _recent[avro] = event
    return StoredEvent(event.event_id, event.occurred_at, event.event_type, avro)


def load(stored: StoredEvent) -> CanonicalEvent:
    """The event again (a re-fold, a review, a snapshot written in an older format)."""
    recent = _recent.get(stored.avro)
    if recent is not None:
        return recent
    decoded = _codec().decode(stored.avro, expect=CanonicalEvent.avro_name)
    event = CanonicalEvent.from_fastavro(decoded.value)
    if event.event_id != stored.event_id:  # the bytes are not this entry's: never fold them
        raise InvalidMessage(f"stored event {stored.event_id} decodes as {event.event_id}")
    _recent[stored.avro] = event
    return event
