"""snapshot: the cases stage's book as bytes, so a restart reads it instead of replaying inputs.

Pure (no I/O): :class:`SnapshotWriter` turns a :class:`~streams.rules.stage.CaseStage` into
chunks of at most ``chunk_bytes`` (well below Kafka's 1 MB message limit) plus a
:class:`Manifest`; :func:`load` turns the manifest and its chunks back into a stage that behaves
exactly as the original (the unit tests feed both the same inputs and compare every output and
the final book). The processor stores chunks and manifest in a changelog-backed table and then
drops the journal entries the snapshot covers (:mod:`streams.processors.cases`).

Format 2 (``FORMAT``; format 1 is still read, see ``READS``). The manifest is JSON:
``format``, ``entries`` (journal entries applied: the next entry's index), ``taken``,
``cases``, ``bytes``, and ``chunks``: each chunk's length and SHA-256. The chunks are
consecutive slices of one zlib stream (RFC 1950, level 1: the book shrinks about 5x for a few
ms per MB) of the body: ``MAGIC`` + format (u16 BE), then frames,
each ``tag`` (1 byte) + length (u32 BE) + payload; ``J`` = UTF-8 JSON, ``A`` = a hub
record in the codec's Avro single-object encoding (so a later reader schema still reads it).
Frames in order:

1. ``J`` header: clock (ISO), taken, entries, policies (ElectionPolicy as JSON, in order),
   review commands and adoptable register numbers (sets: sorted), and the counts below.
2. cases: ``J`` keys, then one ``A`` CaseRecord per case, in the map's order.
3. logs: per case ``J`` (key, opening, entries, fold) followed by ``A`` frames: its event
   entries, parked events not among its entries, then the fold's record when it cannot be
   derived from the published case. An event entry is ``{"t": "E", id, at, type}`` and its
   frame is the log's :class:`~streams.rules.stored.StoredEvent` bytes as they are, so neither
   writing nor loading decodes a case's events. (Format 1 wrote ``"E"`` and the decoded event,
   re-encoded: the book held decoded events then.)
4. by_ref, by_nip, persons, nameless, nameless_by_kind, seen: one ``J`` each, ``[key, value]``
   pairs in the map's order (KnownPerson via pydantic's JSON mode). Format 1's
   nameless_by_kind was keyed by kind alone; reading it, the index is rebuilt from the cases.
5. orphans: ``J`` ``[register number, count]`` pairs, then the waiting events as ``A`` frames.

Stored, not re-derived: every map keeps its iteration order (the rules iterate ``persons`` and
``cases``; the PMaps are rebuilt by inserting in that order, so each bucket's order is the
original's), and a case's :class:`~streams.rules.merge.Fold` is stored rather than re-folded:
re-folding costs what the replay costs and, after a policy update, would compute deadlines with
today's policy instead of the one the fold saw. Two things are shared instead of repeated, each
checked while writing (no assumption about the rules): a fold's record is stored as "the
published case with this version, updated_at and match" when that reproduces it exactly, and a
parked entry as the index of the same object among the case's entries. The calendar is not
stored (code and data, like the rules); the policies are (they change with PolicyUpdate events).

Errors: anything wrong with a snapshot (unknown format, a chunk missing, a checksum or frame
that does not match, a record that does not decode) is :class:`~schemas.errors.UnusableSnapshot`,
never a half-built stage: the caller rebuilds from the journal instead.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from schemas.codec import AvroCodec
from schemas.errors import SerializationError, UnusableSnapshot
from schemas.models import (
    AvroRecord,
    CanonicalEvent,
    CaseRecord,
    Election,
    EscalationStep,
    EventType,
    MatchInfo,
)

from .cases import CaseBook, CaseLog, deadline_index, nameless_by_kind
from .escalation import Calendar
from .matching import KnownPerson
from .merge import DeadlineStep, Entry, Fold, Opening, ReviewResolved, UnblockConfirmed
from .pmap import PMap
from .policy import ElectionPolicy, Policies
from .positions import positions_from
from .stage import CaseStage
from .stored import StoredEvent, keep

FORMAT = 2
READS = frozenset({1, 2})
"""Formats :func:`load` reads: a snapshot written before an upgrade stays usable (the journal
below it is gone)."""
MAGIC = b"NETRAL-BOOK"
DEFAULT_CHUNK_BYTES = 512 * 1024
MIN_CHUNK_BYTES = 64
ZLIB_LEVEL = 1  # the fastest: ~5x smaller, a few ms per MB
_FRAME = struct.Struct(">cI")
_VERSION = struct.Struct(">H")
_JSON, _AVRO = b"J", b"A"
R = TypeVar("R", bound=AvroRecord)
_READABLE = f"this version reads formats {', '.join(map(str, sorted(READS)))}"


# -- the manifest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """What a snapshot covers and how to check its chunks; written after every chunk."""

    entries: int  # journal entries applied: the snapshot covers indexes 0 .. entries - 1
    taken: int
    cases: int
    sizes: tuple[int, ...]
    checksums: tuple[str, ...]  # SHA-256 hex of each chunk
    format: int = FORMAT

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def encode(self) -> bytes:
        return json.dumps({"format": self.format, "entries": self.entries, "taken": self.taken,
                           "cases": self.cases, "bytes": self.size,
                           "chunks": [{"bytes": s, "sha256": c}
                                      for s, c in zip(self.sizes, self.checksums, strict=True)]},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> Manifest:
        """The manifest, or UnusableSnapshot (garbage, or a format this code does not read)."""
        if not data:
            raise UnusableSnapshot("empty snapshot manifest")
        try:
            doc = json.loads(data)
            fmt = doc["format"]
            if fmt not in READS:
                raise UnusableSnapshot(f"snapshot format {fmt!r}: {_READABLE}")
            chunks = doc["chunks"]
            manifest = cls(entries=int(doc["entries"]), taken=int(doc["taken"]),
                           cases=int(doc["cases"]), sizes=tuple(int(c["bytes"]) for c in chunks),
                           checksums=tuple(str(c["sha256"]) for c in chunks), format=fmt)
        except (ValueError, KeyError, TypeError) as err:
            raise UnusableSnapshot(f"unreadable snapshot manifest: {type(err).__name__}: "
                                   f"{str(err)[:200]}") from None
        if manifest.size != doc.get("bytes") or manifest.entries < 0 or not chunks:
            raise UnusableSnapshot("inconsistent snapshot manifest (sizes, entries or chunks)")
        return manifest


# -- writing -------------------------------------------------------------------------------------


class SnapshotWriter:
    """The snapshot of one stage as it is now: iterate :meth:`chunks`, then read :attr:`manifest`.

    The book is immutable (persistent maps), so the chunks describe the stage at construction
    even if the caller goes on taking inputs into it meanwhile.
    """

    def __init__(self, stage: CaseStage, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        if chunk_bytes < MIN_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be at least {MIN_CHUNK_BYTES}")
        self._book, self._policies = stage.book, stage.policies
        self._clock, self._taken, self._entries = stage.clock, stage.taken, stage.entries
        self._positions, self._legacy = dict(stage.positions), stage.legacy
        # Single-object encoding always: a snapshot never depends on a schema registry.
        self._codec = AvroCodec(store=stage.codec.store)
        self._limit = chunk_bytes
        self._sizes: list[int] = []
        self._sums: list[str] = []
        self._done = False

    @property
    def entries(self) -> int:
        """The journal entries the snapshot covers (its key)."""
        return self._entries

    @property
    def taken(self) -> int:
        """The inputs the book had taken when the snapshot was made."""
        return self._taken

    @property
    def manifest(self) -> Manifest:
        if not self._done:
            raise RuntimeError("the manifest exists once every chunk has been taken")
        return Manifest(entries=self._entries, taken=self._taken, cases=len(self._book.cases),
                        sizes=tuple(self._sizes), checksums=tuple(self._sums))

    def chunks(self) -> Iterator[bytes]:
        """The compressed body in slices of at most ``chunk_bytes``, encoded as they are
        asked for."""
        deflate = zlib.compressobj(ZLIB_LEVEL)
        buf = bytearray(deflate.compress(MAGIC + _VERSION.pack(FORMAT)))
        for frame in self._frames():
            buf += deflate.compress(frame)
            while len(buf) >= self._limit:
                yield self._emit(bytes(buf[:self._limit]))
                del buf[:self._limit]
        buf += deflate.flush()
        while len(buf) > self._limit:
            yield self._emit(bytes(buf[:self._limit]))
            del buf[:self._limit]
        yield self._emit(bytes(buf))
        self._done = True

    def _emit(self, chunk: bytes) -> bytes:
        self._sizes.append(len(chunk))
        self._sums.append(hashlib.sha256(chunk).hexdigest())
        return chunk

    def _json(self, value: Any) -> bytes:
        payload = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return _FRAME.pack(_JSON, len(payload)) + payload

    def _avro(self, record: AvroRecord) -> bytes:
        payload = self._codec.encode_record(record)
        return _FRAME.pack(_AVRO, len(payload)) + payload

    def _frames(self) -> Iterator[bytes]:
        book = self._book
        yield self._json({
            "clock": self._clock.isoformat(), "taken": self._taken, "entries": self._entries,
            "policies": [[e.value, p.model_dump(mode="json")] for e, p in self._policies.items()],
            "commands": sorted(book.commands), "adoptable": sorted(book.adoptable),
            "cases": len(book.cases), "logs": len(book.logs),
            "positions": self._positions, "legacy": self._legacy,
        })
        yield self._json(list(book.cases))
        for record in book.cases.values():
            yield self._avro(record)
        for key, log in book.logs.items():
            yield from self._log(key, log, book.cases.get(key))
        for pairs in (book.by_ref, book.by_nip, book.persons, book.nameless,
                      book.nameless_by_kind, book.seen):
            yield self._json([[k, _plain(v)] for k, v in pairs.items()])
        yield self._json([[k, len(v)] for k, v in book.orphans.items()])
        for waiting in book.orphans.values():
            for event in waiting:
                yield self._avro(event)

    def _log(self, key: str, log: CaseLog, case: CaseRecord | None) -> Iterator[bytes]:
        events: list[StoredEvent] = []
        kinds = [_entry_json(e, events) for e in log.entries]
        parked: list[Any] = []
        for p in log.fold.parked:
            at = next((i for i, e in enumerate(log.entries) if e is p), None)
            parked.append(at if at is not None else _entry_json(p, events))
        fold = log.fold
        record: Any = None
        full: CaseRecord | None = None
        if fold.record is not None:
            r = fold.record
            shared = {"version": r.version, "updated_at": r.updated_at, "match": r.match}
            if case is not None and (r is case or case.model_copy(update=shared) == r):
                record = {"version": r.version, "updated_at": r.updated_at.isoformat(),
                          "match": _match_json(r.match)}
            else:
                record, full = "full", r
        yield self._json({
            "key": key,
            "opening": {"case_id": log.opening.case_id, "held": log.opening.held,
                        "match": _match_json(log.opening.match),
                        "matched_nip": log.opening.matched_nip},
            "entries": kinds,
            "fold": {"record": record, "provenance": dict(fold.provenance),
                     "primary_ref": fold.primary_ref, "parked": parked,
                     "last": None if fold.last is None else [fold.last[0].isoformat(),
                                                             fold.last[1]]},
        })
        for event in events:
            yield _FRAME.pack(_AVRO, len(event.avro)) + event.avro
        if full is not None:
            yield self._avro(full)


def _plain(value: Any) -> Any:
    if isinstance(value, KnownPerson):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return list(value)
    return value


def _match_json(match: MatchInfo | None) -> Any:
    return None if match is None else match.model_dump(mode="json")


def _entry_json(entry: Entry, events: list[StoredEvent]) -> Any:
    """An entry as JSON; an event as its fold key and type (its Avro frame follows, in order:
    the bytes the log keeps, as they are)."""
    if isinstance(entry, CanonicalEvent):  # a log keeps StoredEvents; kept here all the same
        entry = keep(entry)
    if isinstance(entry, StoredEvent):
        events.append(entry)
        return {"t": "E", "id": entry.event_id, "at": entry.occurred_at.isoformat(),
                "type": entry.event_type.value}
    if isinstance(entry, DeadlineStep):
        return {"t": "D", "step": entry.step.value, "on": entry.on.isoformat(),
                "at": entry.at.isoformat()}
    if isinstance(entry, ReviewResolved):
        return {"t": "R", "command_id": entry.command_id, "at": entry.at.isoformat(),
                "rule": entry.rule}
    return {"t": "U", "order_id": entry.order_id, "at": entry.at.isoformat()}


def dump(stage: CaseStage, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> tuple[list[bytes], Manifest]:
    """The whole snapshot at once (tests and tools; the processor streams the chunks)."""
    writer = SnapshotWriter(stage, chunk_bytes)
    chunks = list(writer.chunks())
    return chunks, writer.manifest


# -- reading -------------------------------------------------------------------------------------


def load(manifest: Manifest, chunks: Sequence[bytes | None], codec: AvroCodec,
         calendar: Calendar) -> CaseStage:
    """The stage a snapshot describes; UnusableSnapshot if any part is missing or wrong."""
    if manifest.format not in READS:
        raise UnusableSnapshot(f"snapshot format {manifest.format}: {_READABLE}")
    if len(chunks) != len(manifest.sizes):
        raise UnusableSnapshot(f"{len(chunks)} chunks given, the manifest lists "
                               f"{len(manifest.sizes)}")
    for i, (chunk, size, digest) in enumerate(zip(chunks, manifest.sizes, manifest.checksums,
                                                  strict=True)):
        if chunk is None:
            raise UnusableSnapshot(f"snapshot chunk {i} of {len(chunks)} is missing")
        if len(chunk) != size or hashlib.sha256(chunk).hexdigest() != digest:
            raise UnusableSnapshot(f"snapshot chunk {i} of {len(chunks)} does not match its "
                                   "checksum (corrupt)")
    try:
        body = zlib.decompress(b"".join(c for c in chunks if c is not None))
        stage = _Reader(body, codec).stage(calendar)
    except (ValueError, KeyError, TypeError, IndexError, struct.error, zlib.error,
            SerializationError) as err:  # ValidationError and JSONDecodeError are ValueErrors
        raise UnusableSnapshot(f"snapshot body unreadable: {type(err).__name__}: "
                               f"{str(err)[:300]}") from None
    if (stage.entries, stage.taken, len(stage.book.cases)) != (manifest.entries, manifest.taken,
                                                               manifest.cases):
        raise UnusableSnapshot("snapshot body and manifest disagree (entries, inputs or cases)")
    return stage


class _Reader:
    def __init__(self, body: bytes, codec: AvroCodec) -> None:
        head = len(MAGIC) + _VERSION.size
        if body[:len(MAGIC)] != MAGIC:
            raise ValueError("not a cases snapshot (no magic)")
        (fmt,) = _VERSION.unpack_from(body, len(MAGIC))
        if fmt not in READS:
            raise ValueError(f"body format {fmt}: {_READABLE}")
        self._body, self._at, self._codec, self._format = memoryview(body), head, codec, fmt

    def _frame(self, tag: bytes) -> bytes:
        got, size = _FRAME.unpack_from(self._body, self._at)
        start = self._at + _FRAME.size
        if got != tag or start + size > len(self._body):
            raise ValueError(f"frame at byte {self._at}: expected {tag!r}, got {got!r} "
                             f"of {size} bytes")
        self._at = start + size
        return bytes(self._body[start:self._at])

    def _json(self) -> Any:
        return json.loads(self._frame(_JSON))

    def _avro(self, model: type[R]) -> R:
        return self._decoded(self._frame(_AVRO), model)

    def _decoded(self, raw: bytes, model: type[R]) -> R:
        return model.from_fastavro(self._codec.decode(raw, expect=model.avro_name).value)

    def stage(self, calendar: Calendar) -> CaseStage:
        head = self._json()
        policies: Policies = MappingProxyType({
            Election(e): ElectionPolicy.model_validate(p) for e, p in head["policies"]})
        case_keys = self._json()
        cases = _pmap((k, self._avro(CaseRecord)) for k in case_keys)
        logs = _pmap(self._log(cases) for _ in range(head["logs"]))
        by_ref = _pmap((k, v) for k, v in self._json())
        by_nip = _pmap((k, tuple(map(sys.intern, v))) for k, v in self._json())
        persons = _pmap((k, KnownPerson.model_validate(v)) for k, v in self._json())
        nameless = _pmap((k, KnownPerson.model_validate(v)) for k, v in self._json())
        by_kind = _pmap((k, tuple(map(sys.intern, v))) for k, v in self._json())
        if self._format == 1:  # kept by kind alone then: by kind and incident week now
            by_kind = nameless_by_kind(cases.values())
        seen = _pmap((k, v) for k, v in self._json())
        counts = self._json()
        orphans = _pmap((k, tuple(self._avro(CanonicalEvent) for _ in range(n)))
                        for k, n in counts)
        if self._at != len(self._body):
            raise ValueError(f"{len(self._body) - self._at} bytes after the last frame")
        book = CaseBook(cases=cases, logs=logs, by_ref=by_ref, by_nip=by_nip, persons=persons,
                        nameless=nameless, nameless_by_kind=by_kind, seen=seen, orphans=orphans,
                        commands=frozenset(head["commands"]),
                        adoptable=frozenset(head["adoptable"]),
                        by_deadline=deadline_index(cases.values()))
        return CaseStage(self._codec, calendar, policies, book=book, taken=int(head["taken"]),
                         entries=int(head["entries"]),
                         clock=datetime.fromisoformat(head["clock"]),
                         # a snapshot from before positions: a legacy stage, none known
                         positions=positions_from(head.get("positions", {})),
                         legacy=bool(head.get("legacy", "positions" not in head)))

    def _log(self, cases: Mapping[str, CaseRecord]) -> tuple[str, CaseLog]:
        meta = self._json()
        key = meta["key"]
        entries = tuple(self._entry(e) for e in meta["entries"])
        f = meta["fold"]
        parked = tuple(entries[p] if isinstance(p, int) else self._entry(p)
                       for p in f["parked"])
        spec = f["record"]
        record: CaseRecord | None
        if spec is None:
            record = None
        elif spec == "full":
            record = self._avro(CaseRecord)
        else:
            # The fold's record is the case's content: the fold goes on from the published
            # record itself (cases.py), whatever version, updated_at and match an older hub
            # kept in a copy of its own (the fold never reads them).
            record = cases[key]
        last = None if f["last"] is None else (datetime.fromisoformat(f["last"][0]),
                                               str(f["last"][1]))
        o = meta["opening"]
        opening = Opening(case_id=o["case_id"], held=bool(o["held"]), match=_match(o["match"]),
                          matched_nip=o["matched_nip"])
        fold = Fold(record=record, provenance=MappingProxyType(dict(f["provenance"])),
                    primary_ref=f["primary_ref"], parked=parked, last=last)
        return key, CaseLog(opening, entries, fold)

    def _entry(self, spec: Any) -> Entry:
        if spec == "E" and self._format == 1:  # the decoded event was the entry then
            raw = self._frame(_AVRO)
            return keep(self._decoded(raw, CanonicalEvent), raw)
        kind = spec["t"]
        at = datetime.fromisoformat(spec["at"])
        if kind == "E":  # kept as the log keeps it: the bytes, not decoded
            return StoredEvent(sys.intern(spec["id"]), at, EventType(spec["type"]),
                               self._frame(_AVRO))
        if kind == "D":
            return DeadlineStep(step=EscalationStep(spec["step"]),
                                on=date.fromisoformat(spec["on"]), at=at)
        if kind == "R":
            return ReviewResolved(command_id=spec["command_id"], at=at, rule=spec["rule"])
        if kind == "U":
            return UnblockConfirmed(order_id=spec["order_id"], at=at)
        raise ValueError(f"unknown entry kind {kind!r}")


def _match(doc: Any) -> MatchInfo | None:
    return None if doc is None else MatchInfo.model_validate(doc)


def _pmap(items: Iterable[tuple[str, Any]]) -> PMap[Any]:
    """A PMap with the items in this order (so each bucket iterates as the original did);
    keys and string values interned: the same ids are keys of several maps and fields of
    the records (see schemas.models.types)."""
    return PMap({sys.intern(k): sys.intern(v) if type(v) is str else v for k, v in items})


__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "FORMAT",
    "Manifest",
    "SnapshotWriter",
    "UnusableSnapshot",
    "dump",
    "load",
]
