"""The ingest process's own HTTP port (``cloud-hub ingest --metrics-port``): Prometheus counters on
``/metrics``, liveness on ``/healthz``, readiness on ``/readyz`` (connected, subscribed, every thread
alive, with the supervisor's restart counts), so an orchestrator sees a worker that cannot work."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from cloud_hub.supervisor import SupervisorCollector

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
        yield GaugeMetricFamily("edgesight_ingest_ready", "1 while connected, subscribed, all threads alive",
                                value=int(self.worker.ready()))
        latency = GaugeMetricFamily("edgesight_ingest_event_latency_seconds",
                                    "edge timestamp → commit, over the last events", labels=["quantile"])
        latency.add_metric(["0.5"], snap["latency_p50_s"])
        latency.add_metric(["0.99"], snap["latency_p99_s"])
        yield latency
        yield GaugeMetricFamily("edgesight_ingest_latency_samples", "events behind the latency quantiles",
                                value=snap["latency_samples"])


def readiness(worker) -> tuple[int, dict]:
    threads = worker.supervisor.status()
    ok = worker.ready()
    body = {"status": "ok" if ok else "unavailable",
            "checks": {"broker": "connected" if worker.connected.is_set() else "disconnected",
                       "subscribed": worker.subscribed.is_set(), "threads": threads}}
    return (200 if ok else 503), body


def serve_ingest_metrics(worker, port: int, addr: str = "0.0.0.0") -> ThreadingHTTPServer:
    registry = CollectorRegistry()
    registry.register(IngestCollector(worker))
    registry.register(SupervisorCollector(worker.supervisor))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, b'{"status": "ok"}', "application/json")
            elif path == "/readyz":
                status, body = readiness(worker)
                self._send(status, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:  # scrapes every few seconds: not worth a log line each
            return

    server = ThreadingHTTPServer((addr, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="ingest-metrics-http", daemon=True).start()
    return server
