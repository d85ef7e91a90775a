"""The generated roles follow the wire contract's direction table (shared.topics), kind by kind."""

from __future__ import annotations

import pytest

from cloud_hub.identity.acl import (
    PUBLISH_RECEIVE,
    PUBLISH_SEND,
    SUBSCRIBE_PATTERN,
    control_acls,
    device_acls,
    ingest_acls,
    read_filter,
    write_filter,
)
from shared.topics import EDGE_TO_HUB, HUB_TO_EDGE, INGEST_TO_EDGE, TopicError, TopicKind, Topics

TOPICS = Topics("acme/v9")


def _topics_of(rules, acltype):
    return {r.topic for r in rules if r.acltype == acltype and r.allow}


def test_device_publishes_exactly_its_edge_to_hub_kinds():
    sends = _topics_of(device_acls(TOPICS, "cam-1"), PUBLISH_SEND)
    assert sends == {write_filter(TOPICS, "cam-1", k) for k in EDGE_TO_HUB}
    assert all(t.startswith("acme/v9/devices/cam-1/") for t in sends)


def test_device_reads_exactly_its_hub_to_edge_kinds():
    rules = device_acls(TOPICS, "cam-1")
    expected = {read_filter(TOPICS, "cam-1", k) for k in HUB_TO_EDGE + INGEST_TO_EDGE}
    assert "acme/v9/devices/cam-1/acks" in expected  # the hub's end-to-end acknowledgements
    assert _topics_of(rules, SUBSCRIBE_PATTERN) == expected
    assert _topics_of(rules, PUBLISH_RECEIVE) == expected
    assert not expected & _topics_of(rules, PUBLISH_SEND)


def test_argument_kinds_publish_one_level_and_read_like_the_contract():
    assert write_filter(TOPICS, "cam-1", TopicKind.SNAPSHOT) == "acme/v9/devices/cam-1/snapshots/+"
    assert read_filter(TOPICS, "cam-1", TopicKind.SIGNAL) == "acme/v9/devices/cam-1/signal/#"
    assert read_filter(TOPICS, "+", TopicKind.MODEL_CHUNK) == TOPICS.all_devices(TopicKind.MODEL_CHUNK)
    assert write_filter(TOPICS, "cam-1", TopicKind.EVENTS) == read_filter(TOPICS, "cam-1", TopicKind.EVENTS)


@pytest.mark.parametrize("bad", ["+", "#", "a/b", "", "cam 1"])
def test_wildcards_cannot_sneak_in_through_a_device_id(bad):
    with pytest.raises(TopicError):
        device_acls(TOPICS, bad)


def test_hub_roles_split_reading_and_commanding():
    ingest, control = ingest_acls(TOPICS), control_acls(TOPICS)
    # and nothing else: event acks and capture acks (issue 24)
    assert _topics_of(ingest, PUBLISH_SEND) == {"acme/v9/devices/+/acks", "acme/v9/devices/+/capture/ack"}
    assert _topics_of(control, PUBLISH_SEND) == {write_filter(TOPICS, "+", k) for k in HUB_TO_EDGE}
    shared = {t for t in _topics_of(ingest, SUBSCRIBE_PATTERN) if t.startswith("$share/+/")}
    assert shared == {f"$share/+/{TOPICS.all_devices(k)}" for k in EDGE_TO_HUB}  # what ingest subscribes
