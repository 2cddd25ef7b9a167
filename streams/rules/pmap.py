"""pmap: the persistent map the case book is made of (a write returns a new map, sharing the rest).

A fixed two-level trie on the key's CRC32 (stable across processes, unlike ``hash``): 256 slots
by its low byte, each a node of 256 leaves by its next byte, each leaf a small dict. A write
copies the root, one node and one leaf: O(256 + 256 + n/65,536). The one-level table of
256 buckets it replaces copied a bucket of n/256 entries per write, which measured 2.9 µs per
write at 10,000 entries but 179 µs at 1M and 687 µs at 3M (the ``seen`` map holds every event
id: about 3M at a million cases), so the stage slowed with the size of its book. (A HAMT such
as ``immutables.Map`` iterates in the order of ``hash``, which Python randomises per process:
a replay and a snapshot need the same iteration order in every process.)

Iteration goes slot by slot, node by node, each leaf in insertion order. The slot is the old
bucket (CRC32 mod 256), and a leaf's keys all come from one old bucket, so a snapshot written by
the one-level map loads with exactly the order this map gives to the same writes.

A node is never changed once a map holds it (a write copies it), which is what lets
:meth:`PMap.column` keep, per slot, the values and one attribute of each: the name-only matcher
asks for every known person's name at every report, and rebuilding that list from thousands of
scattered objects cost more than the fuzzy matching itself.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar

V = TypeVar("V")
_FAN = 256
_crc32 = zlib.crc32

Leaf = dict[str, Any]
Node = tuple[Leaf | None, ...]
Column = tuple[list[Any], list[Any]]
"""Values, and the attribute asked for of each (same order)."""
_EMPTY_NODE: Node = (None,) * _FAN


class _SlotColumn:
    """One slot's memoised column: the slot's lists joined, and each leaf's own lists.

    Shared by every map whose slot is the same node; a write to the slot gives the new map a
    new one that keeps the other leaves' lists, so only the leaf written is listed again.
    Filled lazily: it describes one node, whichever map asks.
    """

    __slots__ = ("joined", "leaves", "stale")

    def __init__(self, leaves: list[Column | None], stale: frozenset[int]) -> None:
        self.joined: Column | None = None
        self.leaves = leaves  # per leaf of the node: its column, or None (no leaf, or stale)
        self.stale = stale  # the leaves to list (again) before joining

    def without(self, j: int) -> _SlotColumn:
        leaves = self.leaves.copy()
        leaves[j] = None
        return _SlotColumn(leaves, self.stale | {j})

    def join(self, node: Node, attribute: Callable[[Any], Any]) -> Column:
        """The slot's column: the stale leaves listed, then every leaf's lists joined in C
        (filter, map, chain: no Python loop over the 256 leaves)."""
        if self.joined is None:
            leaves = self.leaves
            for j in self.stale:
                leaf = node[j]
                if leaf is None:
                    leaves[j] = None
                else:
                    held = list(leaf.values())
                    leaves[j] = (held, list(map(attribute, held)))
            self.stale = frozenset()
            self.joined = (list(chain.from_iterable(map(_VALUES, filter(None, leaves)))),
                           list(chain.from_iterable(map(_ATTRIBUTES, filter(None, leaves)))))
        return self.joined


_VALUES, _ATTRIBUTES = itemgetter(0), itemgetter(1)


class PMap(Mapping[str, V]):
    """A small persistent map: ``set``/``delete`` return a new map sharing all but one path."""

    __slots__ = ("_columns", "_len", "_root")

    def __init__(self, items: Mapping[str, V] | None = None) -> None:
        nodes: list[list[Leaf | None] | None] = [None] * _FAN
        size = 0
        for key, value in (items or {}).items():
            h = _crc32(key.encode())
            node = nodes[h & 0xFF]
            if node is None:
                node = nodes[h & 0xFF] = [None] * _FAN
            leaf = node[(h >> 8) & 0xFF]
            if leaf is None:
                leaf = node[(h >> 8) & 0xFF] = {}
            leaf[key] = value
            size += 1
        self._root: tuple[Node | None, ...] = tuple(
            None if n is None else tuple(n) for n in nodes)
        self._len = size
        self._columns: dict[Callable[[V], Any], list[_SlotColumn | None]] = {}

    @classmethod
    def _make(cls, root: tuple[Node | None, ...], size: int,
              columns: dict[Callable[[V], Any], list[_SlotColumn | None]]) -> PMap[V]:
        new = cls.__new__(cls)
        new._root, new._len, new._columns = root, size, columns
        return new

    # The path is computed inline (no helper call) in the lookups: the rules make about 20 of
    # them per event. ``get`` is our own: Mapping's mixin raises and catches a KeyError per miss.
    def __getitem__(self, key: str) -> V:
        h = _crc32(key.encode())
        node = self._root[h & 0xFF]
        leaf = None if node is None else node[(h >> 8) & 0xFF]
        if leaf is None:
            raise KeyError(key)
        return leaf[key]

    def get(self, key: str, default: Any = None) -> Any:
        h = _crc32(key.encode())
        node = self._root[h & 0xFF]
        leaf = None if node is None else node[(h >> 8) & 0xFF]
        return default if leaf is None else leaf.get(key, default)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        h = _crc32(key.encode())
        node = self._root[h & 0xFF]
        leaf = None if node is None else node[(h >> 8) & 0xFF]
        return leaf is not None and key in leaf

    def _leaves(self) -> Iterator[Leaf]:
        # filter(None, node) walks a node's 256 leaves in C
        return chain.from_iterable(filter(None, node) for node in self._root if node is not None)

    # Iteration chains the leaves' own iterators (C speed within a leaf).
    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self._leaves())

    def __len__(self) -> int:
        return self._len

    def values(self) -> Iterator[V]:  # type: ignore[override]
        return chain.from_iterable(leaf.values() for leaf in self._leaves())

    def items(self) -> Iterator[tuple[str, V]]:  # type: ignore[override]
        return chain.from_iterable(leaf.items() for leaf in self._leaves())

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"

    def column(self, attribute: Callable[[V], Any]) -> tuple[list[V], list[Any]]:
        """Every value (in iteration order) and ``attribute`` of each, as two lists: the
        :meth:`column_slots` joined (O(n) list concatenation, at C speed but per call)."""
        values: list[V] = []
        column: list[Any] = []
        for listed, attributes in self.column_slots(attribute):
            values += listed
            column += attributes
        return values, column

    def column_slots(self, attribute: Callable[[V], Any]) -> list[Column]:
        """Per slot that holds any, in iteration order: its values and ``attribute`` of each.

        Memoised per slot, and within a slot per leaf, shared with the maps written from this
        one: after a write only the leaf written is listed again (n/65,536 values) and its
        slot's lists joined again (n/256, at C speed). Between two name-only reports new cases
        write many slots, and listing each written slot whole again cost 17% of building a
        book at 160,000 persons (py-spy). The name-only matcher scores slot by slot: joining
        the slots for every report cost more than the scoring at 200,000 known persons
        (measured). The lists are shared: read them, never change them. ``attribute`` must be
        a pure function of the value.
        """
        per_slot = self._columns.get(attribute)
        if per_slot is None:
            per_slot = self._columns[attribute] = [None] * _FAN
        slots: list[Column] = []
        for i, node in enumerate(self._root):
            if node is None:
                continue
            memo = per_slot[i]
            if memo is None:
                memo = per_slot[i] = _SlotColumn(
                    [None] * _FAN, frozenset(j for j, leaf in enumerate(node) if leaf))
            slots.append(memo.join(node, attribute))
        return slots

    def set(self, key: str, value: V) -> PMap[V]:
        h = _crc32(key.encode())
        i, j = h & 0xFF, (h >> 8) & 0xFF
        node = self._root[i] or _EMPTY_NODE
        old = node[j]
        leaf = dict(old) if old else {}
        added = key not in leaf
        leaf[key] = value
        # list, assign, tuple: measured faster than slicing or unpacking a 256-tuple
        leaves = list(node)
        leaves[j] = leaf
        root = list(self._root)
        root[i] = tuple(leaves)
        return PMap._make(tuple(root), self._len + added, self._columns_without(i, j))

    def delete(self, key: str) -> PMap[V]:
        h = _crc32(key.encode())
        i, j = h & 0xFF, (h >> 8) & 0xFF
        node = self._root[i]
        old = None if node is None else node[j]
        if node is None or old is None or key not in old:
            return self
        leaf = {k: v for k, v in old.items() if k != key}
        leaves = list(node)
        leaves[j] = leaf or None
        root = list(self._root)
        root[i] = tuple(leaves) if any(leaves) else None
        return PMap._make(tuple(root), self._len - 1, self._columns_without(i, j))

    def _columns_without(self, i: int, j: int
                         ) -> dict[Callable[[V], Any], list[_SlotColumn | None]]:
        """The memoised columns for a map that differs from this one in leaf ``j`` of slot
        ``i`` only."""
        if not self._columns:
            return {}
        columns = {}
        for attribute, per_slot in self._columns.items():
            kept = per_slot.copy()
            memo = kept[i]
            kept[i] = None if memo is None else memo.without(j)
            columns[attribute] = kept
        return columns


def empty() -> PMap[Any]:
    """The empty map (shared: it is never changed)."""
    return _EMPTY


_EMPTY: PMap[Any] = PMap()
