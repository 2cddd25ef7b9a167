"""Codec throughput against plain fastavro on the same 50,000 BawasluReport messages (best of 3).

The hub's decode adds framing checks, fingerprint lookup and writer/reader resolution to the plain
``schemaless_reader`` call; validation into the pydantic model is measured separately because
the normalize stage pays it too.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import fastavro

from connectors.samples import sample_reports
from schemas.codec import AvroCodec, default_store
from schemas.models import BawasluReport


@dataclass(frozen=True)
class Row:
    operation: str
    records: int
    seconds: float
    baseline: str

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def _time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best of ``repeat`` runs: the least disturbed by the rest of a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(n: int = 50_000) -> list[Row]:
    codec = AvroCodec()
    entry = default_store().get(BawasluReport.avro_name)
    base = sample_reports(1000, seed=3)
    values = [base[i % len(base)].to_avro() for i in range(n)]
    framed = [codec.encode(entry.name, v) for v in values]
    bodies = [f[10:] for f in framed]
    schema = entry.parsed

    def plain_read() -> None:
        for b in bodies:
            fastavro.schemaless_reader(io.BytesIO(b), schema, None)

    def hub_read() -> None:
        for f in framed:
            codec.decode(f)

    def hub_read_validate() -> None:
        for f in framed:
            BawasluReport.from_avro(codec.decode(f).value)

    def plain_write() -> None:
        for v in values:
            fastavro.schemaless_writer(io.BytesIO(), schema, v)

    def hub_write() -> None:
        for v in values:
            codec.encode(entry.name, v)

    plain_read()  # warm up caches once
    return [
        Row("plain fastavro.schemaless_reader", n, _time(plain_read), "decode"),
        Row("AvroCodec.decode (framing, fingerprint lookup)", n, _time(hub_read), "decode"),
        Row("AvroCodec.decode + pydantic validation", n, _time(hub_read_validate), "decode"),
        Row("plain fastavro.schemaless_writer", n, _time(plain_write), "encode"),
        Row("AvroCodec.encode (single-object framing)", n, _time(hub_write), "encode"),
    ]


def table(rows: list[Row]) -> str:
    floors = {r.baseline: r.rate for r in rows if r.operation.startswith("plain")}
    lines = ["| operation | records | seconds | records/s | ratio to plain fastavro |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.operation} | {r.records} | {r.seconds:.2f} | {r.rate:,.0f} | "
                     f"{r.rate / floors[r.baseline]:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)))
