"""REST API over a real database filled through the ingest writer (no broker needed here)."""

from __future__ import annotations

import csv
import io

import pytest

from cloud_hub.ingest.records import Incoming, TsWindow, classify
from cloud_hub.ingest.store import BatchWriter
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.helpers import TOPICS, event, status

BASE_TS = 1_700_000_000.0  # 2023-11-14T22:13:20Z
# Stored "as of" BASE_TS, with statuses stamped now: a window wide enough for both.
WIDE = TsWindow(past_s=10 * 365 * 86400, future_s=10 * 365 * 86400)


def store(app, *payloads_by_topic: tuple[str, bytes]) -> None:
    writer = BatchWriter(app.extensions[ENGINE_KEY])
    records = [classify(TOPICS, Incoming(t, raw, received_at=BASE_TS), WIDE) for t, raw in payloads_by_topic]
    writer.write(records)


@pytest.fixture
def filled(app):
    """Two devices, 60 events over three hours: labels, kinds, a line with directions, a zone."""
    messages = [(TOPICS.status("cam-a"), status("cam-a").to_bytes())]
    for seq in range(60):
        device = "cam-a" if seq % 2 == 0 else "cam-b"
        fields = {"ts": BASE_TS + seq * 180, "label": ["person", "car", "bicycle"][seq % 3]}
        if seq % 4 == 0:
            fields |= {"kind": "zone", "zone": "crossing", "line": None, "direction": None}
        else:
            fields |= {"direction": "A->B" if seq % 5 else "B->A"}
        messages.append((TOPICS.events(device), event(device, seq, **fields).to_bytes()))
    store(app, *messages)
    return app


def test_events_filters_and_cursor_pagination(api, filled):
    everything = api.get("/api/v1/events?limit=500").get_json()["items"]
    assert len(everything) == 60
    assert [e["ts"] for e in everything] == sorted((e["ts"] for e in everything), reverse=True)

    pages, cursor = [], ""
    while True:
        body = api.get(f"/api/v1/events?limit=7&cursor={cursor}").get_json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert [e["id"] for page in pages for e in page] == [e["id"] for e in everything]
    assert len(pages) == 9

    def ids(**query):
        return {e["seq"] for e in api.get("/api/v1/events", query_string=query | {"limit": 500})
                .get_json()["items"]}

    assert ids(device="cam-b") == set(range(1, 60, 2))
    assert ids(label="car") == set(range(1, 60, 3))
    assert ids(kind="zone") == set(range(0, 60, 4))
    assert ids(zone="crossing", device="cam-a") == set(range(0, 60, 4))
    assert ids(line="door", label="person") == {s for s in range(0, 60, 3) if s % 4}
    assert ids(since=BASE_TS + 180 * 10, until=BASE_TS + 180 * 20) == set(range(10, 20))
    assert ids(since="2023-11-14T22:43:20Z", until=BASE_TS + 180 * 12) == set(range(10, 12))


def test_bad_parameters_answer_400_with_the_parameter_named(api, filled):
    for query, name in (("limit=0", "limit"), ("limit=abc", "limit"), ("since=yesterday", "since"),
                        ("cursor=!!!", "cursor"), ("until=nan", "until")):
        response = api.get(f"/api/v1/events?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["error"].startswith(name)
    assert api.get("/api/v1/counts?group=colour").status_code == 400


def test_counts_per_label_line_and_zone_per_hour(api, filled):
    window = {"since": BASE_TS, "until": BASE_TS + 3 * 3600, "bucket": 3600}
    by_kind = api.get("/api/v1/counts", query_string=window | {"group": "kind"}).get_json()
    assert by_kind["bucket_s"] == 3600 and by_kind["counts"] == "events (every kind and phase)"
    total = {}
    for item in by_kind["items"]:
        total[item["key"]] = total.get(item["key"], 0) + item["count"]
    assert total == {"line": 45, "zone": 15}
    assert {item["bucket"] for item in by_kind["items"]} <= {(BASE_TS // 3600 + h) * 3600 for h in range(4)}
    first_hour = [i for i in by_kind["items"] if i["bucket"] == (BASE_TS // 3600) * 3600]
    assert sum(i["count"] for i in first_hour) == sum(
        1 for s in range(60) if BASE_TS + s * 180 < (BASE_TS // 3600 + 1) * 3600)

    lines = api.get("/api/v1/counts", query_string=window | {"group": "line"}).get_json()["items"]
    per_direction = {}
    for item in lines:
        per_direction[item["direction"]] = per_direction.get(item["direction"], 0) + item["count"]
    line_seqs = [s for s in range(60) if s % 4]
    assert per_direction == {"A->B": sum(1 for s in line_seqs if s % 5),
                             "B->A": sum(1 for s in line_seqs if not s % 5)}
    zones = api.get("/api/v1/counts", query_string=window | {"group": "zone"}).get_json()["items"]
    assert sum(i["count"] for i in zones) == 15 and {i["key"] for i in zones} == {"crossing"}


def test_label_counts_count_objects_not_events(api, filled):
    """Per label the hub counts tracked objects (one ``object/start`` each), not every event they made."""
    window = {"since": BASE_TS, "until": BASE_TS + 3 * 3600, "bucket": 3600}
    before = api.get("/api/v1/counts", query_string=window | {"group": "label"}).get_json()
    assert before["items"] == []  # 60 line and zone events, but no object was seen starting
    seen = [event("cam-a", 100 + i, ts=BASE_TS + i * 60, kind="object", phase=phase, line=None,
                  direction=None, label=label, track_id=i)
            for i, (label, phase) in enumerate([("person", "start"), ("person", "end"), ("person", "start"),
                                                ("car", "start"), ("car", "update")])]
    store(filled, *[(TOPICS.events("cam-a"), e.to_bytes()) for e in seen])
    after = api.get("/api/v1/counts", query_string=window | {"group": "label"}).get_json()
    assert after["counts"] == "tracked objects (one per track)"
    total = {}
    for item in after["items"]:
        total[item["key"]] = total.get(item["key"], 0) + item["count"]
    assert total == {"person": 2, "car": 1}


def test_csv_export_has_every_filtered_row(api, filled):
    response = api.get("/api/v1/events?format=csv&device=cam-a")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 30
    assert {r["device_id"] for r in rows} == {"cam-a"}
    assert rows[0]["label"] in {"person", "car", "bicycle"}


def test_devices_and_device_detail(api, filled):
    items = api.get("/api/v1/devices").get_json()["items"]
    assert [(d["id"], d["online"]) for d in items] == [("cam-a", True), ("cam-b", False)]
    assert api.get("/api/v1/devices/cam-a").get_json()["agent_version"] == "0.1.0"
    assert api.get("/api/v1/devices/nope").status_code == 404


def test_healthz(api):
    assert api.get("/healthz").get_json() == {"status": "ok"}
