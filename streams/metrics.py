"""Prometheus metrics of the stream worker, on a registry of its own (one per app, so tests and
several apps in one process never share them). ``netral worker`` serves them on
``NETRAL_WORKER_METRICS_PORT``; consumer lag is the API's ``/metrics`` (``hub.lag``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class StreamMetrics:
    """What the cases stage does: inputs, rejects, its book, batches, snapshots, restores."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.inputs = Counter("netral_cases_inputs", "Inputs the cases stage took, by kind.",
                              ["kind"], registry=r)
        self.rejected = Counter("netral_cases_rejected",
                                "Inputs the cases stage sent to its DLQ, with the reason.",
                                registry=r)
        self.skipped = Counter(
            "netral_cases_inputs_skipped",
            "Records the cases stage did not take, by reason: taken (below its position, taken "
            "before) or ahead (records before it were never handed over; read again).",
            ["reason"], registry=r)
        self.read_again = Counter(
            "netral_cases_read_again",
            "Times the cases stage had a partition read again from its position, because "
            "records before the one handed over never were.", registry=r)
        self.expired = Counter(
            "netral_cases_inputs_expired",
            "Input records deleted by retention before the cases stage took them (the "
            "national record lacks them; each is named in an error log line).", registry=r)
        self.cases = Gauge("netral_cases_book_cases", "Cases in the cases stage's book.",
                           registry=r)
        self.entries = Gauge("netral_cases_journal_entries",
                             "Journal entries the book reflects (the next entry's index).",
                             registry=r)
        self.batch_seconds = Histogram(
            "netral_cases_batch_seconds", "Time to take, publish and journal one batch.",
            registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.snapshot_seconds = Gauge("netral_cases_snapshot_seconds",
                                      "Time the last snapshot of the book took to write.",
                                      registry=r)
        self.snapshot_bytes = Gauge("netral_cases_snapshot_bytes",
                                    "Size of the last snapshot written.", registry=r)
        self.snapshot_entry = Gauge("netral_cases_snapshot_entry",
                                    "Journal entry the last snapshot written covers up to.",
                                    registry=r)
        self.snapshot_failures = Counter(
            "netral_cases_snapshot_failures_total",
            "Snapshots the broker refused (the journal stays; the next due entry retries).",
            registry=r)
        self.restore_seconds = Gauge(
            "netral_cases_restore_seconds",
            "Time the last rebuild of the book took, by source (snapshot: load and journal "
            "tail; replay: the whole journal).", ["source"], registry=r)
