"""Faults: ingest SIGKILLed mid-burst, two workers sharing a subscription, fuzzed payloads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from cloud_hub.config import normalise_database_url
from cloud_hub.ingest.records import Incoming, classify
from cloud_hub.ingest.store import BatchWriter
from cloud_hub.models import DeadLetter, Event
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.helpers import TOPICS, event, wait_until

REPO = Path(__file__).resolve().parents[2]


def counts(url: str) -> tuple[int, int]:
    engine = create_engine(normalise_database_url(url), poolclass=NullPool)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(Event)).scalar_one()
        distinct = conn.execute(select(func.count(func.distinct(Event.event_id)))).scalar_one()
    engine.dispose()
    return total, distinct


def start_ingest(database_url: str, mqtt_url: str, tmp_path: Path) -> subprocess.Popen:
    env = dict(os.environ, EDGESIGHT_DATABASE_URL=database_url, EDGESIGHT_MQTT_URL=mqtt_url,
               EDGESIGHT_INSTANCE_PATH=str(tmp_path / "instance"), EDGESIGHT_LOG_FORMAT="text")
    log = open(tmp_path / "ingest.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "cloud_hub", "ingest", "--client-id", "hub-ingest-k"],
                            env=env, cwd=REPO, stdout=log, stderr=log)


def test_ingest_killed_mid_burst_stores_every_event_exactly_once(app, database_url, mosquitto, tmp_path):
    total = 3000
    ingest = start_ingest(database_url, mosquitto.url, tmp_path)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="burst-cam")
    publisher.max_inflight_messages_set(200)
    publisher.max_queued_messages_set(0)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    try:
        wait_until(lambda: "ingest running" in (tmp_path / "ingest.log").read_text(), 60, "ingest subscribed")
        infos = [publisher.publish(TOPICS.events("burst-cam"), event("burst-cam", i).to_bytes(), qos=1)
                 for i in range(total // 2)]
        wait_until(lambda: counts(database_url)[0] > 200, 60, "ingest to be mid-burst")
        ingest.send_signal(signal.SIGKILL)
        ingest.wait(10)
        killed_at = counts(database_url)[0]
        infos += [publisher.publish(TOPICS.events("burst-cam"), event("burst-cam", i).to_bytes(), qos=1)
                  for i in range(total // 2, total)]
        for info in infos:
            info.wait_for_publish(60)
        assert killed_at < total, "the kill must land mid-burst for this test to mean anything"

        ingest = start_ingest(database_url, mosquitto.url, tmp_path)
        wait_until(lambda: counts(database_url)[0] >= total, 120, f"{total} events after the restart")
        time.sleep(0.5)  # let any late redelivery land: it must be ignored, not stored twice
        assert counts(database_url) == (total, total)
    finally:
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(20)
        publisher.loop_stop()
    assert ingest.returncode == 0, (tmp_path / "ingest.log").read_text()[-2000:]


def test_two_workers_on_a_shared_subscription_split_without_duplicates(app, mosquitto, ingest_factory):
    workers = [ingest_factory(mosquitto.url, share_group="hub", client_id=f"shared-{i}") for i in range(2)]
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet")
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    total = 2000
    infos = [publisher.publish(TOPICS.events(f"cam-{i % 10}"), event(f"cam-{i % 10}", i).to_bytes(), qos=1)
             for i in range(total)]
    for info in infos:
        info.wait_for_publish(30)
    publisher.loop_stop()
    wait_until(lambda: sum(w.snapshot()["received"] for w in workers) >= total, 60, "both workers drained")
    received = [w.snapshot()["received"] for w in workers]
    assert sum(received) == total and min(received) > 0, received
    assert sum(w.snapshot()["duplicates"] for w in workers) == 0
    with app.extensions[ENGINE_KEY].connect() as conn:
        assert conn.execute(select(func.count()).select_from(Event)).scalar_one() == total


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
VALID = event("fuzz-cam", 1).model_dump(mode="json", by_alias=True)
MUTATED = st.builds(lambda key, value: json.dumps(VALID | {key: value}, allow_nan=True).encode(),
                    st.sampled_from([*VALID, "extra"]), JSON_VALUES)
PAYLOADS = st.one_of(st.binary(max_size=200), JSON_VALUES.map(lambda v: json.dumps(v).encode()), MUTATED,
                     st.text(max_size=100).map(str.encode))
TOPIC = st.one_of(st.just(TOPICS.events("fuzz-cam")), st.just(TOPICS.status("fuzz-cam")),
                  st.just(TOPICS.telemetry("fuzz-cam")), st.text(min_size=1, max_size=30).map(
                      lambda d: f"edgesight/v1/devices/{d}/events"))


@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=TOPIC, payload=PAYLOADS)
def test_fuzzed_payloads_never_crash_and_rejections_carry_a_reason(app, topic, payload):
    record = classify(TOPICS, Incoming(topic, payload, received_at=time.time()))
    result = BatchWriter(app.extensions[ENGINE_KEY]).write([record])
    if record.kind == "dead" or result.dead_letters:
        assert result.dead_letters == 1
        with app.extensions[ENGINE_KEY].connect() as conn:
            reason = conn.execute(select(DeadLetter.reason).where(DeadLetter.payload == payload)
                                  .order_by(DeadLetter.id.desc()).limit(1)).scalar_one()
        assert reason.strip()
    else:  # the fuzzer found a valid message: it is stored (or recognised as already stored)
        assert result.events_stored + result.duplicates + result.statuses + result.telemetry == 1


@pytest.mark.postgres
def test_database_outage_holds_acks_and_resumes_without_loss(postgres_url, tmp_path, mosquitto):
    """PostgreSQL refuses connections for a while: ingest retries, acks nothing, then stores all."""
    from cloud_hub import create_app
    from cloud_hub.db import upgrade
    from cloud_hub.ingest.worker import IngestWorker
    from tests.support.postgres import PG_ADMIN_URL

    upgrade(postgres_url)
    app = create_app({"instance_path": str(tmp_path / "i"), "database_url": postgres_url,
                      "secret_key": "x", "log_format": "text"})
    engine = app.extensions[ENGINE_KEY]
    name = postgres_url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def allow(on: bool) -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(on).lower()}')
            if not on:
                conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")

    worker = IngestWorker(engine, mosquitto.url, "edgesight/v1", client_id="outage").start()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="outage-cam")
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    try:
        def publish(seqs):
            topic = TOPICS.events("outage-cam")
            for info in [publisher.publish(topic, event("outage-cam", i).to_bytes(), qos=1) for i in seqs]:
                info.wait_for_publish(30)

        publish(range(100))
        wait_until(lambda: worker.snapshot()["events_stored"] == 100, 30, "first 100 stored")
        allow(False)
        publish(range(100, 200))
        wait_until(lambda: worker.snapshot()["db_retries"] >= 2, 30, "ingest to retry the refused batch")
        assert worker.snapshot()["acked"] == 100  # nothing acknowledged while the database is away
        allow(True)
        wait_until(lambda: worker.snapshot()["events_stored"] == 200, 60, "all 200 after the outage")
        engine.dispose()
        assert counts(postgres_url) == (200, 200)
    finally:
        allow(True)
        worker.stop()
        publisher.loop_stop()
        engine.dispose()
        admin.dispose()
