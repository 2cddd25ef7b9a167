"""Composition root: builds the pieces each command needs from the settings (nothing at import)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr, ValidationError

from schemas.codec import AvroCodec
from schemas.errors import ConfigError
from schemas.kafka import KafkaConnection
from sinks.alerts.channels import RetryPolicy, SmtpConfig
from sinks.alerts.routes import Routes, example_routes_file, load_routes
from sinks.siasn.client import SiasnConfig
from sinks.siasn.runner import AdapterTopics, RunnerOptions
from streams.config import StreamsConfig
from streams.rules.early_warning.config import EarlyWarningConfig, Pasal71Window

from .broker.cluster import LocalCluster
from .broker.local import LocalBroker
from .settings import DEV_SIASN_SECRETS, NetralSettings

if TYPE_CHECKING:
    from .api.deps import Monitor


def local_broker(settings: NetralSettings, *, secure: bool = False) -> LocalBroker:
    return LocalBroker(
        settings.state_dir(),
        version=settings.kafka_version,
        host=settings.broker_host,
        port=settings.broker_port,
        controller_port=settings.broker_controller_port,
        heap_mb=settings.broker_heap_mb,
        secure=secure,
        admin_user=settings.broker_admin_user,
    )


def local_cluster(settings: NetralSettings, size: int | None = None) -> LocalCluster | None:
    """The local multi-node cluster: the one laid out in the state folder, or a new one of
    ``size`` nodes; None when there is none and no size is asked for."""
    kwargs = {"version": settings.kafka_version, "host": settings.broker_host,
              "heap_mb": settings.broker_cluster_heap_mb}
    if size is not None:
        return LocalCluster(settings.state_dir(), size=size, **kwargs)  # type: ignore[arg-type]
    return LocalCluster.existing(settings.state_dir(), **kwargs)


def bootstrap_servers(settings: NetralSettings) -> str:
    """NETRAL_KAFKA_BOOTSTRAP if set, else the local cluster or broker (which must run)."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    if (cluster := local_cluster(settings)) is not None:
        if not any(n.running for n in cluster.status()):
            raise ConfigError("no Kafka to talk to: the local cluster is stopped; start it with "
                              f"`netral broker start --brokers {cluster.size}`")
        return cluster.bootstrap()
    broker = local_broker(settings)
    if broker.running_pid() is None:
        raise ConfigError(
            "no Kafka to talk to: set NETRAL_KAFKA_BOOTSTRAP=host:port, "
            "or start the local broker with `netral broker start`"
        )
    return broker.bootstrap()


def kafka(settings: NetralSettings, client_id: str = "netral") -> KafkaConnection:
    """The connection from NETRAL_KAFKA_*; against the local secure broker the gaps are filled:
    SASL_SSL + SCRAM-SHA-512 and its CA, and the hub admin's identity unless a username is set."""
    conn = settings.kafka(bootstrap_servers(settings), client_id=client_id)
    if settings.kafka_bootstrap:
        return conn
    broker = local_broker(settings)
    if not broker.secure:
        return conn
    admin = broker.admin_connection(client_id)
    if conn.username:
        return conn.model_copy(update={
            "security_protocol": "SASL_SSL", "ca_file": conn.ca_file or admin.ca_file,
            "sasl_mechanism": conn.sasl_mechanism or "SCRAM-SHA-512"})
    return admin


def codec(settings: NetralSettings) -> AvroCodec:
    if settings.schema_registry_url:
        from .registry import RegistryClient

        return AvroCodec(registry=RegistryClient(settings.schema_registry_url))
    return AvroCodec()


