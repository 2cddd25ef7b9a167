"""Settings: NETRAL_ prefix, defaults, and one clear line for a bad value."""

from __future__ import annotations

import pytest

from hub.settings import NetralSettings, get_settings
from schemas.errors import ConfigError
from tests.helpers import netral

pytestmark = pytest.mark.unit


def test_defaults_use_the_local_broker_and_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NETRAL_KAFKA_BOOTSTRAP", "NETRAL_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    settings = NetralSettings()
    assert settings.kafka_bootstrap is None
    assert settings.resolved_database_url().startswith("sqlite:///")
    assert settings.worker_processing_guarantee == "at_least_once"


def test_prefix_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRAL_KAFKA_BOOTSTRAP", "kafka1:9092,kafka2:9092")
    monkeypatch.setenv("NETRAL_TOPIC_PARTITIONS", "12")
    settings = NetralSettings()
    assert settings.kafka_bootstrap == "kafka1:9092,kafka2:9092"
    assert settings.topic_partitions == 12
    assert settings.kafka("b:1").bootstrap == "b:1"


def test_bad_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRAL_TOPIC_PARTITIONS", "many")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as info:
            get_settings()
    finally:
        get_settings.cache_clear()
    message = str(info.value)
    assert "\n" not in message
    assert "NETRAL_TOPIC_PARTITIONS" in message
    assert "'many'" in message


def test_cli_reports_a_bad_setting_without_a_traceback() -> None:
    proc = netral("topics", "list", env={"NETRAL_BROKER_PORT": "99999"})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "NETRAL_BROKER_PORT" in proc.stderr
    assert "Traceback" not in proc.stderr
