"""What the stream worker needs to know, handed in by the shell (never read from the env here)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.kafka import KafkaConnection

from .rules.early_warning.config import EarlyWarningConfig

STAGES = ("normalize", "cases", "early-warning")
"""The worker's stages, in pipeline order; a process runs any subset of them."""


class StreamsConfig(BaseModel):
    """Worker settings: connection, guarantee, batching and where Faust keeps local state."""

    model_config = ConfigDict(frozen=True)

    app_id: str = "netral-streams"
    kafka: KafkaConnection
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "at_least_once"
    partitions: int = 4
    replication: int = 1
    data_dir: Path
    web_port: int = 6066
    batch_size: int = 500
    batch_within_s: float = 0.05
    max_message_bytes: int = 1024 * 1024
    producer_linger_ms: float = 5.0
    producer_batch_bytes: int = 256 * 1024
    early_warning: EarlyWarningConfig = EarlyWarningConfig()
    hole_check_s: float = 10.0  # 0: no watch for partitions stuck behind their commit
    stages: frozenset[str] = frozenset(STAGES)
    deadline_scan_interval_s: float = 300.0  # 0: no timer (ticks only from `netral cases tick`)
    cases_snapshot_every: int = 10  # journal entries between snapshots of the book; 0: never
    cases_snapshot_chunk_bytes: int = 512 * 1024
    gc_freeze_restored: bool = True  # the restored book out of the cyclic GC's passes
