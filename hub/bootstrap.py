"""Composition root: builds the pieces each command needs from the settings (nothing at import)."""

from __future__ import annotations

from schemas.codec import AvroCodec
from schemas.errors import ConfigError
from schemas.kafka import KafkaConnection
from streams.config import StreamsConfig
from streams.rules.early_warning.config import EarlyWarningConfig, Pasal71Window

from .broker.local import LocalBroker
from .settings import NetralSettings


def local_broker(settings: NetralSettings) -> LocalBroker:
    return LocalBroker(
        settings.state_dir(),
        version=settings.kafka_version,
        host=settings.broker_host,
        port=settings.broker_port,
        controller_port=settings.broker_controller_port,
        heap_mb=settings.broker_heap_mb,
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
    return settings.kafka(bootstrap_servers(settings), client_id=client_id)


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
