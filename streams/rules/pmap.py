"""pmap: the persistent map the case book is made of (a write returns a new map, sharing the rest).

Keys go to one of 256 buckets by CRC32 (stable across processes, unlike ``hash``), so a write
copies the bucket table and one bucket, O(256 + n/256), instead of the whole dict: the book stays
immutable at thousands to hundreds of thousands of cases per partition. Buckets hold n/256
entries, so at millions of entries per map a write's bucket copy starts to dominate: a HAMT would
be the next step.

A bucket is never changed once a map holds it (a write copies it), which is what lets
:meth:`PMap.column` keep, per bucket, the values and one attribute of each: the name-only matcher
asks for every known person's name at every report, and rebuilding that list from thousands of
scattered objects cost more than the fuzzy matching itself.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping
from itertools import chain
from typing import Any, TypeVar

V = TypeVar("V")
_BUCKETS = 256
_crc32 = zlib.crc32

Column = tuple[list[Any], list[Any]]
"""Per bucket: its values, and the attribute asked for of each (same order)."""


class PMap(Mapping[str, V]):
    """A small persistent map: ``set``/``delete`` return a new map sharing all but one bucket."""

    __slots__ = ("_buckets", "_columns", "_len")

    def __init__(self, items: Mapping[str, V] | None = None) -> None:
        buckets: list[dict[str, V] | None] = [None] * _BUCKETS
        for key, value in (items or {}).items():
            bucket = buckets[_slot(key)]
            if bucket is None:
                bucket = buckets[_slot(key)] = {}
            bucket[key] = value
        self._buckets: tuple[dict[str, V] | None, ...] = tuple(buckets)
        self._len = sum(len(b) for b in buckets if b)
        self._columns: dict[Callable[[V], Any], list[Column | None]] = {}

    @classmethod
    def _make(cls, buckets: tuple[dict[str, V] | None, ...], size: int,
              columns: dict[Callable[[V], Any], list[Column | None]]) -> PMap[V]:
        new = cls.__new__(cls)
        new._buckets, new._len, new._columns = buckets, size, columns
        return new

    # The slot is computed inline (no helper call) in the lookups: the rules make about 20 of
    # them per event. ``get`` is our own: Mapping's mixin raises and catches a KeyError per miss.
    def __getitem__(self, key: str) -> V:
        bucket = self._buckets[_crc32(key.encode()) % _BUCKETS]
        if bucket is None:
            raise KeyError(key)
        return bucket[key]

    def get(self, key: str, default: Any = None) -> Any:
        bucket = self._buckets[_crc32(key.encode()) % _BUCKETS]
        return default if bucket is None else bucket.get(key, default)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        bucket = self._buckets[_crc32(key.encode()) % _BUCKETS]
        return bucket is not None and key in bucket

    # Iteration chains the buckets' own iterators (C speed; same order as bucket by bucket).
    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(b for b in self._buckets if b)

    def __len__(self) -> int:
        return self._len

    def values(self) -> Iterator[V]:  # type: ignore[override]
        return chain.from_iterable(b.values() for b in self._buckets if b)

    def items(self) -> Iterator[tuple[str, V]]:  # type: ignore[override]
        return chain.from_iterable(b.items() for b in self._buckets if b)

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"

    def column(self, attribute: Callable[[V], Any]) -> tuple[list[V], list[Any]]:
        """Every value (in iteration order) and ``attribute`` of each, as two lists.

        Memoised per bucket and shared with the maps written from this one, so after a write
        only the bucket written is listed again: O(n) list concatenation at C speed, plus
        O(n/256) Python work. ``attribute`` must be a pure function of the value.
        """
        per_bucket = self._columns.get(attribute)
        if per_bucket is None:
            per_bucket = self._columns[attribute] = [None] * _BUCKETS
        values: list[V] = []
        column: list[Any] = []
        for i, bucket in enumerate(self._buckets):
            if not bucket:
                continue
            cached = per_bucket[i]
            if cached is None:
                listed = list(bucket.values())
                cached = per_bucket[i] = (listed, list(map(attribute, listed)))
            values += cached[0]
            column += cached[1]
        return values, column

    def set(self, key: str, value: V) -> PMap[V]:
        i = _slot(key)
        old = self._buckets[i]
        bucket = dict(old) if old else {}
        added = key not in bucket
        bucket[key] = value
        buckets = list(self._buckets)
        buckets[i] = bucket
        return PMap._make(tuple(buckets), self._len + added, self._columns_without(i))

    def delete(self, key: str) -> PMap[V]:
        i = _slot(key)
        old = self._buckets[i]
        if old is None or key not in old:
            return self
        bucket = {k: v for k, v in old.items() if k != key}
        buckets = list(self._buckets)
        buckets[i] = bucket or None
        return PMap._make(tuple(buckets), self._len - 1, self._columns_without(i))

    def _columns_without(self, i: int) -> dict[Callable[[V], Any], list[Column | None]]:
        """The memoised columns for a map that differs from this one in bucket ``i`` only."""
        if not self._columns:
            return {}
        columns = {}
        for attribute, per_bucket in self._columns.items():
            kept = per_bucket.copy()
            kept[i] = None
            columns[attribute] = kept
        return columns


def _slot(key: str) -> int:
    return _crc32(key.encode()) % _BUCKETS


def empty() -> PMap[Any]:
    """The empty map (shared: it is never changed)."""
    return _EMPTY


_EMPTY: PMap[Any] = PMap()
