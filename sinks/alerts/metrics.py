"""Prometheus metrics of the alert channels, on a registry of their own (one per dispatcher, so
tests and several runners in one process never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class AlertMetrics:
    """Counters and timings that ``netral alerts run`` serves on ``NETRAL_ALERTS_METRICS_PORT``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter(
            "netral_alert_deliveries", "Notifications recorded, by outcome (sent, failed).",
            ["recipient", "channel", "kind", "outcome"], registry=self.registry)
        self.attempts = Counter(
            "netral_alert_delivery_attempts", "Attempts made, retries included.",
            ["recipient", "channel"], registry=self.registry)
        self.repeats = Counter(
            "netral_alert_repeats_skipped",
            "Deliveries skipped because the ledger already had them (redelivery, replay).",
            registry=self.registry)
        self.queued = Counter(
            "netral_alert_queued_for_digest", "Alerts held for a digest.", ["recipient"],
            registry=self.registry)
        self.dead_letters = Counter(
            "netral_alert_dead_letters", "Undecodable or invalid alerts sent to the DLQ.",
            registry=self.registry)
        self.seconds = Histogram(
            "netral_alert_delivery_seconds", "Time to deliver one notification, retries included.",
            ["channel"], registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
