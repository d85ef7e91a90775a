"""Ingest: MQTT messages in, rows committed, then acknowledged (see worker.IngestWorker)."""
