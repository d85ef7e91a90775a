"""A hostile fleet against a running ``cloud-hub ingest`` process, through a real Mosquitto with the
shipped config: over 2,000 hostile messages (deep nesting, huge integers, 3 MB bodies, lone surrogates,
wrong types, extreme timestamps, spoofed ids, broken JSON) interleaved with good events. Every good event
is stored exactly once, every hostile message is a dead letter with a reason, and the worker is alive and
ready at the end (its /readyz, no thread restarted)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from cloud_hub.config import normalise_database_url
from cloud_hub.models import DeadLetter, Event
from tests.hub.helpers import TOPICS, event, status, wait_until
from tests.support.mosquitto import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
GOOD_PER_DEVICE = 250
DEVICES = [f"fuzz-cam-{i}" for i in range(4)]
BIG = 3 * 1024 * 1024


def base(device: str, n: int) -> dict:
    """A valid event as a dict; hostile variants change one thing (ids never collide with good ones)."""
    return event(device, 1_000_000 + n).model_dump(mode="json", by_alias=True)


def dumps(value) -> bytes:
    return json.dumps(value).encode()


def hostile(rng: random.Random, device: str, n: int) -> tuple[str, bytes]:
    """One hostile message for ``device``: (topic, body). Cycles through the families by ``n``."""
    topic = TOPICS.events(device)
    good = base(device, n)
    field = rng.choice(["zone", "camera", "label", "line", "direction", "model"])
    family = n % 16
    if family == 0:  # deep nesting, array or object, anywhere
        depth = rng.choice([300, 5000, 20000])
        tail = dumps(good)[:-1] + b',"attributes":' + b"[" * depth
        body = rng.choice([b"[" * depth, b'{"a":' * depth, tail])
    elif family == 1:  # integers of hundreds to thousands of digits
        digits = "7" * rng.choice([25, 400, 4400, 20000])
        key = rng.choice(["seq", "ts", "track_id", "count"])
        body = dumps(good | {key: 0}).replace(f'"{key}": 0'.encode(), f'"{key}": {digits}'.encode())
    elif family == 2:  # lone surrogates, escaped, in every string field and in attributes
        escape = rng.choice(["\\ud800", "\\udfff", "\\udbff x", "a\\ud83d"])
        if rng.random() < 0.3:
            body = dumps(good)[:-1] + f',"attributes":{{"k{n}":"{escape}"}}}}'.encode()
        else:
            body = dumps(good | {field: "X"}).replace(b'"X"', f'"{escape}"'.encode())
    elif family == 3:  # wrong types, no coercion
        key, value = rng.choice([("seq", "105"), ("seq", 1.5), ("seq", True), ("score", "0.9"), ("ts", "now"),
                                 ("has_snapshot", 1), ("label", 7), ("bbox", [0.1, 0.2]), ("kind", "nope"),
                                 ("attributes", [1, 2]), ("attributes", {"k": [1]}), ("schema", "1"),
                                 ("track_id", 1.0), ("count", "3")])
        body = dumps(good | {key: value})
    elif family == 4:  # timestamps no hub clock would accept
        ts = rng.choice([1e12, -1.0, 0.0, 1e308, time.time() - 40 * 86400, time.time() + 7200])
        body = dumps(good | {"ts": ts})
    elif family == 5:  # spoofed or malformed ids
        body = rng.choice([dumps(good | {"device_id": "someone-else"}), dumps(good | {"event_id": "../../x"}),
                           dumps(good | {"event_id": "short"}), dumps(good | {"device_id": "-bad"})])
    elif family == 6:  # not JSON at all
        body = rng.choice([b"", b"\xff\xfe\x00garbage", b"{broken", b"null", b"[1,2]", b'"text"',
                           bytes(rng.randrange(256) for _ in range(64))])
    elif family == 7:  # JSON that is not JSON: NaN, Infinity, NUL characters
        body = rng.choice([dumps(good).replace(b'"score": 0.9', b'"score": NaN'),
                           dumps(good | {"value": 0}).replace(b'"value": 0', b'"value": Infinity'),
                           dumps(good | {field: "a\x00b"})])
    elif family == 8:  # invalid UTF-8 inside a string
        body = dumps(good | {field: "X"}).replace(b'"X"', b'"\xed\xa0\x80"')
    elif family == 9:  # extra keys, too many or too long attributes, over-long fields
        body = rng.choice([dumps(good | {"colour": "red"}),
                           dumps(good | {"attributes": {f"k{i}": i for i in range(100)}}),
                           dumps(good | {"attributes": {"k": "v" * 5000}}),
                           dumps(good | {"camera": "c" * 500})])
    elif family == 10:  # bounded numbers
        body = dumps(good | rng.choice([{"score": 1.5}, {"seq": -1}, {"track_id": 2**63}, {"count": -2**64},
                                        {"bbox": [0, 0, 2, 2]}]))
    elif family == 11:  # hostile statuses
        topic = TOPICS.status(device)
        ok = status(device).model_dump(mode="json", by_alias=True)
        body = rng.choice([dumps(ok | {"state": "pwned"}), dumps(ok | {"ts": 1e12}), b"[" * 5000,
                           dumps(ok | {"device_id": "other-cam"}), dumps(ok | {"uptime_s": "1"})])
    elif family == 12 and n % 64 == 12:  # 3 MB bodies (a few: they are heavy)
        body = b'{"pad":"' + b"x" * BIG + b'"}'
    elif family == 13:  # over the 64 KiB JSON limit
        body = dumps(good | {"attributes": {"k": "y" * 70_000}})
    elif family == 14:  # a device id in the topic that no device may have
        topic = f"{TOPICS.prefix}/devices/{rng.choice(['-bad', 'x' * 80, 'semi;colon', 'sp ace'])}/events"
        body = dumps(good)
    else:  # a hostile snapshot: not a JPEG, or a bad event id in the topic
        topic = TOPICS.snapshot(device, rng.choice(["abcdefgh1", "x"]))
        body = rng.choice([b"GIF89a....", b"\xff\xd8"])
    return topic, body


def messages(seed: int = 21) -> Iterator[tuple[str, bytes, bool]]:
    """Good and hostile messages interleaved: (topic, body, is_good)."""
    rng = random.Random(seed)
    goods = [(d, s) for s in range(GOOD_PER_DEVICE) for d in DEVICES]
    n = 0
    for device, seq in goods:
        yield TOPICS.events(device), event(device, seq).to_bytes(), True
        for _ in range(2 + (seq % 2)):  # 2-3 hostile per good event: > 2,000 in all
            topic, body = hostile(rng, device, n)
            n += 1
            yield topic, body, False


def start_ingest(database_url: str, mqtt_url: str, tmp_path: Path, metrics_port: int) -> subprocess.Popen:
    env = dict(os.environ, EDGESIGHT_DATABASE_URL=database_url, EDGESIGHT_MQTT_URL=mqtt_url,
               EDGESIGHT_INSTANCE_PATH=str(tmp_path / "instance"), EDGESIGHT_LOG_FORMAT="text")
    log = open(tmp_path / "ingest.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "cloud_hub", "ingest", "--client-id", "hostile-hub",
                             "--metrics-port", str(metrics_port)], env=env, cwd=REPO, stdout=log, stderr=log)


def test_hostile_fleet_against_a_running_ingest_process(app, database_url, mosquitto, tmp_path):
    sent = list(messages())
    good_ids = {json.loads(body)["event_id"] for _, body, is_good in sent if is_good}
    bad = sum(1 for *_, is_good in sent if not is_good)
    assert bad >= 2000 and len(good_ids) == GOOD_PER_DEVICE * len(DEVICES)
    assert any(len(body) > BIG for _, body, _ in sent)

    port = free_port()
    ingest = start_ingest(database_url, mosquitto.url, tmp_path, port)
    engine = create_engine(normalise_database_url(database_url), poolclass=NullPool)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile-fleet")
    publisher.max_inflight_messages_set(100)
    publisher.max_queued_messages_set(0)
    try:
        wait_port("127.0.0.1", port, 60, proc=ingest)
        wait_until(lambda: "ingest running" in (tmp_path / "ingest.log").read_text(), 60, "ingest subscribed")
        publisher.connect(mosquitto.host, mosquitto.port)
        publisher.loop_start()
        infos = [publisher.publish(topic, body, qos=1) for topic, body, _ in sent]
        for info in infos:
            info.wait_for_publish(60)

        def counts() -> tuple[int, int]:
            with engine.connect() as conn:
                return (conn.execute(select(func.count()).select_from(Event)).scalar_one(),
                        conn.execute(select(func.count()).select_from(DeadLetter)).scalar_one())

        wait_until(lambda: counts() == (len(good_ids), bad), 90,
                   f"{len(good_ids)} events and {bad} dead letters (log: {tmp_path / 'ingest.log'})")
        time.sleep(0.5)  # nothing more arrives late
        assert counts() == (len(good_ids), bad)
        with engine.connect() as conn:
            assert set(conn.execute(select(Event.event_id)).scalars()) == good_ids
            reasons = list(conn.execute(select(DeadLetter.reason, DeadLetter.payload_size,
                                               func.length(DeadLetter.payload))).all())
        assert all(reason.strip() for reason, _, _ in reasons)
        assert all(stored <= 4096 for _, _, stored in reasons)  # heads only, never a 3 MB body whole
        assert any(size > BIG for _, size, _ in reasons)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            ready = json.load(response)
        assert ready["status"] == "ok", ready
        assert all(t["alive"] and t["restarts"] == 0 for t in ready["checks"]["threads"].values()), ready
        assert ingest.poll() is None
    finally:
        publisher.loop_stop()
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(30)
        engine.dispose()
    assert ingest.returncode == 0, (tmp_path / "ingest.log").read_text()[-3000:]
