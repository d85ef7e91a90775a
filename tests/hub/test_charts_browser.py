"""Charts people read, in real headless Chromium: objects counted (not events), full-width charts with
readable axes over the whole window, a time-range picker, live refresh, and the counts page's CSV."""

from __future__ import annotations

import csv
import io
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from cloud_hub.ingest.records import Incoming, classify
from cloud_hub.ingest.store import BatchWriter
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.helpers import TOPICS, event, status
from tests.hub.test_browser import db_name, log_in
from tests.support.browser import live_wait

pytestmark = pytest.mark.browser


def person_walks_through(device: str, track: int, ts: float) -> list:
    """One person: start, updates, a zone entry and exit, a crossing, an end — six events, one object."""
    base = {"label": "person", "track_id": track, "line": None, "direction": None}
    seq = track * 10
    return [
        event(device, seq, ts=ts, kind="object", phase="start", **base),
        event(device, seq + 1, ts=ts + 1, kind="object", phase="update", **base),
        event(device, seq + 2, ts=ts + 2, kind="zone", phase="start", **(base | {"zone": "shop"})),
        event(device, seq + 3, ts=ts + 3, kind="line", **(base | {"line": "door", "direction": "in"})),
        event(device, seq + 4, ts=ts + 4, kind="zone", phase="end", **(base | {"zone": "shop"})),
        event(device, seq + 5, ts=ts + 5, kind="object", phase="end", **base),
    ]


def write(app, events, topic=TOPICS.events) -> None:
    now = time.time()
    BatchWriter(app.extensions[ENGINE_KEY]).write(
        [classify(TOPICS, Incoming(topic(e.device_id), e.to_bytes(), received_at=now)) for e in events])


def test_counts_count_objects_and_charts_refresh_live(live_server, browser, auth, app, api, artifacts,
                                                      database_url):
    now = time.time()
    write(app, [status("shop-cam")], TOPICS.status)
    first = [e for t in range(1, 6) for e in person_walks_through("shop-cam", t, now - 10000 + t * 300)]
    write(app, first)

    body = api.get("/api/v1/counts?group=label&device=shop-cam").get_json()
    assert sum(i["count"] for i in body["items"] if i["key"] == "person") == 5  # 30 events, 5 people
    assert body["counts"].startswith("tracked objects")
    lines = api.get("/api/v1/counts?group=line&device=shop-cam").get_json()["items"]
    assert sum(i["count"] for i in lines) == 5 and {i["direction"] for i in lines} == {"in"}
    zones = api.get("/api/v1/counts?group=zone&device=shop-cam").get_json()["items"]
    assert sum(i["count"] for i in zones) == 5
    inside = api.get("/api/v1/counts?group=occupancy&device=shop-cam&bucket=60").get_json()["items"]
    assert max(i["count"] for i in inside) == 1 and inside[-1]["count"] == 0  # each left before the next

    log_in(browser, live_server, auth)
    wait = live_wait(browser, 30)
    browser.get(live_server.url + "/devices/shop-cam")
    for chart in ("chart-labels", "chart-lines", "chart-zones", "chart-occupancy"):
        wait.until(lambda b, c=chart: b.find_element(By.ID, c).get_attribute("data-drawn") == "true")
    legend = browser.find_element(By.CSS_SELECTOR, "#chart-labels .legend").text
    assert legend == "person 5"
    # Full width and readable: the plot spans its card, axis text is at least 12 px on screen.
    card = browser.find_element(By.ID, "chart-labels")
    plot = browser.find_element(By.CSS_SELECTOR, "#chart-labels svg")
    assert plot.size["width"] >= card.size["width"] - 40 and card.size["width"] > 1000
    sizes = browser.execute_script(
        "return [...document.querySelectorAll('#chart-labels svg text.tick')]"
        ".map(t => t.getBoundingClientRect().height)")
    assert sizes and min(sizes) >= 12
    # The x axis covers the whole window (24 h), not just the hour with data.
    ticks = browser.execute_script(
        "return [...document.querySelectorAll('#chart-labels svg text.tick')].map(t => t.textContent)")
    assert len([t for t in ticks if ":" in t]) >= 5
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-labels svg rect")
    xs = sorted(float(b.get_attribute("x")) for b in bars)
    assert xs and xs[0] > plot.size["width"] * 0.8  # the last ~1 h of 24 sits at the right end
    browser.save_screenshot(str(artifacts / f"charts-{db_name(database_url)}.png"))

    # Live: five more people arrive while the page is open; the charts show them within ~10 s.
    browser.execute_script("window.__same_page = true")
    write(app, [e for t in range(6, 11) for e in person_walks_through("shop-cam", t, time.time() - 60 + t)])
    wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#chart-labels .legend").text == "person 10")
    wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#chart-lines .legend").text == "door in 10")
    assert browser.execute_script("return window.__same_page") is True

    # The range picker: 1 hour, finer buckets, times on the axis; 7 days, dates on the axis.
    Select(browser.find_element(By.ID, "range")).select_by_visible_text("1 hour")
    wait.until(lambda b: b.find_element(By.ID, "chart-labels").get_attribute("data-window") == "3600")
    wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#chart-labels .legend").text == "person 5")
    browser.save_screenshot(str(artifacts / f"charts-1h-{db_name(database_url)}.png"))
    Select(browser.find_element(By.ID, "range")).select_by_visible_text("7 days")
    wait.until(lambda b: b.find_element(By.ID, "chart-labels").get_attribute("data-window") == "604800")
    wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#chart-labels .legend").text == "person 10")

    # The counts page hands the same numbers over as CSV.
    browser.get(live_server.url + "/counts?group=line&device=shop-cam")
    wait.until(lambda b: b.find_element(By.ID, "chart-counts").get_attribute("data-drawn") == "true")
    assert "line crossings" in browser.find_element(By.TAG_NAME, "h1").text
    href = browser.find_element(By.ID, "counts-csv").get_attribute("href")
    browser.save_screenshot(str(artifacts / f"counts-objects-{db_name(database_url)}.png"))
    auth.create("csv-admin", "admin")
    auth.login("csv-admin")
    rows = list(csv.DictReader(io.StringIO(auth.client.get(href.removeprefix(live_server.url)).text)))
    assert sum(int(r["count"]) for r in rows) == 10 and {r["line"] for r in rows} == {"door"}
