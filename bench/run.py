"""``make bench``: run every benchmark once and write bench/RESULTS.md.

Each section is measured against its own baseline in the same run, on the same broker and data:
on a shared 2-core machine the ratios are what to compare, not the absolute rates.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# (module, title, command that reproduces the section)
SECTIONS = [
    ("bench.codec", "Codec: decode and encode against plain fastavro",
     "python -m bench.codec"),
    ("bench.pmap", "The case book's persistent map: one write as the map grows, against a "
     "plain dict", "python -m bench.pmap"),
    ("bench.normalize", "normalize stage against plain aiokafka loops (same broker, same data)",
     "python -m bench.normalize 50000"),
    ("bench.cases", "Stream side: normalize + cases against plain aiokafka loops (same broker, "
     "same simulated wave)", "python -m bench.cases 3000"),
    ("bench.restore", "Restoring a larger book in-process: the snapshot load and the cyclic "
     "collector's full pass after it, plain against the worker's way", "python -m bench.restore"),
    ("bench.early_warning", "Early warning alone against a plain aiokafka loop over the same "
     "records (netral.events + netral.cases of one simulated wave)",
     "python -m bench.early_warning 3000"),
    ("bench.ingest", "Ingest: outbox relay and HTTP ingest against a plain producer",
     "python -m bench.ingest 20000"),
    ("bench.monitor", "Monitoring API latency on 100,000 cases against the bare queries",
     "python -m bench.monitor 100000"),
    ("bench.sinks", "Sinks: the SQL national record and the SIASN adapter against plain loops "
     "(same broker, same data)", "python -m bench.sinks 3000 500"),
    ("bench.e2e", "End to end on a local 3-node cluster: raw -> SQL -> API -> SIASN, latency, "
     "recovery, RSS, restore, scaling (against a plain aiokafka loop, same cluster and wave)",
     "python -m bench.e2e 600"),
]
PACKAGES = ["faust-streaming", "aiokafka", "fastavro", "pydantic", "SQLAlchemy"]


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    versions = ", ".join(f"{p} {md.version(p)}" for p in PACKAGES)
    return (f"- machine: {platform.node()}, {os.cpu_count()} cores ({cpu}){mem}\n"
            f"- Python {platform.python_version()}, Apache Kafka 3.9.1 (local KRaft broker)\n"
            f"- {versions}\n- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def main() -> None:
    parts = ["# Benchmark results", "", "Written by `make bench` (bench/run.py). One run each; "
             "compare ratios, not absolute numbers.", "", machine(), ""]
    for module, title, command in SECTIONS:
        mod = importlib.import_module(module)
        start = time.perf_counter()
        rows = mod.run()
        took = time.perf_counter() - start
        parts += [f"## {title}", "", f"Command: `{command}` ({took:.0f}s)", "", mod.table(rows), ""]
        print(f"{module}: done in {took:.0f}s", file=sys.stderr)
    RESULTS.write_text("\n".join(parts))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
