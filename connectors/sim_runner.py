"""Publishing a simulated wave the way agencies do: each agency's outbox, drained by its relay.

Bad native rows go through the agency's own mapping and are rejected there (counted, never
published), exactly as a real connector would reject them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from schemas.codec import AvroCodec
from schemas.errors import InvalidMessage
from schemas.kafka import KafkaConnection
from schemas.topics import Agency

from .agencies import PARSERS
from .outbox import OutboxRelay, agency_engine, enqueue
from .simulator import Simulation, iter_truth_lines


@dataclass
class WaveReport:
    queued: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    rejected_at_connector: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def write_truth(sim: Simulation, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for line in iter_truth_lines(sim):
            fh.write(json.dumps(line) + "\n")


async def publish_wave(sim: Simulation, kafka: KafkaConnection, outbox_dir: Path, *,
                       rate: float = 0.0,
                       progress: Callable[[str, int], None] | None = None) -> WaveReport:
    """Queue every event in its agency's outbox (paced at ``rate``/s if > 0) while the relays
    drain them; returns when every queued row is acknowledged by the broker."""
    codec = AvroCodec()
    await asyncio.to_thread(outbox_dir.mkdir, parents=True, exist_ok=True)
    engines = {a: agency_engine(f"sqlite:///{outbox_dir / f'{a.value}.db'}") for a in Agency}
    relays = {a: OutboxRelay(engines[a], kafka) for a in Agency}
    for relay in relays.values():
        await relay.start()
    report = WaveReport()
    started = time.monotonic()
    done = asyncio.Event()

    async def drain(agency: Agency) -> None:
        relay = relays[agency]
        while True:
            sent = await relay.drain_once()
            if sent and progress:
                progress("sent", sent)
            if not sent:
                if done.is_set():
                    return
                await asyncio.sleep(0.1)

    tasks = [asyncio.create_task(drain(a)) for a in Agency]
    try:
        for bad in sim.bad:
            try:
                PARSERS[Agency(bad.agency)](bad.native or {})
            except InvalidMessage as err:
                report.rejected_at_connector.append((bad.event_id, str(err)))
        for i, ev in enumerate(sim.events):
            assert ev.record is not None
            with engines[Agency(ev.agency)].begin() as conn:
                enqueue(conn, ev.record, codec)
            report.queued[ev.agency] += 1
            if progress:
                progress("queued", 1)
            if rate > 0:
                delay = started + (i + 1) / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif i % 200 == 0:
                await asyncio.sleep(0)  # let the relays run
        done.set()
        await asyncio.gather(*tasks)
    finally:
        done.set()
        for relay in relays.values():
            await relay.stop()
    report.sent = sum(r.stats.sent for r in relays.values())
    report.seconds = time.monotonic() - started
    return report
