"""Issue 2 acceptance: a frame becomes an int8 inference on the edge, an event crosses a real broker,
lands exactly once in the database and comes back from the API."""

from __future__ import annotations

import time
from collections import Counter

import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub.broker import EmbeddedBroker
from cloud_hub.models import Event
from cloud_hub.web.database import ENGINE_KEY
from shared.payloads import EventPayload
from tests.e2e.conftest import api_token, stored_count, stored_event_ids, wait_until
from tests.support.mosquitto import free_port

OUTAGE_S = 30.0  # the broker outage, held for real


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


def stored_keys(app: Flask) -> list[tuple[str, str]]:
    """Every event row as (device_id, event_id), duplicates included (the count is the point)."""
    with Session(app.extensions[ENGINE_KEY]) as db:
        return [(d, e) for d, e in db.execute(select(Event.device_id, Event.event_id))]


@pytest.mark.slow
@pytest.mark.parametrize(  # one backend: 30 s is the cost; PostgreSQL is what the hub runs on
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_broker_killed_30_s_mid_stream_every_event_lands_once(
    agent_factory, ingest, hub, mosquitto_factory, street_clip
) -> None:
    broker = mosquitto_factory()  # the deploy config as is
    worker = ingest(broker.url)
    assert worker.subscribed.wait(10)
    # The deploy config saves the broker's state every 30 s; a broker up that long has the hub's session
    # on disk. A graceful restart saves it now (a SIGKILL before any save would forget the session, and
    # events published before the hub reconnects would then have no subscriber).
    broker.stop()
    broker.start()
    agent = agent_factory(broker.url, {"type": "file", "path": str(street_clip), "loop": True})
    assert agent.outbox is not None
    wait_until(lambda: len(stored_event_ids(hub, agent.device_id)) >= 3, 60, "events before the outage")
    broker.stop(kill=True)  # SIGKILL: no goodbye to the agent or the hub
    killed_at, emitted_at_kill, depth_at_kill = time.monotonic(), len(agent.emitted), agent.outbox.depth()
    while time.monotonic() - killed_at < OUTAGE_S:
        time.sleep(0.5)
    assert all(cam.worker.is_alive() and cam.capture.is_alive() for cam in agent.cameras)
    assert len(agent.emitted) > emitted_at_kill, "the stream went on making events during the outage"
    assert agent.outbox.depth() > depth_at_kill, "they waited in the outbox"
    broker.start()  # same port, same persistence file
    back_at = len(agent.emitted)
    wait_until(lambda: len(agent.emitted) > back_at, 30, "events after the broker returned")
    agent.stop_event.set()  # end the stream; the link keeps draining until agent.stop()
    assert agent.wait_sources_finished(30)
    assert agent.wait_drained(90), "the outbox did not drain after the broker came back"
    emitted = {(agent.device_id, e.event_id) for e in agent.emitted}
    wait_until(lambda: len(stored_keys(hub)) >= len(emitted), 60, "ingest after the outage")
    rows = stored_keys(hub)
    assert set(rows) == emitted  # every event is in the hub database, nothing else
    assert max(Counter(rows).values()) == 1  # none twice
