"""Operator settings: every tunable comes from here, with the ``NETRAL_`` prefix.

Built on first call by :func:`get_settings`, never at import. A bad value fails at start with one
line naming the variable and what to fix (:class:`~schemas.errors.ConfigError`).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import regions
from schemas.errors import ConfigError
from schemas.kafka import KafkaConnection
from schemas.models.enums import Election, Position
from schemas.topics import AUDIT_RETENTION_DAYS, RAW_RETENTION_DAYS
from sinks.siasn.runner import NATIONAL_REGION
from streams.config import STAGES

DEV_SIASN_SECRETS = ("netral-dev-secret", "netral-dev-password")
"""The mock SIASN's client secret and password: defaults in dev, refused with NETRAL_ENV=prod."""


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
    log_client_debug: bool = Field(
        False, description="DEBUG logs of the Kafka client libraries (they contain payloads)")

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
    broker_cluster_heap_mb: int = Field(384, ge=128, le=16384,
                                        description="Heap per node of `--brokers N` clusters")
    broker_start_timeout_s: float = Field(90.0, gt=0)
    broker_stop_timeout_s: float = Field(30.0, gt=0)
    broker_admin_user: str = Field("netral-admin", pattern=r"^[A-Za-z0-9._-]{1,64}$",
                                   description="Super user of the secure local broker")

    # Topics.
    topic_partitions: int = Field(4, ge=1, le=256)
    # Unset: the cluster's (RF min(3, brokers), min ISR RF - 1), for the hub's topics and the
    # worker's internal ones alike (hub.kafka_admin.replication_for).
    topic_replication: int | None = Field(None, ge=1, le=5)
    topic_min_insync: int | None = Field(None, ge=1, le=5)

    # Stream worker (Faust).
    worker_app_id: str = "netral-streams"
    # at_least_once: faust-streaming 0.15's exactly_once puts each send in the transaction of
    # its *destination* partition (faust/transport/consumer.py, Consumer.send), not of the input
    # whose offset it commits; every output here carries a deterministic id instead (README).
    worker_processing_guarantee: Literal["exactly_once", "at_least_once"] = "at_least_once"
    worker_web_port: int = Field(6066, ge=0, le=65535)
    worker_batch_size: int = Field(500, ge=1, le=100_000)
    worker_batch_within_s: float = Field(0.05, gt=0)
    worker_producer_linger_ms: float = Field(
        5.0, ge=0, le=1000, description="How long the worker's producer waits to fill a batch "
        "per partition before sending it (Faust's default 0 sends every record in a request of "
        "its own)")
    worker_producer_batch_bytes: int = Field(
        256 * 1024, ge=16 * 1024, le=16 * 1024 * 1024,
        description="Largest batch per partition the worker's producer sends")
    worker_stop_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="After SIGTERM/SIGINT, how long the graceful stop may "
        "take before the worker exits anyway (code 124)")
    worker_hole_check_s: float = Field(
        10.0, ge=0, le=3600, description="How often the worker checks for a partition stuck "
        "behind its committed offset (records past it, none in flight, no progress for a whole "
        "interval) and seeks it back; 0: never")
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Serve the worker's Prometheus metrics (the cases "
        "stage's inputs, rejects, book size, batch time, snapshots and restores); unset: off")
    worker_gc_threshold: int = Field(
        50_000, ge=0, description="First-generation threshold of Python's cyclic garbage "
        "collector in the worker (Python's default is 700; 0 keeps it): at 700 the rules' "
        "allocations start a collection every few events, ~10% of the cases stage's CPU")
    worker_gc_freeze_restored: bool = Field(
        True, description="Restore the cases stage's book with the cyclic garbage collector "
        "paused, then move it out of the collector's passes (gc.freeze): a full pass over a "
        "restored book took 1.0-1.4 s at 20,000 cases, linear, and holds the event loop")
    worker_stages: str = Field(
        "normalize,cases,early-warning", description="The stages this worker process runs, "
        "comma-separated, of normalize, cases, early-warning: split them over processes (each "
        "with its own NETRAL_WORKER_APP_ID) so each stage has a core of its own")
    cases_snapshot_every: int = Field(
        10, ge=0, le=1_000_000, description="The cases stage snapshots its book after this "
        "many journal entries (batches), once the inputs since the last snapshot are at least "
        "as many as its cases, then drops the journal entries the snapshot covers; 0: never "
        "(the journal grows and a restart replays all of it)")
    cases_snapshot_chunk_bytes: int = Field(
        512 * 1024, ge=1024, le=900_000, description="Largest changelog message of a cases "
        "snapshot (a snapshot is split into chunks of at most this size; Kafka's default "
        "message limit is 1 MB)")
    deadline_scan_interval_s: float = Field(
        300.0, ge=0, description="How often the leader asks for a deadline scan; 0: never "
        "(ticks only from `netral cases tick`)")

    # HTTP API and ingest.
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=1, le=65535)
    api_keys_file: Path | None = Field(None, description="Default: <home>/api-keys.yaml")
    api_cors_origins: str = Field(
        "", description="Comma-separated browser origins allowed by CORS; empty = closed")
    ingest_max_records: int = Field(500, ge=1, le=10_000)
    ingest_max_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    ingest_rate: str = Field("120/minute", pattern=r"^\d+/(second|minute|hour|day)$")

    # Retention of personal data in the national record (`netral purge` without --older-than).
    personal_data_retention_days: int | None = Field(None, ge=1, le=36500)
    raw_retention_days: int = Field(
        RAW_RETENTION_DAYS, ge=1, le=36500,
        description="retention.ms of the netral.raw.* topics (agencies' records, personal data); "
                    "`netral topics create` applies it, also to existing topics")
    audit_retention_days: int = Field(
        AUDIT_RETENTION_DAYS, ge=1, le=36500,
        description="retention.ms of netral.audit, the personal-data access log")
    audit_relay_s: float = Field(
        1.0, ge=0, le=3600,
        description="How often the API publishes its access log to netral.audit; 0: not in "
                    "this API process (run one relay per database)")

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
    # Monitoring API and dashboard (roles by key, sessions, live updates, lag).
    monitor_keys_file: Path | None = Field(None, description="Default: <home>/monitor-keys.yaml")
    api_session_secret: SecretStr | None = Field(
        None, description="Signs dashboard session cookies; required when NETRAL_ENV=prod")
    api_session_max_age_s: int = Field(8 * 3600, ge=60, le=30 * 86400)
    api_page_max: int = Field(500, ge=1, le=10_000, description="Largest page of /v1/cases")
    api_export_max: int = Field(100_000, ge=1, le=5_000_000,
                                description="Most rows in one CSV/XLSX export")
    dashboard_poll_s: float = Field(2.0, gt=0, le=60, description="SSE refresh interval")
    deadline_risk_days: int = Field(3, ge=0, le=30,
                                    description="Working days left that count as at risk")
    lag_refresh_s: float = Field(15.0, gt=0, le=3600,
                                 description="How often the API refreshes lag for /metrics")
    lag_timeout_s: float = Field(10.0, gt=0, le=300, description="Broker timeout of lag reads")
    lag_alert_threshold: int = Field(10_000, ge=0, description="Lag (messages, per group) "
                                     "above which a group counts as behind")
    lag_alert_after_s: float = Field(300.0, ge=0, description="How long a group may stay "
                                     "behind before the API raises an ops alert")
    lag_alert_region: str = Field("31", pattern=r"^\d{2}(\.\d{2})?$",
                                  description="Region (Satgas) the ops lag alerts go to")

    # Wire format and stores.
    schema_registry_url: str | None = None
    database_url: str | None = None

    # SIASN adapter (`netral siasn-adapter`); the defaults talk to `netral mock-siasn`.
    siasn_url: str = Field("http://127.0.0.1:8780",
                           description="SIASN base URL: scheme, host and port, no path")
    siasn_api_path: str = Field("/apisiasn/1.0", pattern=r"^/\S*$")
    siasn_gateway_token_url: str | None = Field(
        None, pattern=r"^https?://\S+$", description="Default: <siasn_url>/oauth2/token")
    siasn_sso_token_url: str | None = Field(
        None, pattern=r"^https?://\S+$", description="Default: <siasn_url>/sso/token")
    siasn_client_id: str = Field("netral-dev", min_length=1)
    siasn_client_secret: SecretStr = SecretStr(DEV_SIASN_SECRETS[0])
    siasn_username: str = Field("netral-operator", min_length=1)
    siasn_password: SecretStr = SecretStr(DEV_SIASN_SECRETS[1])
    siasn_sso_client_id: str | None = None
    siasn_timeout_s: float = Field(10.0, gt=0)
    siasn_max_attempts: int = Field(8, ge=1, le=100,
                                    description="Must exceed NETRAL_SIASN_BREAKER_THRESHOLD")
    siasn_backoff_initial_s: float = Field(0.5, gt=0)
    siasn_backoff_max_s: float = Field(30.0, gt=0)
    siasn_breaker_threshold: int = Field(5, ge=1)
    siasn_breaker_reset_s: float = Field(30.0, gt=0)
    siasn_max_hold_s: float = Field(1800.0, gt=0)
    siasn_token_refresh_margin_s: float = Field(60.0, ge=0)
    siasn_group_id: str = Field("netral-siasn-adapter", min_length=1)
    siasn_transactional_id: str | None = Field(None, description="Default: <group id>-tx")
    siasn_batch_size: int = Field(100, ge=1, le=10_000)
    siasn_concurrency: int = Field(8, ge=1, le=256)
    siasn_alert_region: str = Field(NATIONAL_REGION, description="Region whose Satgas gets "
                                    "failure alerts (orders carry none); 31: DKI Jakarta, BKN")

    # Satgas alert channels (`netral alerts run`, `netral alerts receiver`).
    alerts_routes_file: Path | None = Field(
        None, description="Routes YAML; default: the shipped example (dev only)")
    alerts_group_id: str = "netral-alerts"
    alerts_batch_size: int = Field(200, ge=1, le=10_000)
    alerts_concurrency: int = Field(8, ge=1, le=256)
    alerts_max_attempts: int = Field(5, ge=1, le=100)
    alerts_backoff_initial_s: float = Field(0.5, gt=0)
    alerts_backoff_max_s: float = Field(30.0, gt=0)
    alerts_http_timeout_s: float = Field(10.0, gt=0)
    alerts_digest_threshold: int = Field(10, ge=1, description="Alerts per window sent singly")
    alerts_digest_window_s: float = Field(300.0, gt=0)
    alerts_smtp_host: str = "127.0.0.1"
    alerts_smtp_port: int = Field(1025, ge=1, le=65535)
    alerts_smtp_username: str | None = None
    alerts_smtp_password: SecretStr | None = None
    alerts_smtp_security: Literal["none", "starttls", "tls"] = "none"
    alerts_mail_from: str = Field("netral-alerts@localhost", pattern=r"^[^@\s]+@[^@\s]+$")
    alerts_receiver_file: Path | None = Field(
        None, description="Where `netral alerts receiver` appends; default <home>/alerts.jsonl")
    alerts_signature_tolerance_s: float = Field(300.0, gt=0)
    alerts_metrics_host: str = "127.0.0.1"
    alerts_metrics_port: int | None = Field(None, ge=1, le=65535,
                                            description="Serve Prometheus metrics; unset: off")

    @field_validator("siasn_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("give the SIASN base URL as http(s)://host[:port]")
        if parts.path.strip("/") or parts.query:
            raise ValueError("give scheme, host and port only; the API path is "
                             "NETRAL_SIASN_API_PATH (default /apisiasn/1.0)")
        return value

    @field_validator("worker_stages")
    @classmethod
    def _known_stages(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = sorted(set(names) - set(STAGES))
        if unknown or not names:
            raise ValueError(f"give a comma-separated list of {', '.join(STAGES)}"
                             + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
        return ",".join(n for n in STAGES if n in names)

    @field_validator("siasn_alert_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if not regions.is_known(value):
            raise ValueError("not a Kemendagri region code (e.g. 31 or 32.73)")
        return value

    def state_dir(self) -> Path:
        """The state folder as an absolute path."""
        return self.home.expanduser().resolve()

    def stages(self) -> frozenset[str]:
        return frozenset(self.worker_stages.split(","))

    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.api_cors_origins.split(",") if o.strip()]

    def resolved_api_keys_file(self) -> Path:
        return self.api_keys_file or self.state_dir() / "api-keys.yaml"

    def resolved_alerts_receiver_file(self) -> Path:
        return self.alerts_receiver_file or self.state_dir() / "alerts-received.jsonl"

    def resolved_monitor_keys_file(self) -> Path:
        return self.monitor_keys_file or self.state_dir() / "monitor-keys.yaml"

    def session_secret(self) -> str | None:
        """The cookie-signing secret; None in dev means "a random one per process"."""
        if self.api_session_secret is not None:
            value = self.api_session_secret.get_secret_value()
            if len(value) < 32:
                raise ConfigError("setting NETRAL_API_SESSION_SECRET is too short: use at least "
                                  "32 random characters")
            return value
        if self.env == "prod":
            raise ConfigError("setting NETRAL_API_SESSION_SECRET is required when "
                              "NETRAL_ENV=prod (32+ random characters)")
        return None

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