def streams_config(settings: NetralSettings) -> StreamsConfig:
    """The worker's settings; unset, the replication of the topics it creates is 1 here, and
    ``netral worker`` sets the cluster's (:func:`hub.kafka_admin.replication_for`)."""
    return StreamsConfig(
        app_id=settings.worker_app_id,
        kafka=kafka(settings, client_id=settings.worker_app_id),
        processing_guarantee=settings.worker_processing_guarantee,
        partitions=settings.topic_partitions,
        replication=settings.topic_replication or 1,
        data_dir=settings.state_dir() / "worker" / settings.worker_app_id,
        web_port=settings.worker_web_port,
        batch_size=settings.worker_batch_size,
        batch_within_s=settings.worker_batch_within_s,
        producer_linger_ms=settings.worker_producer_linger_ms,
        producer_batch_bytes=settings.worker_producer_batch_bytes,
        deadline_scan_interval_s=settings.deadline_scan_interval_s,
        cases_snapshot_every=settings.cases_snapshot_every,
        cases_snapshot_chunk_bytes=settings.cases_snapshot_chunk_bytes,
        gc_freeze_restored=settings.worker_gc_freeze_restored,
        hole_check_s=settings.worker_hole_check_s,
        stages=settings.stages(),
        early_warning=early_warning_config(settings),
    )


def early_warning_config(settings: NetralSettings) -> EarlyWarningConfig:
    """The early-warning thresholds from ``NETRAL_EW_*``; a bad window is one clear line."""
    windows = {}
    for election, (start, end) in settings.ew_pasal71_windows.items():
        if end is not None and end < start:
            raise ConfigError(f"setting NETRAL_EW_PASAL71_WINDOWS is invalid: {election} ends "
                              f"({end}) before it starts ({start})")
        windows[election] = Pasal71Window(start=start, end=end)
    return EarlyWarningConfig(
        spike_window_days=settings.ew_spike_window_days,
        spike_baseline_windows=settings.ew_spike_baseline_windows,
        spike_min_count=settings.ew_spike_min_count,
        spike_factor=settings.ew_spike_factor,
        repeat_min_cases=settings.ew_repeat_min_cases,
        senior_positions=settings.ew_senior_positions,
        deadline_risk_working_days=settings.ew_deadline_risk_working_days,
        pasal71_windows=windows,
        ikp_high=settings.ew_ikp_high,
        ikp_file=settings.ew_ikp_file,
        deadline_scan_s=settings.ew_deadline_scan_s,
    )


def alert_routes(settings: NetralSettings) -> Routes:
    """The routes file; without NETRAL_ALERTS_ROUTES_FILE the shipped example, in dev only."""
    path = settings.alerts_routes_file
    if path is None:
        if settings.env == "prod":
            raise ConfigError("set NETRAL_ALERTS_ROUTES_FILE to the Satgas routes file "
                              "(the shipped example is for the local demo only)")
        path = example_routes_file()
    return load_routes(path)


def alert_retry_policy(settings: NetralSettings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.alerts_max_attempts,
                       initial_s=settings.alerts_backoff_initial_s,
                       max_s=settings.alerts_backoff_max_s,
                       timeout_s=settings.alerts_http_timeout_s)


def smtp_config(settings: NetralSettings) -> SmtpConfig:
    return SmtpConfig(host=settings.alerts_smtp_host, port=settings.alerts_smtp_port,
                      mail_from=settings.alerts_mail_from,
                      username=settings.alerts_smtp_username,
                      password=settings.alerts_smtp_password,
                      security=settings.alerts_smtp_security)


def siasn_config(settings: NetralSettings) -> SiasnConfig:
    """Where SIASN is and how to retry; the mock's dev credentials are refused in prod."""
    secrets = {settings.siasn_client_secret.get_secret_value(),
               settings.siasn_password.get_secret_value()}
    if settings.env == "prod" and secrets & set(DEV_SIASN_SECRETS):
        raise ConfigError("NETRAL_SIASN_CLIENT_SECRET / NETRAL_SIASN_PASSWORD still hold the "
                          "mock's dev values: set the real SIASN credentials")
    try:
        return SiasnConfig(
            base_url=settings.siasn_url, api_path=settings.siasn_api_path,
            gateway_token_url=settings.siasn_gateway_token_url,
            sso_token_url=settings.siasn_sso_token_url,
            client_id=settings.siasn_client_id, client_secret=settings.siasn_client_secret,
            username=settings.siasn_username, password=settings.siasn_password,
            sso_client_id=settings.siasn_sso_client_id, timeout_s=settings.siasn_timeout_s,
            max_attempts=settings.siasn_max_attempts,
            backoff_initial_s=settings.siasn_backoff_initial_s,
            backoff_max_s=settings.siasn_backoff_max_s,
            breaker_threshold=settings.siasn_breaker_threshold,
            breaker_reset_s=settings.siasn_breaker_reset_s,
            max_hold_s=settings.siasn_max_hold_s,
            token_refresh_margin_s=settings.siasn_token_refresh_margin_s,
        )
    except ValidationError as err:  # the settings checked each field; this is a combination
        first = err.errors()[0]
        loc = first["loc"]
        names = (f"NETRAL_SIASN_{'URL' if loc[0] == 'base_url' else str(loc[0]).upper()}"
                 if loc else "NETRAL_SIASN_MAX_ATTEMPTS / _BREAKER_THRESHOLD")
        raise ConfigError(f"setting {names} is invalid: "
                          f"{first['msg'].removeprefix('Value error, ')}") from None


