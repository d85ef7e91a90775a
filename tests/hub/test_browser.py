"""The dashboard in real headless Chromium: devices, their state and events, live updates."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.hub.helpers import Device, event, status

pytestmark = pytest.mark.browser


def test_dashboard_shows_devices_and_events_live(live_server, browser, mosquitto, ingest_factory, artifacts,
                                                 database_url):
    ingest_factory(mosquitto.url)
    cam = Device(mosquitto.host, mosquitto.port, "street-cam", will=True)
    cam.send_status(status("street-cam"))
    cam.send_event(event("street-cam", 1, label="person"))

    browser.get(live_server.url + "/")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '[data-device-id="street-cam"].online'))
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, 'tr[data-event-id="street-cam-00000001"]'))
    assert browser.find_element(By.ID, "live-state").text in ("live", "connecting…")

    # Arrives while the page is open: must appear without a reload (SSE).
    cam.send_event(event("street-cam", 2, label="bicycle", kind="zone", zone="crossing", line=None,
                         direction=None))
    row = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, 'tr[data-event-id="street-cam-00000002"]'))
    assert "bicycle" in row[0].text
    assert "crossing" in row[0].text
    wait.until(lambda b: b.find_element(By.ID, "live-state").text == "live")

    cam.drop()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '[data-device-id="street-cam"].offline'))
    db = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    browser.save_screenshot(str(artifacts / f"dashboard-fleet-{db}.png"))
    browser.set_window_size(390, 844)  # a phone
    browser.save_screenshot(str(artifacts / f"dashboard-fleet-phone-{db}.png"))
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 400
