"""Prometheus metrics of ingest, in a registry owned by the service (never global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 6 * 3600, 86400, 7 * 86400)
_BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class IngestMetrics:
    """Counters and histograms of one ingest service.

    Pass ``registry`` to share one with the API's ``/metrics``; by default a
    fresh :class:`CollectorRegistry` is created per instance (tests stay
    independent, nothing is registered at import time).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter("vitalgate_ingest_messages_received_total",
                                "MQTT messages received", ["kind"], registry=r)
        self.received = Counter("vitalgate_ingest_readings_received_total",
                                "Readings received in valid payloads", registry=r)
        self.stored = Counter("vitalgate_ingest_readings_stored_total",
                              "Readings stored (first time seen)", registry=r)
        self.duplicates = Counter("vitalgate_ingest_readings_duplicate_total",
                                  "Readings already stored (acknowledged, not stored again)",
                                  registry=r)
        self.quarantined = Counter("vitalgate_ingest_quarantined_total",
                                   "Payloads or readings quarantined", ["reason"], registry=r)
        self.flush_failures = Counter("vitalgate_ingest_flush_failures_total",
                                      "Batch commits that failed and were retried", registry=r)
        self.consumer_errors = Counter("vitalgate_ingest_consumer_errors_total",
                                       "Errors raised by the committed-readings consumer",
                                       registry=r)
        self.batch_size = Histogram("vitalgate_ingest_batch_readings", "Readings per commit",
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.commit_seconds = Histogram("vitalgate_ingest_commit_seconds",
                                        "Time to commit one batch", buckets=_LATENCY_BUCKETS,
                                        registry=r)
        self.lag_seconds = Histogram("vitalgate_ingest_lag_seconds",
                                     "Measured time to stored time, per stored reading",
                                     buckets=_LAG_BUCKETS, registry=r)

    def render(self) -> bytes:
        """Prometheus text exposition of this registry (content type :data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (tests and the CLI summary); 0 when absent."""
        v = self.registry.get_sample_value(name, labels or None)
        return float(v or 0.0)
