"""`make demo`: the whole system comes up on one machine, events flow to the dashboard within 60 s,
the events API returns them, and Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, REPO
from tests.support.browser import live_wait
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.browser


def get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.load(resp)


def read_banner(proc: subprocess.Popen, timeout: float) -> str:
    """The demo's stdout up to its 'Ctrl-C' line (dashboard URL, login, API token)."""
    text = ""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        text += line
        if "Ctrl-C" in line:
            return text
    raise AssertionError(f"demo did not print its banner:\n{text}")


@pytest.fixture
def demo(tmp_path: Path):
    env = dict(os.environ, EDGESIGHT_DEMO_DIR=str(tmp_path / "demo"), EDGESIGHT_DEMO_PORT=str(free_port()))
    env.pop("EDGESIGHT_MQTT_URL", None)
    env.pop("EDGESIGHT_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.demo"], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_demo_shows_events_within_60_seconds(demo: subprocess.Popen, browser) -> None:
    started = time.monotonic()
    banner = read_banner(demo, 120)
    url = re.search(r"Dashboard:\s+(http://\S+?)/?\s", banner).group(1)
    password = re.search(r"admin / (\S+)\)", banner).group(1)
    token = re.search(r"Bearer (\S+)'", banner).group(1)
    broker = re.search(r"Broker:\s+(mqtt://127\.0\.0\.1:\d+)", banner).group(1)
    exports = re.search(r"export (.+)", banner).group(1)
    assert f"EDGESIGHT_MQTT_URL={broker}" in exports and "EDGESIGHT_DATABASE_URL=sqlite:///" in exports

    items: list[dict] = []
    ready = time.monotonic()
    def seen() -> set[str]:
        return {i["device_id"] for i in items if i["device_id"] != "demo-hall" or i["label"] == "person"}

    while time.monotonic() - ready < 60 and not seen() >= {"demo-street", "demo-hall"}:
        items = get_json(f"{url}/api/v1/events?limit=200", token)["items"]
        time.sleep(1)
    assert "demo-street" in seen(), "no events from the demo within 60 s"
    # The real camera: people in real footage, seen by the real-world model, within the first minute.
    assert "demo-hall" in seen(), "no person event from the real clip within 60 s"

    from selenium.webdriver.common.by import By

    browser.get(f"{url}/login")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    live_wait(browser, 30).until(lambda b: "demo-street" in b.find_element(By.ID, "devices").text)
    live_wait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, "tr[data-event-id]"))
    # The camera is visible: each agent's latest frame on its fleet card.
    live_wait(browser, 30).until(lambda b: b.execute_script(
        "return ['demo-hall', 'demo-street'].every(d => {"
        "  const i = document.querySelector(`[data-device-id=\"${d}\"] figure.frame img`);"
        "  return i !== null && i.complete && i.naturalWidth > 0; })"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "demo-dashboard.png"))
    print(f"demo: events on the dashboard {time.monotonic() - started:.1f}s after start")

    # docs/rollout.md word for word: the export line, then its rollout create command.
    env = dict(os.environ) | dict(pair.split("=", 1) for pair in shlex.split(exports))
    cli = str(Path(sys.executable).parent / "cloud-hub")
    doc = (REPO / "docs" / "rollout.md").read_text()
    command = re.search(r"(cloud-hub rollout create --model \S+ --target group:street \\\n.*)", doc).group(1)
    args = shlex.split(command.replace("\\\n", " "), comments=True)  # as a shell reads it
    created = subprocess.run([cli, *args[1:]], env=env, capture_output=True, text=True, cwd=REPO)
    assert created.returncode == 0, created.stderr
    waves = re.findall(r"wave (\d): 1 device\(s\): (\S+)", created.stdout)
    assert [w for w, _ in waves] == ["0", "1"]  # a canary, then the rest
    deadline = time.monotonic() + 90
    listed = ""
    while time.monotonic() < deadline and "completed  2/2" not in listed:
        listed = subprocess.run([cli, "rollout", "list"], env=env, capture_output=True, text=True).stdout
        time.sleep(2)
    assert "fomo-street@2.2.0" in listed and "completed  2/2" in listed, listed

    demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert demo.wait(30) == 0
    rest = demo.stdout.read() if demo.stdout else ""
    for name in ("demo-hall", "demo-street", "demo-lobby", "web", "rollout", "ingest", "broker"):
        assert f"stopped {name}" in rest
