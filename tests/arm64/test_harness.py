"""The pieces of `make test-arm` that run on the host: the broker control and the skip rule."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.broker_control import call
from tests.support.mosquitto import CONTROL_ENV, MosquittoBroker

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "arm64" / "test-arm.sh"


def start_control(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    port_file = tmp_path / "control"
    command = [sys.executable, "-m", "tests.support.broker_control", "--port-file", str(port_file)]
    proc = subprocess.Popen(command, cwd=REPO)
    deadline = time.monotonic() + 20
    while not (port_file.exists() and port_file.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, "broker control did not start"
        time.sleep(0.05)
    return proc, port_file.read_text().strip()


def round_trip(port: int) -> bytes | None:
    """Subscribe and publish to ourselves on the broker; the payload back, or None."""
    got, ready = [], threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="harness")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("t", qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: c.publish("t", b"ping", qos=1)
    client.on_message = lambda c, u, m: (got.append(m.payload), ready.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait(10)
    client.loop_stop()
    client.disconnect()
    return got[0] if got else None


def test_brokers_run_on_the_host_for_a_client_without_mosquitto(tmp_path, monkeypatch):
    proc, address = start_control(tmp_path)
    try:
        monkeypatch.setenv(CONTROL_ENV, address)
        workdir = tmp_path / "chroot-side"
        workdir.mkdir()
        broker = MosquittoBroker(workdir)
        assert broker.control == address
        broker.start()
        assert broker.proc is None  # nothing started here: the host runs it
        assert round_trip(broker.port) == b"ping"
        broker.stop()
        assert round_trip_refused(broker.port)
        broker.start()  # same port again, as a restart test needs
        assert round_trip(broker.port) == b"ping"
        assert "as harness" in broker.log()  # the host broker's own log, read through the control
        broker.stop()
        assert call(address, {"op": "stop", "key": "never-started"})["ok"]
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def round_trip_refused(port: int) -> bool:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="harness-refused")
    try:
        client.connect("127.0.0.1", port)
    except OSError:
        return True
    client.disconnect()
    return False


def run_script(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "EDGESIGHT_SKIP_ARM")}
    return subprocess.run(["bash", str(SCRIPT)], env={**base, **env}, capture_output=True, text=True,
                          timeout=60)


def test_developers_may_skip_the_arm64_suite_and_ci_may_not():
    skipped = run_script(EDGESIGHT_SKIP_ARM="1")
    assert skipped.returncode == 0 and "arm64 suite SKIPPED" in skipped.stdout
    refused = run_script(EDGESIGHT_SKIP_ARM="1", CI="true")
    assert refused.returncode == 1 and "CI runs the arm64 suite" in refused.stderr
