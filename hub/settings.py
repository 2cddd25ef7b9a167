"""Operator settings: every tunable comes from here, with the ``NETRAL_`` prefix.

Built on first call by :func:`get_settings`, never at import. A bad value fails at start with one
line naming the variable and what to fix (:class:`~schemas.errors.ConfigError`).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import ConfigError
from schemas.kafka import KafkaConnection
from schemas.models.enums import Election, Position


def _default_pasal71() -> dict[Election, tuple[date, date | None]]:
    """Pilkada 2024: six months before candidate determination (22 Sep), until the term ends."""
    return {Election.PILKADA_2024: (date(2024, 3, 22), None)}


class NetralSettings(BaseSettings):
    """All settings of the hub. Environment variables are ``NETRAL_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(
        env_prefix="NETRAL_", extra="ignore", env_ignore_empty=True, frozen=True
    )

    home: Path = Field(Path(".netral"), description="State folder: broker jars, data, logs, pids")
    env: Literal["dev", "prod"] = "dev"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"

    # Kafka connection; unset bootstrap means "use the local broker that `netral broker` runs".
    kafka_bootstrap: str | None = None
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: str | None = None

    # Local broker (the embedded default).
    kafka_version: str = Field("3.9.1", pattern=r"^3\.9\.\d+$")
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(9092, ge=0, le=65535, description="0 picks a free port")
    broker_controller_port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    broker_heap_mb: int = Field(512, ge=128, le=16384)
    broker_start_timeout_s: float = Field(90.0, gt=0)
    broker_stop_timeout_s: float = Field(30.0, gt=0)

    # Topics.
    topic_partitions: int = Field(4, ge=1, le=256)
    topic_replication: int = Field(1, ge=1, le=5)
    topic_min_insync: int = Field(1, ge=1, le=5)

    # Stream worker (Faust).
    worker_app_id: str = "netral-streams"
    worker_processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    worker_web_port: int = Field(6066, ge=0, le=65535)
    worker_batch_size: int = Field(500, ge=1, le=100_000)
    worker_batch_within_s: float = Field(0.05, gt=0)

    # HTTP API and ingest.
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=1, le=65535)
    api_keys_file: Path | None = Field(None, description="Default: <home>/api-keys.yaml")
    ingest_max_records: int = Field(500, ge=1, le=10_000)
    ingest_max_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    ingest_rate: str = Field("120/minute", pattern=r"^\d+/(second|minute|hour|day)$")

    # Early warning (README, "Early warning").
    ew_spike_window_days: int = Field(1, ge=1, le=31)
    ew_spike_baseline_windows: int = Field(7, ge=1, le=90)
    ew_spike_min_count: int = Field(5, ge=1)
    ew_spike_factor: float = Field(3.0, gt=0)
    ew_repeat_min_cases: int = Field(2, ge=2)
    ew_senior_positions: tuple[Position, ...] = (Position.JPT, Position.PJ_KEPALA_DAERAH)
    ew_deadline_risk_working_days: int = Field(3, ge=0, le=30)
    ew_pasal71_windows: dict[Election, tuple[date, date | None]] = Field(
        default_factory=_default_pasal71,
        description='JSON, e.g. {"PILKADA_2024": ["2024-03-22", null]} (null: until term ends)')
    ew_ikp_high: float = Field(66.0, ge=0, le=100)
    ew_ikp_file: Path | None = Field(None, description="Default: the shipped IKP 2024 scores")
    ew_deadline_scan_s: float = Field(300.0, gt=0)

    # Wire format and stores.
    schema_registry_url: str | None = None
    database_url: str | None = None

    def state_dir(self) -> Path:
        """The state folder as an absolute path."""
        return self.home.expanduser().resolve()

    def resolved_api_keys_file(self) -> Path:
        return self.api_keys_file or self.state_dir() / "api-keys.yaml"

    def resolved_database_url(self) -> str:
        """The SQL URL, defaulting to SQLite in the state folder."""
        return self.database_url or f"sqlite:///{self.state_dir() / 'netral.db'}"

    def kafka(self, bootstrap: str, client_id: str = "netral") -> KafkaConnection:
        """Connection settings for one client, given the bootstrap servers to use."""
        return KafkaConnection(
            bootstrap=bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_username,
            password=self.kafka_password,
            ca_file=self.kafka_ca_file,
            client_id=client_id,
        )


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    value = first.get("input")
    return (
        f"setting NETRAL_{field.upper()}={value!r} is invalid: {first['msg']}"
        f" (fix the environment variable or .env)"
    )


@lru_cache(maxsize=1)
def get_settings() -> NetralSettings:
    """The process's settings, validated once; raises ConfigError with one clear line."""
    try:
        return NetralSettings()
    except ValidationError as err:
        raise ConfigError(_one_line(err)) from None