def siasn_runner_options(settings: NetralSettings, topics: AdapterTopics | None = None
                         ) -> RunnerOptions:
    """The adapter loop's tunables; ``topics`` overrides the topic names (tests, staging)."""
    return RunnerOptions(
        transactional_id=settings.siasn_transactional_id, batch_size=settings.siasn_batch_size,
        concurrency=settings.siasn_concurrency, alert_region=settings.siasn_alert_region,
        topics=topics or AdapterTopics(),
    )


def connection_env(conn: KafkaConnection) -> dict[str, str]:
    """The NETRAL_KAFKA_* variables that make a child process connect exactly like ``conn``."""
    env = {"NETRAL_KAFKA_BOOTSTRAP": conn.bootstrap,
           "NETRAL_KAFKA_SECURITY_PROTOCOL": conn.security_protocol}
    if conn.sasl_mechanism:
        env["NETRAL_KAFKA_SASL_MECHANISM"] = conn.sasl_mechanism
    if conn.username:
        env["NETRAL_KAFKA_USERNAME"] = conn.username
    if conn.password:
        env["NETRAL_KAFKA_PASSWORD"] = conn.password.get_secret_value()
    if conn.ca_file:
        env["NETRAL_KAFKA_CA_FILE"] = conn.ca_file
    return env


def service_env(settings: NetralSettings, service: str) -> dict[str, str]:
    """Kafka settings for a child process running one hub service (``up``, ``demo``).

    Against the local secure broker the service runs as its own least-privilege principal
    (``netral principals`` role), with a fresh password set for this run and passed only in the
    child's environment; otherwise it connects like this process.
    """
    conn = kafka(settings, client_id=f"netral-{service}")
    if settings.kafka_bootstrap or not local_broker(settings).secure:
        return connection_env(conn)
    from .principals import Names, PrincipalAdmin, Service, grants_for, new_password, principal_name

    role = Service(service)
    user = principal_name(service=role)
    admin = PrincipalAdmin(conn)
    admin.grant(user, grants_for(service=role, names=Names(
        streams_app_id=settings.worker_app_id, siasn_group=settings.siasn_group_id,
        alerts_group=settings.alerts_group_id)))
    password = new_password()
    admin.set_password(user, password)
    return connection_env(conn.model_copy(update={"username": user,
                                                  "password": SecretStr(password)}))


def monitor(settings: NetralSettings) -> Monitor:
    """The monitoring API's services: the national record's engine, the monitoring keys."""
    from sinks.sql.engine import create_sql_engine

    from .api.access import MonitorKeyStore
    from .api.deps import Monitor

    return Monitor(
        engine=create_sql_engine(settings.resolved_database_url()),
        keys=MonitorKeyStore.load(settings.resolved_monitor_keys_file()),
        page_max=settings.api_page_max,
        export_max=settings.api_export_max,
        deadline_risk_days=settings.deadline_risk_days,
        poll_s=settings.dashboard_poll_s,
        lag_refresh_s=settings.lag_refresh_s,
        lag_timeout_s=settings.lag_timeout_s,
        lag_alert_threshold=settings.lag_alert_threshold,
        lag_alert_after_s=settings.lag_alert_after_s,
        lag_alert_region=settings.lag_alert_region,
        audit_relay_s=settings.audit_relay_s,
    )
