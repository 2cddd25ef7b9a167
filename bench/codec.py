"""Codec throughput against plain fastavro on the same 50,000 BawasluReport messages.

The hub's decode adds framing checks, the fingerprint lookup and a trailing-bytes check to the
plain ``schemaless_reader`` call (a current-schema writer skips resolution; an older one pays
it); validation into the pydantic model is measured separately because the normalize stage pays
it too. Each time is the best of 3 interleaved rounds.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass

import fastavro

from connectors.samples import sample_reports
from schemas.codec import AvroCodec, default_store
from schemas.models import BawasluReport

from .harness import best_of


@dataclass(frozen=True)
class Row:
    """One timed operation over ``records`` messages; ``baseline`` names its plain-fastavro peer."""

    operation: str
    records: int
    seconds: float
    baseline: str

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.records / self.seconds


def run(n: int = 50_000) -> list[Row]:
    """Time the hub codec and plain fastavro on the same ``n`` BawasluReport messages."""
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
    ops: list[tuple[str, Callable[[], None], str]] = [
        ("plain fastavro.schemaless_reader", plain_read, "decode"),
        ("AvroCodec.decode (framing, fingerprint lookup)", hub_read, "decode"),
        ("AvroCodec.decode + pydantic validation", hub_read_validate, "decode"),
        ("plain fastavro.schemaless_writer", plain_write, "encode"),
        ("AvroCodec.encode (single-object framing)", hub_write, "encode"),
    ]
    seconds = best_of([fn for _, fn, _ in ops])
    return [Row(op, n, t, base) for (op, _, base), t in zip(ops, seconds, strict=True)]


def table(rows: list[Row]) -> str:
    """The rows as a markdown table, each with its ratio to the plain fastavro call."""
    floors = {r.baseline: r.rate for r in rows if r.operation.startswith("plain")}
    lines = ["| operation | records | seconds | records/s | ratio to plain fastavro |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.operation} | {r.records} | {r.seconds:.2f} | {r.rate:,.0f} | "
                     f"{r.rate / floors[r.baseline]:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)))
