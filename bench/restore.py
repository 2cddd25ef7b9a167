"""Restoring a larger book in-process: the snapshot load, and the collector's full pass after it.

bench.cases restores 3,000 cases; what a restore costs the worker's event loop shows at a larger
book. The book is built by the real rules in-process (normalize, then the cases stage, no broker:
this section measures the restore, not the stream), snapshotted, then loaded twice: plainly (the
floor) and as the worker does it (:mod:`streams.heap`: the cyclic collector paused during the
load, the book frozen out of its passes after it). After each load one full collector pass is
timed: in the worker that pass runs on the event loop's thread, so it is a stall of heartbeats
and commits, and it grows with the book. The collector is tuned as in the worker
(NETRAL_WORKER_GC_THRESHOLD).

Usage: ``python -m bench.restore [CASES]`` (default 20,000).
"""

from __future__ import annotations

import sys
import time

from hub.commands.worker import tune_gc
from hub.settings import NetralSettings
from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage
from streams.rules.calendar import default_calendar
from streams.rules.policy import load_policies
from streams.rules.stage import CaseStage, InputKind

from .cases import canonical, load_rows, prepare, snapshot_loads
from .harness import Row
from .harness import table as harness_table


def build(cases: int) -> tuple[CaseStage, int, float]:
    """The book of a simulated wave of ``cases`` cases; events taken and seconds it took."""
    codec = AvroCodec()
    stage = CaseStage(codec, default_calendar(), load_policies())
    data = prepare(cases)
    taken = 0
    start = time.perf_counter()
    for topic, records in data.items():
        for key, value in records:
            try:
                stage.take(InputKind.EVENT, canonical(codec, topic, key, value))
            except InvalidMessage:
                continue  # topic by topic, some events come before their case can take them
            taken += 1
    return stage, taken, time.perf_counter() - start


def run(cases: int = 20_000) -> list[Row]:
    tune_gc(NetralSettings().worker_gc_threshold)
    stage, taken, built = build(cases)
    made = len(stage.book.cases)
    rows = load_rows(made, snapshot_loads(stage))
    rows[0] = Row("floor: " + rows[0].name, rows[0].records, rows[0].seconds,
                  f"{made:,} cases (built from {taken:,} events in {built:.0f} s); "
                  + rows[0].note)
    return rows


def table(rows: list[Row]) -> str:
    return harness_table(rows, first_column="restore (records = cases)")


if __name__ == "__main__":
    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)))
