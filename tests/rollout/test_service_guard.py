"""The rollout service's MQTT handlers are guarded: a hostile model/state report is counted and logged,
and the service keeps handling what comes next (before: 5 KB of '[' killed its network thread)."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.topics import Topics
from tests.hub.helpers import wait_until

TOPICS = Topics()


def test_hostile_state_reports_do_not_stop_the_rollout_service(rollout_hub, mosquitto):
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile-dev")
    device.connect(mosquitto.host, mosquitto.port)
    device.loop_start()
    try:
        topic = TOPICS.model_state("hostile-dev")
        for body in (b"[" * 5000, b'{"seq": ' + b"9" * 4400 + b"}", b'{"name": "\\ud800"}', b"nope"):
            device.publish(topic, body, qos=1).wait_for_publish(10)
        wait_until(lambda: rollout_hub.service.state_errors == 4, 20, "all four reports counted")
        status = rollout_hub.service.supervisor.status()
        assert status["rollout-mqtt"]["alive"] and status["rollout-controller"]["alive"]
        assert rollout_hub.service.supervisor.total_restarts() == 0
    finally:
        device.loop_stop()
        device.disconnect()
