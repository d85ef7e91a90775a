"""Acceptance (issue 7): one device can neither forge, read nor command another, on a real Mosquitto.

The broker runs deploy/mosquitto/mosquitto-secure.conf with the roles cloud_hub.identity generates.
Mosquitto 2.0.11 answers a denied QoS 1 publish from an MQTT v5 client with PUBACK 0x87 and then closes
the connection, so each publish attempt uses a fresh connection.
"""

from __future__ import annotations

import itertools

from cloud_hub.ingest.worker import SUBSCRIBED_KINDS
from shared.topics import TopicKind
from tests.identity.probe import NOT_AUTHORIZED, wait_until

ATTEMPTS = 100


def _kinds_of_b(topics, b: str) -> list[str]:
    return [
        topics.events(b),
        topics.status(b),
        topics.telemetry(b),
        topics.snapshot(b, "evt12345"),
        topics.model_state(b),
        topics.model_chunk_request(b),
    ]


def _prove_observer_sees(observer, probes, broker, device) -> None:
    """Positive control: the same observer does receive what a device may legitimately publish."""
    own = probes(broker.plain, device.device_id, device.password, client_id=device.device_id)
    assert not own.connect().is_failure
    assert own.publish(broker.topics.events(device.device_id), b"legit").value < 0x80
    assert wait_until(lambda: any(m.payload == b"legit" for m in observer.messages))


def test_device_cannot_publish_on_another_devices_topics(secure_broker, devices, observer, probes):
    a, b = devices["cam-a"], devices["cam-b"]
    topics = itertools.cycle(_kinds_of_b(secure_broker.topics, b.device_id))
    answers = []
    for attempt in range(ATTEMPTS):
        probe = probes(secure_broker.plain, a.device_id, a.password, client_id=a.device_id)
        assert not probe.connect().is_failure
        answers.append(probe.publish(next(topics), f"forged {attempt}".encode()))
        probe.close()
    _prove_observer_sees(observer, probes, secure_broker, b)
    assert [m for m in observer.messages if m.payload.startswith(b"forged")] == []
    assert {rc.value for rc in answers} == {NOT_AUTHORIZED}


def test_device_cannot_subscribe_to_another_devices_offers(secure_broker, devices, admin, probes):
    a, b = devices["cam-a"], devices["cam-b"]
    t = secure_broker.topics
    spy = probes(secure_broker.plain, a.device_id, a.password, client_id=a.device_id)
    assert not spy.connect().is_failure
    filters = itertools.cycle(
        [
            t.model_offer(b.device_id),
            t.model_chunk(b.device_id, 0),
            t.config(b.device_id),
            t.signal(b.device_id, "reboot"),
            f"{t.prefix}/devices/+/model/offer",
            "#",
            f"$share/x/{t.model_offer(b.device_id)}",
        ]
    )
    codes = [spy.subscribe(next(filters))[0].value for _ in range(ATTEMPTS)]
    assert codes == [NOT_AUTHORIZED] * ATTEMPTS

    victim = probes(secure_broker.plain, b.device_id, b.password, client_id=b.device_id)
    assert not victim.connect().is_failure
    assert not victim.subscribe(t.model_offer(b.device_id))[0].is_failure
    control = probes(secure_broker.plain, *secure_broker.login("control"))
    assert not control.connect().is_failure
    for n in range(ATTEMPTS):
        assert control.publish(t.model_offer(b.device_id), f"offer {n}".encode(), retain=n == 0).value < 0x80
    assert wait_until(lambda: len(victim.messages) == ATTEMPTS)  # positive control: the real owner gets them
    assert spy.connected and spy.messages == []


def test_device_cannot_publish_an_offer(secure_broker, devices, observer, probes):
    a, b = devices["cam-a"], devices["cam-b"]
    t = secure_broker.topics
    targets = itertools.cycle(
        [
            t.model_offer(a.device_id),
            t.model_offer(b.device_id),
            t.model_chunk(b.device_id, 3),
            t.config(b.device_id),
            t.signal(b.device_id, "x"),
        ]
    )
    answers = []
    for attempt in range(ATTEMPTS):
        probe = probes(secure_broker.plain, a.device_id, a.password, client_id=a.device_id)
        assert not probe.connect().is_failure
        answers.append(probe.publish(next(targets), f"evil offer {attempt}".encode(), retain=True))
        probe.close()
    _prove_observer_sees(observer, probes, secure_broker, a)
    assert [m for m in observer.messages if m.payload.startswith(b"evil")] == []
    assert {rc.value for rc in answers} == {NOT_AUTHORIZED}
    # Nothing retained either: a late subscriber to the offers finds none.
    late = probes(secure_broker.plain, b.device_id, b.password, client_id=b.device_id)
    assert not late.connect().is_failure
    assert not late.subscribe(t.model_offer(b.device_id))[0].is_failure
    assert not wait_until(lambda: late.messages, timeout=0.5)


