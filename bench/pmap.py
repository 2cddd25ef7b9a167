"""The case book's persistent map: the cost of one write as the map grows, against a plain dict.

Every event writes the book's maps about four times (``seen`` alone holds every event id: about
3M entries at a million cases), so a write whose cost grows with the map slows the stage with
the size of its book. Keys are uuid hex strings, as event and case ids are; each time is the
best of 3 rounds of chained writes (each one writing the map the previous one returned).
"""

from __future__ import annotations

import sys
import uuid

from streams.rules.pmap import PMap

from .harness import Row, best_of
from .harness import table as harness_table

WRITES = 5000


def run(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000, 3_000_000)) -> list[Row]:
    keys = [uuid.uuid4().hex for _ in range(WRITES)]
    rows: list[Row] = []
    for n in sizes:
        items = {uuid.uuid4().hex: "case" for _ in range(n)}
        plain = dict(items)
        book: PMap[str] = PMap(items)

        def dict_writes(d: dict[str, str] = plain) -> None:
            for k in keys:
                d[k] = "x"

        def pmap_writes(m: PMap[str] = book) -> None:
            for k in keys:
                m = m.set(k, "x")

        if not rows:
            rows.append(Row(f"floor: dict item assignment (mutable) at {n:,} entries", WRITES,
                            best_of([dict_writes])[0]))
        seconds = best_of([pmap_writes])[0]
        rows.append(Row(f"PMap.set at {n:,} entries", WRITES, seconds,
                        f"{seconds / WRITES * 1e6:.1f} µs per write"))
    return rows


def table(rows: list[Row]) -> str:
    return harness_table(rows, first_column="operation")


if __name__ == "__main__":
    sizes = tuple(int(a) for a in sys.argv[1:]) or (10_000, 100_000, 1_000_000, 3_000_000)
    print(table(run(sizes)))
