"""Valid records for tests, and ways to break them on purpose."""

from __future__ import annotations

import uuid
from typing import Any

from connectors.samples import sample_reports
from schemas.codec import AvroCodec
from schemas.models import BawasluReport


def report(seed: int | None = None) -> BawasluReport:
    """One valid Bawaslu report with a unique source id."""
    base = sample_reports(1, seed=seed if seed is not None else uuid.uuid4().int % 10**6)[0]
    return base.model_copy(update={"source_id": f"t-{uuid.uuid4().hex[:12]}"})


def encode(codec: AvroCodec, record: BawasluReport, **avro_changes: Any) -> bytes:
    """Encode a report, optionally with fields changed *after* validation (to make bad input)."""
    value = record.to_avro()
    for path, new in avro_changes.items():
        target = value
        *parents, leaf = path.split("__")
        for p in parents:
            target = target[p]
        target[leaf] = new
    return codec.encode(record.avro_name, value)