def test_device_cannot_take_over_another_devices_client_id(secure_broker, devices, probes):
    a, b = devices["cam-a"], devices["cam-b"]
    victim = probes(secure_broker.plain, b.device_id, b.password, client_id=b.device_id)
    assert not victim.connect().is_failure
    thief = probes(secure_broker.plain, a.device_id, a.password, client_id=b.device_id)
    rc = thief.connect()
    assert rc is not None and rc.is_failure
    assert victim.connected


def _die_with_will(probes, broker, device, will_topic: str, payload: bytes) -> None:
    """Connect with a last will, then drop the socket without DISCONNECT so the broker fires the will."""
    probe = probes(broker.plain, device.device_id, device.password, client_id=device.device_id)
    assert not probe.connect(will=(will_topic, payload)).is_failure  # 2.0.11 checks the will when it fires
    probe.client.socket().close()
    assert wait_until(probe.disconnected.is_set)


def test_will_on_another_devices_status_is_not_delivered(secure_broker, devices, observer, probes):
    a, b = devices["cam-a"], devices["cam-b"]
    t = secure_broker.topics
    _die_with_will(probes, secure_broker, a, t.status(b.device_id), b"forged will")
    _die_with_will(probes, secure_broker, b, t.status(b.device_id), b"real will")
    assert wait_until(lambda: any(m.payload == b"real will" for m in observer.messages))  # positive control
    assert [m for m in observer.messages if m.payload == b"forged will"] == []


def test_hub_roles(secure_broker, devices, observer, probes):
    """Ingest reads through a shared subscription but cannot command; the dynsec admin sees no data."""
    a = devices["cam-a"]
    t = secure_broker.topics
    ingest = probes(secure_broker.plain, *secure_broker.login("ingest"))
    assert not ingest.connect().is_failure
    for kind in SUBSCRIBED_KINDS:  # exactly what `cloud-hub ingest --share hub` subscribes to
        assert not ingest.subscribe(t.shared("hub", t.all_devices(kind)))[0].is_failure, kind
    assert ingest.subscribe(t.model_offer(a.device_id))[0].value == NOT_AUTHORIZED
    device = probes(secure_broker.plain, a.device_id, a.password, client_id=a.device_id)
    assert not device.connect().is_failure
    assert device.publish(t.events(a.device_id), b"event").value < 0x80
    assert wait_until(lambda: [m.payload for m in ingest.messages] == [b"event"])
    assert ingest.publish(t.model_offer(a.device_id), b"offer from ingest").value == NOT_AUTHORIZED

    control = probes(secure_broker.plain, *secure_broker.login("control"))
    assert not control.connect().is_failure
    for kind in (TopicKind.MODEL_CHUNK_REQUEST, TopicKind.MODEL_STATE):  # what the rollout service reads
        assert not control.subscribe(t.all_devices(kind))[0].is_failure, kind
    assert control.publish(t.model_chunk(a.device_id, 0), b"chunk").value < 0x80
    assert control.publish(t.config(a.device_id), b"{}").value < 0x80

    admin = probes(secure_broker.plain, *secure_broker.login("admin"))
    assert not admin.connect().is_failure
    assert admin.subscribe("#")[0].value == NOT_AUTHORIZED
    assert admin.subscribe(t.events(a.device_id))[0].value == NOT_AUTHORIZED


def test_device_reads_its_own_commands_with_the_filters_the_agent_uses(secure_broker, devices, probes):
    """Positive side of the device role: the edge agent's own subscriptions are granted and delivered."""
    a = devices["cam-a"].device_id
    t = secure_broker.topics
    device = probes(secure_broker.plain, a, devices["cam-a"].password, client_id=a)
    assert not device.connect().is_failure
    as_the_agent_subscribes = [  # edge_agent/mqtt_link.py and edge_agent/updater/updater.py
        t.device(a, TopicKind.SIGNAL) + "/#",
        t.model_offer(a),
        t.model_chunk(a, 0)[:-1] + "+",
        t.config(a),
    ]
    for topic_filter in as_the_agent_subscribes:
        assert not device.subscribe(topic_filter)[0].is_failure, topic_filter
    control = probes(secure_broker.plain, *secure_broker.login("control"))
    assert not control.connect().is_failure
    sent = [t.signal(a, "light"), t.model_offer(a), t.model_chunk(a, 7), t.config(a)]
    for topic in sent:
        assert control.publish(topic, b"x").value < 0x80
    assert wait_until(lambda: sorted(m.topic for m in device.messages) == sorted(sent))
