"""The dashboard in real headless Chromium: login, fleet, live events, search, charts, a phone screen."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from cloud_hub.ingest.records import Incoming, classify
from cloud_hub.ingest.store import BatchWriter
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.conftest import PASSWORD
from tests.hub.helpers import TOPICS, Device, event, status, telemetry
from tests.support.browser import live_wait

pytestmark = pytest.mark.browser

# An 8x8 JPEG made by OpenCV (a real decodable image, so the browser's naturalWidth proves it loaded).
THUMBNAIL = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb00430002010101010102010101020202020204030202020205040403"
    "04060506060605060606070908060709070606080b08090a0a0a0a0a06080b0c0b0a0c090a0a0affdb004301020202020202"
    "050303050a0706070a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
    "0a0a0a0a0a0a0a0affc00011080008000803012200021101031101ffc4001f00000105010101010101000000000000000001"
    "02030405060708090a0bffc400b5100002010303020403050504040000017d01020300041105122131410613516107227114"
    "328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a53545556"
    "5758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5"
    "b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffc4001f010003"
    "0101010101010101010000000000000102030405060708090a0bffc400b51100020102040403040705040400010277000102"
    "031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a35"
    "363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a92939495"
    "969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9ea"
    "f2f3f4f5f6f7f8f9faffda000c03010002110311003f00f867fe0bff00ff003497fee3dffb8ea28a2be1bc36ff00922b0bff"
    "006fff00e9c99f73e24ffc96b8affb73ff004dc0ffd9")


def log_in(browser, live_server, auth, username="operator", role="viewer"):
    auth.create(username, role)
    browser.get(live_server.url + "/")
    assert "/login" in browser.current_url  # the dashboard is closed to strangers
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    live_wait(browser, 10).until(lambda b: b.find_elements(By.ID, "devices"))


def db_name(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


def test_fleet_page_shows_devices_and_live_events(live_server, browser, auth, mosquitto, ingest_factory,
                                                  artifacts, database_url):
    ingest_factory(mosquitto.url)
    cam = Device(mosquitto.host, mosquitto.port, "street-cam", will=True)
    cam.send_status(status("street-cam"))
    cam.send_event(event("street-cam", 1, label="person"))
    log_in(browser, live_server, auth)

    wait = live_wait(browser, 20)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '[data-device-id="street-cam"].online'))
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, 'tr[data-event-id="street-cam-00000001"]'))
    wait.until(lambda b: b.find_element(By.ID, "live-state").text == "live")

    # Arrives while the page is open: must appear without a reload (SSE), with its snapshot thumbnail.
    marker = browser.execute_script("window.__same_page = true; return 1")
    second = event("street-cam", 2, label="bicycle", kind="zone", zone="crossing", line=None, direction=None,
                   has_snapshot=True)
    cam.publish(TOPICS.snapshot("street-cam", second.event_id), THUMBNAIL)
    cam.send_event(second)
    row = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, 'tr[data-event-id="street-cam-00000002"]'))
    assert "bicycle" in row[0].text and "crossing" in row[0].text
    wait.until(lambda b: b.execute_script(
        "const i = document.querySelector('tr[data-event-id=\"street-cam-00000002\"] img');"
        "return i !== null && i.complete && i.naturalWidth === 8"))
    assert marker == 1 and browser.execute_script("return window.__same_page") is True

    cam.drop()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '[data-device-id="street-cam"].offline'))
    browser.save_screenshot(str(artifacts / f"fleet-{db_name(database_url)}.png"))
    browser.set_window_size(390, 844)  # a phone
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    browser.save_screenshot(str(artifacts / f"fleet-phone-{db_name(database_url)}.png"))


def test_search_device_charts_and_counts(live_server, browser, auth, app, artifacts, database_url):
    now = time.time()
    messages = [(TOPICS.status("lobby-cam"), status("lobby-cam").to_bytes())]
    for i in range(48):
        fields = {"ts": now - i * 1200, "label": "person" if i % 3 else "car",
                  "direction": "A->B" if i % 2 else "B->A"}
        messages.append((TOPICS.events("lobby-cam"), event("lobby-cam", i, **fields).to_bytes()))
        # Each crossing's object, seen once: label counts count these (objects), not every event.
        seen = event("lobby-cam", 1000 + i, ts=fields["ts"] - 1, label=fields["label"], kind="object",
                     phase="start", line=None, direction=None, track_id=i)
        messages.append((TOPICS.events("lobby-cam"), seen.to_bytes()))
    for i in range(12):
        sample = telemetry("lobby-cam", ts=now - i * 600, inference_ms_p50=3.0 + i % 3, inference_ms_p95=6.0)
        messages.append((TOPICS.telemetry("lobby-cam"), sample.to_bytes()))
    BatchWriter(app.extensions[ENGINE_KEY]).write(
        [classify(TOPICS, Incoming(topic, raw, received_at=now)) for topic, raw in messages])
    log_in(browser, live_server, auth)
    wait = live_wait(browser, 20)

    browser.get(live_server.url + "/events")
    browser.find_element(By.NAME, "label").send_keys("car")
    browser.find_element(By.CSS_SELECTOR, "#event-filters button").click()
    wait.until(lambda b: "label=car" in b.current_url)
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#events .label")]
    assert labels and set(labels) == {"car"} and len(labels) == 32  # 16 crossings, 16 objects
    browser.save_screenshot(str(artifacts / f"search-{db_name(database_url)}.png"))

    browser.get(live_server.url + "/devices/lobby-cam")
    for chart in ("chart-labels", "chart-lines", "chart-latency"):
        wait.until(lambda b, c=chart: b.find_element(By.ID, c).get_attribute("data-drawn") == "true")
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-labels svg rect")
    assert len(bars) >= 20  # 48 events in 24 hourly buckets, two labels
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-latency svg path")
    legend = browser.find_element(By.CSS_SELECTOR, "#chart-lines .legend").text
    assert "door A->B" in legend and "door B->A" in legend
    browser.save_screenshot(str(artifacts / f"device-{db_name(database_url)}.png"))

    browser.get(live_server.url + "/counts?group=label&bucket=86400&window=172800")
    total_row = browser.find_element(By.CSS_SELECTOR, "#counts-table tr.total").text
    assert total_row.split() == ["total", "16", "32"]  # car, person
    wait.until(lambda b: b.find_element(By.ID, "chart-counts").get_attribute("data-drawn") == "true")
    browser.save_screenshot(str(artifacts / f"counts-{db_name(database_url)}.png"))
