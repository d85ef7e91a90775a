"""Seeing the camera, in real headless Chromium: the latest frame per camera with its zones, lines and
boxes drawn over it, and an event's detail page with its snapshot (issue 25)."""

from __future__ import annotations

import base64
import time

import cv2
import numpy as np
import pytest
from selenium.webdriver.common.by import By

from shared.camera import LineGeometry, PreviewBox, PreviewPayload, ZoneGeometry
from tests.hub.helpers import TOPICS, Device, event, status
from tests.hub.test_browser import db_name, log_in
from tests.support.browser import live_wait

pytestmark = pytest.mark.browser


def picture(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """A real JPEG: a coloured street-ish frame with a 'person' block, so a screenshot shows something."""
    image = np.full((height, width, 3), colour, np.uint8)
    cv2.rectangle(image, (0, int(height * 0.6)), (width, height), (90, 90, 90), -1)
    cv2.rectangle(image, (int(width * 0.4), int(height * 0.3)), (int(width * 0.5), int(height * 0.8)),
                  (40, 40, 200), -1)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def preview(device_id: str, camera: str, colour: tuple[int, int, int]) -> PreviewPayload:
    return PreviewPayload(
        device_id=device_id, ts=time.time(), camera=camera, width=320, height=192,
        jpeg_b64=base64.b64encode(picture(320, 192, colour)).decode(),
        boxes=[PreviewBox(label="person", score=0.87, bbox=(0.4, 0.3, 0.5, 0.8), track_id=7)],
        zones=[ZoneGeometry(name="sidewalk", polygon=[(0.0, 0.6), (1.0, 0.6), (1.0, 1.0), (0.0, 1.0)])],
        lines=[LineGeometry(name="crosswalk", a=(0.7, 0.1), b=(0.7, 0.95))])


def test_latest_frame_per_camera_with_overlay(live_server, browser, auth, mosquitto, ingest_factory,
                                              artifacts, database_url):
    ingest_factory(mosquitto.url)
    cams = {}
    for device_id, camera, colour in (("street-cam", "street", (200, 160, 90)),
                                      ("lobby-cam", "lobby", (120, 190, 120))):
        cams[device_id] = Device(mosquitto.host, mosquitto.port, device_id)
        cams[device_id].send_status(status(device_id, cameras=[camera]))
        frame = preview(device_id, camera, colour)
        cams[device_id].publish(TOPICS.preview(device_id), frame.to_bytes(), qos=0)
    log_in(browser, live_server, auth)
    wait = live_wait(browser, 20)
    for device_id in cams:
        wait.until(lambda b, d=device_id: b.execute_script(
            f"const i = document.querySelector('[data-device-id=\"{d}\"] figure.frame img');"
            "return i !== null && i.complete && i.naturalWidth === 320"))
        svg = browser.find_element(By.CSS_SELECTOR, f'[data-device-id="{device_id}"] figure.frame svg')
        assert svg.find_elements(By.CSS_SELECTOR, "polygon.ov-zone")
        assert svg.find_elements(By.CSS_SELECTOR, "line.ov-line")
        assert svg.find_elements(By.CSS_SELECTOR, "rect.ov-box")
        assert "person 0.87 #7" in svg.text
    browser.save_screenshot(str(artifacts / f"camera-fleet-{db_name(database_url)}.png"))

    # A newer frame replaces the picture without a reload (the page polls every 2 s).
    browser.execute_script("window.__same_page = true")
    newer = preview("street-cam", "street", (60, 60, 220)).model_copy(update={"boxes": []})
    cams["street-cam"].publish(TOPICS.preview("street-cam"), newer.to_bytes(), qos=0)
    wait.until(lambda b: not b.find_elements(
        By.CSS_SELECTOR, '[data-device-id="street-cam"] figure.frame svg rect.ov-box'))
    assert browser.execute_script("return window.__same_page") is True

    browser.get(live_server.url + "/devices/lobby-cam")
    wait.until(lambda b: b.execute_script(
        "const i = document.querySelector('[data-editor-device] figure.frame img');"
        "return i !== null && i.complete && i.naturalWidth === 320"))
    assert browser.find_element(By.CSS_SELECTOR, "[data-camera-name]").text == "lobby"
    browser.save_screenshot(str(artifacts / f"camera-device-{db_name(database_url)}.png"))
    for cam in cams.values():
        cam.close()


def test_event_detail_with_snapshot_box_and_track(live_server, browser, auth, mosquitto, ingest_factory,
                                                  artifacts, database_url):
    ingest_factory(mosquitto.url)
    cam = Device(mosquitto.host, mosquitto.port, "gate-cam")
    cam.send_status(status("gate-cam", cameras=["gate"]))
    cam.publish(TOPICS.preview("gate-cam"), preview("gate-cam", "gate", (200, 160, 90)).to_bytes(), qos=0)
    now = time.time()
    start = event("gate-cam", 1, ts=now - 5, kind="object", phase="start", line=None, direction=None,
                  track_id=42, bbox=(0.4, 0.3, 0.5, 0.8), has_snapshot=True, camera="gate", label="person")
    cam.publish(TOPICS.snapshot("gate-cam", start.event_id), picture(640, 384, (200, 160, 90)))
    cam.send_event(start)
    zone = event("gate-cam", 2, ts=now - 3, kind="zone", phase="start", zone="sidewalk", line=None,
                 direction=None, track_id=42, bbox=(0.42, 0.35, 0.52, 0.85), camera="gate", label="person")
    crossing = event("gate-cam", 3, ts=now - 1, kind="line", line="crosswalk", direction="in", track_id=42,
                     bbox=(0.6, 0.35, 0.7, 0.85), camera="gate", label="person")
    other = event("gate-cam", 4, ts=now, kind="object", phase="start", line=None, direction=None, track_id=43,
                  camera="gate", label="car")
    for e in (zone, crossing, other):
        cam.send_event(e)
    log_in(browser, live_server, auth)
    wait = live_wait(browser, 20)
    browser.get(live_server.url + "/events?device=gate-cam")
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f'tr[data-event-id="{other.event_id}"]'))
    # A zone event shows its object's snapshot as its thumbnail too.
    assert browser.find_elements(By.CSS_SELECTOR, f'tr[data-event-id="{zone.event_id}"] td.thumb img')
    # The thumbnail opens the detail page.
    browser.find_element(By.CSS_SELECTOR, f'tr[data-event-id="{start.event_id}"] td.thumb a').click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#event-frame[data-drawn=true]"))
    assert f"/events/gate-cam/{start.event_id}" in browser.current_url
    assert browser.execute_script("return document.querySelector('#event-frame img').naturalWidth") == 640
    box = browser.find_element(By.CSS_SELECTOR, "#event-frame svg rect.ov-box")
    assert float(box.get_attribute("x")) == pytest.approx(0.4 * 640)
    facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "person" in facts and "0.90" in facts and "42" in facts
    track_rows = browser.find_elements(By.CSS_SELECTOR, "#track-events tbody tr")
    assert [r.get_attribute("data-event-id") for r in track_rows] == [
        start.event_id, zone.event_id, crossing.event_id]  # the car (track 43) is not this object
    browser.save_screenshot(str(artifacts / f"event-detail-{db_name(database_url)}.png"))

    # A line event has no picture of its own: it shows its object's snapshot, with the line highlighted.
    row = f'#track-events tr[data-event-id="{crossing.event_id}"]'
    browser.find_element(By.CSS_SELECTOR, row + " td a").click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#event-frame[data-drawn=true]"))
    assert "first seen" in browser.find_element(By.CSS_SELECTOR, "#event-frame figcaption").text
    hot = browser.find_element(By.CSS_SELECTOR, '#event-frame line.ov-line[data-name="crosswalk"]')
    assert hot.get_attribute("stroke") == "#c0392b"
    browser.save_screenshot(str(artifacts / f"event-detail-line-{db_name(database_url)}.png"))
    cam.close()
