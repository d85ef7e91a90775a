"""Issue 2 acceptance: a frame becomes an int8 inference on the edge, an event crosses a real broker,
lands exactly once in the database and comes back from the API."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_hub.broker import EmbeddedBroker
from shared.payloads import EventPayload
from tests.e2e.conftest import api_token, stored_count, stored_event_ids, wait_until
from tests.support.mosquitto import free_port


def run_clip_through(agent_factory, ingest, hub, broker_url: str, clip) -> list[EventPayload]:
    ingest(broker_url)
    agent = agent_factory(broker_url, {"type": "file", "path": str(clip)})
    assert agent.wait_sources_finished(120), "the clip did not finish"
    assert agent.wait_drained(30), "the outbox did not drain"
    emitted = list(agent.emitted)
    assert emitted, "the reference model found nothing on a rendered street clip"
    wait_until(lambda: len(stored_event_ids(hub, agent.device_id)) >= len(emitted), 30, "ingest")
    return emitted


def test_events_stored_exactly_once_and_served(agent_factory, ingest, hub, mosquitto, street_clip) -> None:
    emitted = run_clip_through(agent_factory, ingest, hub, mosquitto.url, street_clip)
    stored = stored_event_ids(hub, "cam-e2e-1")
    assert sorted(stored) == sorted(e.event_id for e in emitted)  # each once, none lost
    assert {e.kind for e in emitted} >= {"object"}

    client = hub.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_token(hub)}"
    seen: list[dict] = []
    cursor = None
    while True:
        query = "/api/v1/events?device=cam-e2e-1&limit=50" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(query).get_json()
        seen.extend(body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            break
    assert sorted(item["event_id"] for item in seen) == sorted(stored)
    person = [item for item in seen if item["label"] == "person"]
    assert person, "a rendered street has people in it"
    devices = {d["id"]: d for d in client.get("/api/v1/devices").get_json()["items"]}
    assert devices["cam-e2e-1"]["model"].startswith("fomo-street@")


def test_redelivered_event_is_stored_once(agent_factory, ingest, hub, mosquitto, street_clip) -> None:
    emitted = run_clip_through(agent_factory, ingest, hub, mosquitto.url, street_clip)
    before = stored_count(hub)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cam-e2e-1-replay")
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    topic = "edgesight/v1/devices/cam-e2e-1/events"
    for event in emitted[:5]:
        publisher.publish(topic, event.to_bytes(), qos=1).wait_for_publish(5)
    marker = emitted[0].model_copy(update={"event_id": "replay-marker-0001", "seq": 10_000})
    publisher.publish(topic, marker.to_bytes(), qos=1).wait_for_publish(5)
    publisher.loop_stop()
    publisher.disconnect()
    wait_until(lambda: "replay-marker-0001" in stored_event_ids(hub, "cam-e2e-1"), 20, "the marker event")
    assert stored_count(hub) == before + 1


def test_same_flow_on_the_embedded_broker(agent_factory, ingest, hub, street_clip) -> None:
    broker = EmbeddedBroker("127.0.0.1", free_port()).start()
    try:
        emitted = run_clip_through(agent_factory, ingest, hub, broker.url, street_clip)
        assert sorted(stored_event_ids(hub, "cam-e2e-1")) == sorted(e.event_id for e in emitted)
    finally:
        broker.stop()


def test_broker_down_at_start_then_everything_arrives_once(
    agent_factory, ingest, hub, mosquitto_factory, street_clip
) -> None:
    broker = mosquitto_factory()
    ingest(broker.url)  # the hub's persistent session exists on the broker, as in production
    broker.stop()
    agent = agent_factory(broker.url, {"type": "file", "path": str(street_clip)})
    assert agent.wait_sources_finished(120)
    emitted = list(agent.emitted)
    assert emitted and agent.outbox is not None and agent.outbox.depth() >= len(emitted)
    broker.start()
    assert agent.wait_drained(60), "the outbox did not drain after the broker came up"
    wait_until(lambda: len(stored_event_ids(hub, "cam-e2e-1")) >= len(emitted), 60, "ingest")
    stored = stored_event_ids(hub, "cam-e2e-1")
    assert sorted(stored) == sorted(e.event_id for e in emitted)
