"""NETRAL_WORKER_STAGES: a worker process runs the stages it is given, and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import streams_config
from hub.settings import NetralSettings
from schemas.kafka import KafkaConnection
from streams.app import create_app
from streams.config import STAGES, StreamsConfig

pytestmark = pytest.mark.unit
LOCAL: dict[str, Any] = {"kafka_bootstrap": "127.0.0.1:9"}  # an address only: nothing here connects


def _app(tmp_path: Path, stages: frozenset[str]) -> tuple[set[str], set[str]]:
    cfg = StreamsConfig(kafka=KafkaConnection(bootstrap="127.0.0.1:9"), data_dir=tmp_path,
                        stages=stages)
    app = create_app(cfg)  # builds the app and its agents; connects to nothing
    return set(app.agents), set(app.tables)


def test_every_stage_by_default(tmp_path: Path) -> None:
    agents, tables = _app(tmp_path, frozenset(STAGES))
    assert {"normalize", "cases", "early-warning"} <= agents
    assert tables == {"cases-journal", "cases-snapshot", "early-warning"}


def test_early_warning_alone_has_no_normalize_or_cases(tmp_path: Path) -> None:
    agents, tables = _app(tmp_path, frozenset({"early-warning"}))
    assert "early-warning" in agents
    assert not agents & {"normalize", "cases"}
    assert tables == {"early-warning"}


def test_normalize_and_cases_without_early_warning(tmp_path: Path) -> None:
    agents, tables = _app(tmp_path, frozenset({"normalize", "cases"}))
    assert agents == {"normalize", "cases"}
    assert tables == {"cases-journal", "cases-snapshot"}


def test_the_setting_is_checked_and_put_in_pipeline_order() -> None:
    settings = NetralSettings(worker_stages=" early-warning, normalize ", **LOCAL)
    assert settings.worker_stages == "normalize,early-warning"
    assert streams_config(settings).stages == {"normalize", "early-warning"}
    with pytest.raises(ValueError, match="unknown: enrich"):
        NetralSettings(worker_stages="cases,enrich", **LOCAL)
    with pytest.raises(ValueError, match="comma-separated list"):
        NetralSettings(worker_stages=" , ", **LOCAL)


def test_the_producer_batches_by_linger_and_size(tmp_path: Path) -> None:
    settings = NetralSettings(worker_producer_linger_ms=7, worker_producer_batch_bytes=65536,
                              **LOCAL)
    cfg = streams_config(settings).model_copy(update={"data_dir": tmp_path})
    app = create_app(cfg)
    assert app.conf.producer_linger == pytest.approx(0.007)
    assert app.conf.producer_max_batch_size == 65536
