"""The strict contract on the hub: no coercion, a ts window of the hub's clock, and nothing already
stored (rows from before these rules) can make a page or an API call fail; retention deletes it."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, insert, select

from cloud_hub.ingest.records import Incoming, TsWindow, classify
from cloud_hub.models import Device, Event
from cloud_hub.retention import Retention
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.helpers import TOPICS, event

GOOD = event("cam-1", 1).model_dump(mode="json", by_alias=True)


def reason(change: dict, window: TsWindow = TsWindow()) -> str | None:
    raw = json.dumps(GOOD | change).encode()
    return classify(TOPICS, Incoming(TOPICS.events("cam-1"), raw, received_at=time.time()), window).reason


@pytest.mark.parametrize("change, expected", [
    ({"seq": "105"}, "schema: seq: Input should be a valid integer"),
    ({"seq": 105.0}, "schema: seq: Input should be a valid integer"),
    ({"score": "0.9"}, "schema: score: Input should be a valid number"),
    ({"has_snapshot": 1}, "schema: has_snapshot: Input should be a valid boolean"),
    ({"label": 7}, "schema: label: Input should be a valid string"),
    ({"track_id": 2**63}, "schema: track_id: Input should be less than or equal to"),
    ({"attributes": {"n": 10**400}}, "schema: attributes.n"),
    ({"ts": 1e12}, "ts out of window"),
    ({"ts": -1.0}, "ts out of window"),
    ({"ts": time.time() - 31 * 86400}, "ts out of window"),
])
def test_strict_contract_and_ts_window(change, expected):
    """Before: "105" was coerced to 105 and ts 1e12 was stored."""
    assert (reason(change) or "").startswith(expected), reason(change)


def test_the_window_is_configurable():
    old = {"ts": time.time() - 31 * 86400}
    assert reason(old, TsWindow(past_s=60 * 86400)) is None
    assert reason({"ts": time.time() + 600}, TsWindow(future_s=60)).startswith("ts out of window")


def test_a_last_will_of_any_age_is_accepted_but_not_one_from_the_future():
    from tests.hub.helpers import status

    def status_reason(ts: float) -> str | None:
        raw = json.dumps(status("cam-1").model_dump(mode="json", by_alias=True) | {"ts": ts}).encode()
        return classify(TOPICS, Incoming(TOPICS.status("cam-1"), raw, received_at=time.time())).reason

    assert status_reason(time.time() - 400 * 86400) is None
    assert status_reason(1e12).startswith("ts out of window")


@pytest.fixture
def legacy_rows(app):
    """Rows stored before the window existed: a far-future and a far-past ts, as 'ts: 1e12' was."""
    now = time.time()
    with app.extensions[ENGINE_KEY].begin() as conn:
        conn.execute(insert(Device), [{"id": "odd-cam", "first_seen": now, "last_seen": now,
                                       "state": "online", "status_ts": 1e12, "telemetry_ts": -1e12}])
        rows = []
        for i, ts in enumerate([1e12, -1e12, 1e300, now]):
            row = event("odd-cam", i).model_dump(exclude={"schema_version"})
            rows.append(row | {"ts": ts, "kind": "line", "phase": "instant", "attributes": None,
                               "received_at": now})
        conn.execute(insert(Event), rows)
    return now


def test_no_stored_value_makes_a_page_or_an_api_call_fail(app, client, auth, api, legacy_rows):
    """Before: /, /events and /devices/<id> answered 500 ('year 33658 is out of range')."""
    auth.create()
    auth.login()
    for path in ("/", "/events", "/devices/odd-cam", "/events?device=odd-cam"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    for path in ("/api/v1/events", "/api/v1/devices", "/api/v1/devices/odd-cam", "/api/v1/events.csv",
                 "/api/v1/counts?group=label"):
        response = api.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        assert response.status_code == 200 or path.endswith(".csv"), (path, response.status_code)


def test_retention_deletes_events_from_outside_the_window(app, legacy_rows):
    """Before: retention compared ts with a cutoff only, so a ts in the year 33658 stayed for ever."""
    report = Retention(app.extensions[ENGINE_KEY], app.config["HUB_SETTINGS"].snapshot_dir, days=90,
                       cap_mb=None).run()
    assert report["events"] == 3
    with app.extensions[ENGINE_KEY].connect() as conn:
        assert conn.execute(select(func.count()).select_from(Event)).scalar_one() == 1
