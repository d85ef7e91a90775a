"""Classification of single messages into rows or dead letters (pure logic, no I/O)."""

from __future__ import annotations

import json

import pytest

from cloud_hub.ingest.records import Incoming, classify
from tests.hub.helpers import TOPICS, event, status

GOOD = event("cam-1", 1).model_dump(mode="json", by_alias=True)


def reason(topic: str, payload: bytes) -> str | None:
    return classify(TOPICS, Incoming(topic, payload)).reason


@pytest.mark.parametrize("change, expected", [
    ({"seq": 2**64}, "schema: seq: Input should be less than or equal to 9223372036854775807"),
    ({"label": "a\x00b"}, "invalid text: label contains a NUL character"),
    ({"attributes": {"k": "v\x00"}}, "invalid text: attributes.k contains a NUL character"),
    ({"ts": float("inf")}, "schema: ts: Input should be a finite number"),
    ({"schema": 2}, "schema: schema: Input should be 1"),
    ({"colour": "red"}, "schema: colour: Extra inputs are not permitted"),
    ({"camera": "c" * 65}, "too long: camera has 65 characters, at most 64"),
])
def test_event_rejections(change, expected):
    assert reason(TOPICS.events("cam-1"), json.dumps(GOOD | change).encode()) == expected


def test_good_messages_become_rows():
    record = classify(TOPICS, Incoming(TOPICS.events("cam-1"), json.dumps(GOOD).encode()))
    assert record.kind == "event" and record.row["event_id"] == GOOD["event_id"]
    assert classify(TOPICS, Incoming(TOPICS.status("cam-1"), status("cam-1").to_bytes())).kind == "status"
    snap = classify(TOPICS, Incoming(TOPICS.snapshot("cam-1", "abcdefgh"), b"\xff\xd8\xff\xe0rest"))
    assert (snap.kind, snap.row) == ("snapshot", {"event_id": "abcdefgh"})


def test_snapshot_rejections():
    assert reason(TOPICS.snapshot("cam-1", "abcdefgh"), b"GIF89a") == \
        "snapshot is not a JPEG (missing FF D8 FF header)"
    assert reason(TOPICS.snapshot("cam-1", "short"), b"\xff\xd8\xff").startswith("invalid snapshot topic")
    assert reason(TOPICS.snapshot("cam-1", "abcdefgh"), b"\xff\xd8\xff" + b"0" * (3 * 2**20)).startswith(
        "oversize snapshot")


def test_topics_the_hub_does_not_ingest_are_dead_letters():
    assert reason(TOPICS.model_state("cam-1"), b"{}").startswith("unknown topic: kind 'model/state'")
    assert reason("other/prefix/devices/cam-1/events", b"{}").startswith("unknown topic")
