"""Where the cases stage stands in each of its inputs, and whether a record is the next one.

The national record must not depend on the consumer's commit bookkeeping: Faust's lost records
across rebalances in thirteen ways (:mod:`streams.rebalance`), each time by committing, or reading
on, past records no stream had taken. So the stage keeps its own position per input partition
(the next offset it has to take), journaled in the same entry as the inputs that moved it
(:func:`streams.rules.stage.pack`), and takes its inputs strictly in offset order:

- the record at the position is taken, and the position moves past it;
- a record below the position was taken before (read again after a seek or a restart from an
  older commit): skipped;
- a record above the position on a topic where every offset is a record means records were
  never handed over: skipped, and the partition is read again from the position.

Where offsets may be no record (transaction markers: the SIASN adapter's results, or every
topic when the worker's own producer is transactional) a jump is taken as it comes. Elsewhere
markers are rare (``netral dlq replay`` writes in transactions): a jump over one is taken once
a read from the position has found its first record there (streams/processors/reading.py).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from schemas.topics import CASES, ORDERS_SIASN_RESULTS


class Placement(Enum):
    """A record's offset against the stage's position in its partition."""

    NEXT = "next"  # take it
    TAKEN = "taken"  # below the position: taken before, skip it
    AHEAD = "ahead"  # records before it were never handed over: skip it, read again


def position_key(topic: str, partition: int) -> str:
    """How a partition is named in the journal and the snapshot."""
    return f"{topic}:{partition}"


def positions_from(stored: Mapping[str, Any]) -> dict[str, int]:
    """Positions as a journal entry or a snapshot stores them (JSON), typed."""
    return {str(key): int(offset) for key, offset in stored.items()}


def gapless(topic: str, transactional: bool) -> bool:
    """Whether every offset of ``topic`` is a record: no transactional producer writes it
    (the SIASN adapter writes its results in transactions, whose commit markers take offsets;
    with ``transactional``, the worker's own producer writes the others so too), and it is not
    compacted (``netral.cases``) or a changelog."""
    if transactional:
        return False
    return topic not in (ORDERS_SIASN_RESULTS, CASES) and not topic.endswith("-changelog")


def place(position: int | None, offset: int, every_offset_a_record: bool) -> Placement:
    """Where the record at ``offset`` stands against the stage's ``position`` (None: not known,
    a journal written before positions were: the record is taken as it comes)."""
    if position is None or offset == position:
        return Placement.NEXT
    if offset < position:
        return Placement.TAKEN
    return Placement.AHEAD if every_offset_a_record else Placement.NEXT
