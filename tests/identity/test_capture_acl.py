"""Issue 24 on the locked-down broker: a device sends capture chunks and states only on its own topics,
reads only its own capture requests and acks; the hub's roles may do their half. Real Mosquitto with the
generated dynamic-security roles (deploy/mosquitto/mosquitto-secure.conf)."""

from __future__ import annotations

from shared.topics import TopicKind
from tests.identity.probe import NOT_AUTHORIZED, wait_until


def test_device_cannot_publish_into_another_devices_capture(secure_broker, devices, observer, probes):
    a, b = devices["cam-a"], devices["cam-b"]
    t = secure_broker.topics
    forged = [t.capture_chunk(b.device_id, "cap-0123456789ab"), t.capture_state(b.device_id),
              t.capture_ack(b.device_id), t.capture_request(b.device_id)]
    answers = []
    for topic in forged:
        probe = probes(secure_broker.plain, a.device_id, a.password, client_id=a.device_id)
        assert not probe.connect().is_failure
        answers.append(probe.publish(topic, b"forged capture"))
        probe.close()
    # A device cannot write the hub's half on its own topics either (requests, acks).
    for topic in (t.capture_request(a.device_id), t.capture_ack(a.device_id)):
        probe = probes(secure_broker.plain, a.device_id, a.password, client_id=a.device_id)
        assert not probe.connect().is_failure
        answers.append(probe.publish(topic, b"forged capture"))
        probe.close()
    assert {rc.value for rc in answers} == {NOT_AUTHORIZED}

    own = probes(secure_broker.plain, b.device_id, b.password, client_id=b.device_id)
    assert not own.connect().is_failure  # positive control: the owner may send its chunks and states
    assert own.publish(t.capture_chunk(b.device_id, "cap-0123456789ab"), b"legit chunk").value < 0x80
    assert own.publish(t.capture_state(b.device_id), b"legit state").value < 0x80
    assert wait_until(lambda: {m.payload for m in observer.messages} >= {b"legit chunk", b"legit state"})
    assert [m for m in observer.messages if m.payload == b"forged capture"] == []


def test_only_the_owner_reads_capture_requests_and_the_hub_roles_write_them(secure_broker, devices, probes):
    a, b = devices["cam-a"], devices["cam-b"]
    t = secure_broker.topics
    spy = probes(secure_broker.plain, a.device_id, a.password, client_id=a.device_id)
    assert not spy.connect().is_failure
    for topic_filter in (t.capture_request(b.device_id), t.capture_ack(b.device_id),
                         f"{t.prefix}/devices/+/capture/req", t.capture_chunk(b.device_id, "+")):
        assert spy.subscribe(topic_filter)[0].value == NOT_AUTHORIZED
    victim = probes(secure_broker.plain, b.device_id, b.password, client_id=b.device_id)
    assert not victim.connect().is_failure
    assert not victim.subscribe(t.capture_request(b.device_id))[0].is_failure
    assert not victim.subscribe(t.capture_ack(b.device_id))[0].is_failure
    control = probes(secure_broker.plain, *secure_broker.login("control"))
    assert not control.connect().is_failure
    assert control.publish(t.capture_request(b.device_id), b"request", retain=True).value < 0x80
    ingest = probes(secure_broker.plain, *secure_broker.login("ingest"))
    assert not ingest.connect().is_failure
    assert ingest.publish(t.capture_ack(b.device_id), b"ack").value < 0x80
    assert ingest.subscribe(t.all_devices(TopicKind.CAPTURE_CHUNK))[0].value < 0x80
    assert wait_until(lambda: {m.payload for m in victim.messages} == {b"request", b"ack"})
    assert spy.connected and spy.messages == []
