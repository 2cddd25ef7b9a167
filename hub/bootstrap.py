"""Composition root: builds the pieces each command needs from the settings (nothing at import)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr

from schemas.codec import AvroCodec
from schemas.errors import ConfigError
from schemas.kafka import KafkaConnection
from sinks.alerts.channels import RetryPolicy, SmtpConfig
from sinks.alerts.routes import Routes, example_routes_file, load_routes
from streams.config import StreamsConfig

from .broker.local import LocalBroker
from .settings import NetralSettings

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


def bootstrap_servers(settings: NetralSettings) -> str:
    """NETRAL_KAFKA_BOOTSTRAP if set, else the local broker (which must be running)."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
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
    return StreamsConfig(
        app_id=settings.worker_app_id,
        kafka=kafka(settings, client_id=settings.worker_app_id),
        processing_guarantee=settings.worker_processing_guarantee,
        partitions=settings.topic_partitions,
        replication=settings.topic_replication,
        data_dir=settings.state_dir() / "worker" / settings.worker_app_id,
        web_port=settings.worker_web_port,
        batch_size=settings.worker_batch_size,
        batch_within_s=settings.worker_batch_within_s,
        deadline_scan_interval_s=settings.deadline_scan_interval_s,
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
        streams_app_id=settings.worker_app_id, alerts_group=settings.alerts_group_id)))
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
        deadline_risk_days=settings.deadline_risk_days,
        poll_s=settings.dashboard_poll_s,
        lag_refresh_s=settings.lag_refresh_s,
        lag_timeout_s=settings.lag_timeout_s,
    )
