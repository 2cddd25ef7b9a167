"""The book's persistent map: writes never change a map already held, and the memoised column
follows every write while listing again only the slot written."""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.rules.pmap import PMap

pytestmark = pytest.mark.unit


def test_pmap_is_persistent() -> None:
    empty: PMap[int] = PMap()
    one = empty.set("a", 1)
    two = one.set("b", 2).set("a", 3)
    assert (dict(empty), dict(one), dict(two)) == ({}, {"a": 1}, {"a": 3, "b": 2})
    assert len(two) == 2 and "b" in two and 5 not in two
    assert two.delete("a").delete("zz") == {"b": 2}
    assert sorted(two.values()) == [2, 3] and dict(two.items()) == {"a": 3, "b": 2}
    big = PMap({str(i): i for i in range(2000)})
    assert len(big) == 2000 and big["1999"] == 1999
    assert big.delete("7")["8"] == 8 and "7" in big  # the old map is untouched


class _Counting:
    """An attribute function that counts how many values it was asked about."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, value: int) -> int:
        self.calls += 1
        return value * 10


def test_column_lists_values_and_their_attribute_in_iteration_order() -> None:
    m = PMap({str(i): i for i in range(1000)})
    values, tens = m.column(_Counting())
    assert values == list(m.values()) and tens == [v * 10 for v in values]
    assert PMap().column(_Counting()) == ([], [])


def test_column_after_a_write_lists_only_the_bucket_written_again() -> None:
    tens = _Counting()
    old = PMap({str(i): i for i in range(1000)})
    old.column(tens)
    assert tens.calls == 1000
    new = old.set("5", -5).set("new", -7).delete("6")
    values, column = new.column(tens)
    assert tens.calls <= 1000 + 2  # the two leaves written to hold one value each, not 1000
    assert values == list(new.values()) and column == [v * 10 for v in values]
    assert -5 in values and -7 in values and 5 not in values and 6 not in values
    # The map written from keeps its own column: nothing of the writes shows in it.
    values, column = old.column(tens)
    assert values == list(old.values()) and -5 not in values and 5 in values and 6 in values
    assert column == [v * 10 for v in values]


def test_column_slots_are_the_column_in_parts_and_shared_until_written() -> None:
    tens = _Counting()
    old = PMap({str(i): i for i in range(1000)})
    slots = old.column_slots(tens)
    assert [v for values, _ in slots for v in values] == list(old.values())
    assert [c for _, column in slots for c in column] == old.column(tens)[1]
    assert all(values for values, _ in slots) and len(slots) <= 256
    new = old.set("5", -5)
    again = new.column_slots(tens)
    # one slot listed anew, every other one the very same lists (nothing copied)
    assert sum(a is not b for a, b in zip(slots, again, strict=True)) == 1
    assert [v for values, _ in again for v in values] == list(new.values())
    assert PMap().column_slots(tens) == []


def test_columns_stay_right_through_random_writes_on_old_and_new_maps() -> None:
    """Each map, old or new, lists its own values (the memo per slot and leaf is shared)."""
    rng = random.Random(11)
    tens = _Counting()
    maps = [PMap({str(i): i for i in range(3000)})]
    for step in range(400):
        base = rng.choice(maps[-5:])
        base.column_slots(tens)  # memoised before the write, so the write's memo is derived
        key = str(rng.randrange(4000))
        m = base.delete(key) if rng.random() < 0.3 else base.set(key, -step)
        maps.append(m)
        for one in (m, base):
            slots = one.column_slots(tens)
            values = [v for listed, _ in slots for v in listed]
            assert values == list(one.values())
            assert [c for _, column in slots for c in column] == [v * 10 for v in values]


def test_columns_of_different_attributes_are_kept_apart() -> None:
    m = PMap({"a": 1, "b": 2}).set("c", 3)
    assert m.column(str)[1] == [str(v) for v in m.values()]
    assert m.column(_Counting())[1] == [v * 10 for v in m.values()]


def _path(key: str) -> tuple[int, int]:
    h = zlib.crc32(key.encode())
    return h & 0xFF, (h >> 8) & 0xFF


@given(st.lists(st.tuples(st.booleans(), st.text(max_size=6), st.integers()), max_size=300))
def test_iteration_order_is_the_tries_and_survives_a_snapshot_round_trip(
        writes: list[tuple[bool, str, int]]) -> None:
    """Slot by slot, leaf by leaf, insertion order within a leaf; a map rebuilt from its items
    (what a snapshot load does) iterates the same, and so does one rebuilt from the order the
    one-level map of 256 buckets gave (a snapshot written before the trie)."""
    m: PMap[int] = PMap()
    model: dict[str, int] = {}  # insertion order, as a dict keeps it
    for is_delete, key, value in writes:
        if is_delete:
            m = m.delete(key)
            model.pop(key, None)
        else:
            m = m.set(key, value)
            model[key] = value
    assert list(m.items()) == sorted(model.items(), key=lambda kv: _path(kv[0]))
    assert len(m) == len(model)
    assert list(PMap(dict(m.items())).items()) == list(m.items())
    one_level = sorted(model.items(), key=lambda kv: _path(kv[0])[0])
    assert list(PMap(dict(one_level)).items()) == list(m.items())


def test_a_write_costs_the_same_at_any_size() -> None:
    """A write shares every leaf but one: at 100,000 entries it copies one small dict."""
    big = PMap({f"k{i}": i for i in range(100_000)})
    after = big.set("k5", -5)
    shared = sum(a is b for na, nb in zip(big._root, after._root, strict=True)
                 if na is not None and nb is not None for a, b in zip(na, nb, strict=True))
    leaves = sum(1 for n in big._root if n is not None for leaf in n if leaf)
    assert shared >= leaves - 1 and after["k5"] == -5 and big["k5"] == 5
