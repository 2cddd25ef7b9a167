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


# -- SIASN (NETRAL_SIASN_*, built into a SiasnConfig by hub.bootstrap) ---------------------------
def _clean_siasn(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in [v for v in os.environ if v.startswith("NETRAL_SIASN_") or v == "NETRAL_ENV"]:
        monkeypatch.delenv(var)


def test_siasn_settings_are_read_into_the_client_config(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    from hub.bootstrap import siasn_config, siasn_runner_options

    _clean_siasn(monkeypatch)
    defaults = siasn_config(NetralSettings())
    assert defaults.base_url == "http://127.0.0.1:8780"  # where `netral mock-siasn` listens
    assert (defaults.max_attempts, defaults.breaker_reset_s) == (8, 30.0)
    monkeypatch.setenv("NETRAL_SIASN_URL", "https://apimws.bkn.go.id:8243")
    monkeypatch.setenv("NETRAL_SIASN_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("NETRAL_SIASN_MAX_ATTEMPTS", "12")
    monkeypatch.setenv("NETRAL_SIASN_CONCURRENCY", "3")
    monkeypatch.setenv("NETRAL_SIASN_ALERT_REGION", "32.73")
    settings = NetralSettings()
    config = siasn_config(settings)
    assert config.api_url("/pns/blokir/1") == "https://apimws.bkn.go.id:8243/apisiasn/1.0/pns/blokir/1"
    assert config.client_secret.get_secret_value() == "s3cret"
    assert config.max_attempts == 12
    options = siasn_runner_options(settings)
    assert (options.concurrency, options.alert_region) == (3, "32.73")


@pytest.mark.parametrize(("var", "value", "says"), [
    ("NETRAL_SIASN_BATCH_SIZE", "0", "greater than or equal to 1"),
    ("NETRAL_SIASN_URL", "http://mock-siasn:8090/apisiasn/1.0", "NETRAL_SIASN_API_PATH"),
    ("NETRAL_SIASN_URL", "mock-siasn:8090", "http(s)://host"),
    ("NETRAL_SIASN_ALERT_REGION", "99", "Kemendagri"),
])
def test_a_bad_siasn_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, var: str,
                                                   value: str, says: str) -> None:
    _clean_siasn(monkeypatch)
    monkeypatch.setenv(var, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as info:
            get_settings()
    finally:
        get_settings.cache_clear()
    message = str(info.value)
    assert "\n" not in message
    assert var in message
    assert says in message


def test_siasn_retry_budget_must_outlast_the_breaker(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.bootstrap import siasn_config

    _clean_siasn(monkeypatch)
    monkeypatch.setenv("NETRAL_SIASN_MAX_ATTEMPTS", "5")
    with pytest.raises(ConfigError) as info:
        siasn_config(NetralSettings())
    message = str(info.value)
    assert "\n" not in message
    assert "NETRAL_SIASN_MAX_ATTEMPTS" in message
    assert "must exceed breaker_threshold" in message


def test_prod_refuses_the_mock_siasn_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.bootstrap import siasn_config

    _clean_siasn(monkeypatch)
    monkeypatch.setenv("NETRAL_ENV", "prod")
    monkeypatch.setenv("NETRAL_SIASN_CLIENT_SECRET", "real-secret")
    with pytest.raises(ConfigError, match="NETRAL_SIASN_PASSWORD"):
        siasn_config(NetralSettings())
    monkeypatch.setenv("NETRAL_SIASN_PASSWORD", "real-password")
    assert siasn_config(NetralSettings()).username == "netral-operator"


def test_siasn_adapter_cli_reports_a_bad_setting_in_one_line() -> None:
    proc = netral("siasn-adapter", env={"NETRAL_SIASN_MAX_ATTEMPTS": "3"})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "NETRAL_SIASN_MAX_ATTEMPTS" in proc.stderr
    assert "Traceback" not in proc.stderr
