"""/healthz, /readyz and /metrics: what orchestrators and Prometheus read."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.hub.helpers import Device, event, wait_until


def metric_values(text: str) -> dict[str, float]:
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_readyz_reports_database_and_broker(app, client, mosquitto):
    app.config["HUB_SETTINGS"] = app.config["HUB_SETTINGS"].model_copy(update={"mqtt_url": mosquitto.url})
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}
    mosquitto.stop()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.get_json()["checks"]["broker"].startswith(f"127.0.0.1:{mosquitto.port}")
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_metrics_expose_ingest_progress_and_dead_letters(app, client, mosquitto, ingest_factory):
    worker = ingest_factory(mosquitto.url)
    cam = Device(mosquitto.host, mosquitto.port, "metric-cam")
    for seq in range(5):
        cam.send_event(event("metric-cam", seq))
    cam.publish("edgesight/v1/devices/metric-cam/events", b"nope")
    wait_until(lambda: worker.snapshot()["dead_letters"] == 1 and worker.snapshot()["events_stored"] == 5)
    values = metric_values(client.get("/metrics").get_data(as_text=True))
    assert values["edgesight_database_up"] == 1
    assert values["edgesight_dead_letters"] == 1
    assert values["edgesight_events_last_id"] >= 5
    assert values["edgesight_devices"] == 1
    assert values["edgesight_database_latency_seconds"] > 0

    from prometheus_client import CollectorRegistry, generate_latest

    from cloud_hub.metrics import IngestCollector

    registry = CollectorRegistry()
    registry.register(IngestCollector(worker))
    ingest_values = metric_values(generate_latest(registry).decode())
    assert ingest_values["edgesight_ingest_events_stored_total"] == 5
    assert ingest_values["edgesight_ingest_dead_letters_total"] == 1
    assert ingest_values["edgesight_ingest_connected"] == 1
    cam.close()
