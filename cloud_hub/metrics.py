"""Prometheus counters of one ingest process (``cloud-hub ingest --metrics-port``)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

COUNTERS = {
    "received": "messages taken from the broker",
    "events_stored": "events newly stored",
    "duplicates": "events already stored (redeliveries)",
    "statuses": "status messages applied",
    "telemetry": "telemetry rows stored",
    "snapshots": "snapshots stored",
    "dead_letters": "messages refused into dead_letters",
    "batches": "committed batches",
    "acked": "messages acknowledged to the broker after commit",
    "db_retries": "batches retried because the database was unavailable",
}


class IngestCollector:
    def __init__(self, worker):
        self.worker = worker

    def collect(self):
        snap = self.worker.snapshot()
        for name, doc in COUNTERS.items():
            yield CounterMetricFamily(f"edgesight_ingest_{name}", doc, value=snap[name])
        yield GaugeMetricFamily("edgesight_ingest_queued", "messages received, not yet committed",
                                value=snap["queued"])
        yield GaugeMetricFamily("edgesight_ingest_lag_seconds", "receive → commit time of the last batch",
                                value=snap["last_batch_lag_s"])
        yield GaugeMetricFamily("edgesight_ingest_since_commit_seconds", "seconds since the last commit",
                                value=time.time() - snap["last_commit_at"] if snap["last_commit_at"] else 0.0)
        yield GaugeMetricFamily("edgesight_ingest_connected", "1 while connected to the broker",
                                value=int(snap["connected"]))
        latency = GaugeMetricFamily("edgesight_ingest_event_latency_seconds",
                                    "edge timestamp → commit, over the last events", labels=["quantile"])
        latency.add_metric(["0.5"], snap["latency_p50_s"])
        latency.add_metric(["0.99"], snap["latency_p99_s"])
        yield latency
        yield GaugeMetricFamily("edgesight_ingest_latency_samples", "events behind the latency quantiles",
                                value=snap["latency_samples"])


def serve_ingest_metrics(worker, port: int, addr: str = "0.0.0.0") -> None:
    registry = CollectorRegistry()
    registry.register(IngestCollector(worker))
    start_http_server(port, addr=addr, registry=registry)
