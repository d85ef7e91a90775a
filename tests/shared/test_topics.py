"""Topic builders and the parser agree, and anything outside the layout is refused."""

import pytest

from shared.topics import DEFAULT_PREFIX, TopicError, TopicKind, Topics

T = Topics()


@pytest.mark.parametrize(
    ("topic", "kind", "arg"),
    [
        (T.status("cam-1"), TopicKind.STATUS, None),
        (T.events("cam-1"), TopicKind.EVENTS, None),
        (T.snapshot("cam-1", "ev123456"), TopicKind.SNAPSHOT, "ev123456"),
        (T.telemetry("cam-1"), TopicKind.TELEMETRY, None),
        (T.model_offer("cam-1"), TopicKind.MODEL_OFFER, None),
        (T.model_chunk_request("cam-1"), TopicKind.MODEL_CHUNK_REQUEST, None),
        (T.model_chunk("cam-1", 7), TopicKind.MODEL_CHUNK, "7"),
        (T.model_state("cam-1"), TopicKind.MODEL_STATE, None),
        (T.config("cam-1"), TopicKind.CONFIG, None),
        (T.signal("cam-1", "light-a"), TopicKind.SIGNAL, "light-a"),
    ],
)
def test_round_trip(topic: str, kind: TopicKind, arg: str | None) -> None:
    parsed = T.parse(topic)
    assert (parsed.device_id, parsed.kind, parsed.arg) == ("cam-1", kind, arg)
    assert topic.startswith(f"{DEFAULT_PREFIX}/devices/cam-1/")


def test_layout_matches_design() -> None:
    assert T.events("d1") == "edgesight/v1/devices/d1/events"
    assert T.model_chunk("d1", 3) == "edgesight/v1/devices/d1/model/chunks/3"
    assert T.model_chunk_request("d1") == "edgesight/v1/devices/d1/model/chunks/req"
    assert T.all_devices(TopicKind.EVENTS) == "edgesight/v1/devices/+/events"
    assert T.all_devices(TopicKind.SNAPSHOT) == "edgesight/v1/devices/+/snapshots/#"
    assert T.shared("hub", T.all_devices(TopicKind.EVENTS)) == "$share/hub/edgesight/v1/devices/+/events"


def test_custom_prefix() -> None:
    topics = Topics("site7/es")
    assert topics.parse(topics.events("a")).device_id == "a"
    with pytest.raises(TopicError):
        T.parse(topics.events("a"))


@pytest.mark.parametrize(
    "topic",
    [
        "other/v1/devices/cam-1/events",
        "edgesight/v1/devices/cam-1/unknown",
        "edgesight/v1/devices/cam-1/events/extra",
        "edgesight/v1/devices/cam-1/snapshots/",
        "edgesight/v1/devices/cam-1/snapshots/a/b",
        "edgesight/v1/devices/+/events",
        "edgesight/v1/devices//events",
    ],
)
def test_rejects_foreign_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        T.parse(topic)


@pytest.mark.parametrize("device_id", ["", "a/b", "+", "#", "-lead", "x" * 65])
def test_rejects_bad_device_ids(device_id: str) -> None:
    with pytest.raises(TopicError):
        T.events(device_id)
