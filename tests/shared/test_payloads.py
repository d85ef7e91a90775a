"""Payload models round-trip and reject everything the hub must dead-letter."""

import json

import pytest

from shared.payloads import (
    MAX_JSON_PAYLOAD_BYTES,
    EventPayload,
    ModelOffer,
    PayloadError,
    StatusPayload,
    TelemetryPayload,
    decode,
)


def make_event(**over) -> EventPayload:
    fields = dict(
        event_id="0f3c9a2b7d1e4c5a",
        device_id="cam-1",
        seq=42,
        ts=1_764_000_000.5,
        kind="line",
        label="person",
        score=0.93,
        bbox=(0.1, 0.2, 0.3, 0.4),
        track_id=7,
        line="door",
        direction="in",
    )
    fields.update(over)
    return EventPayload(**fields)


@pytest.mark.parametrize(
    "message",
    [
        make_event(),
        StatusPayload(device_id="cam-1", state="online", ts=1.0, agent_version="0.1.0", model="fomo@1.0.0"),
        TelemetryPayload(device_id="cam-1", ts=2.0, fps_in=10.0, fps_processed=9.5, outbox_depth=3),
    ],
)
def test_round_trip(message) -> None:
    raw = message.to_bytes()
    assert json.loads(raw)["schema"] == 1
    assert decode(type(message), raw, topic_device_id="cam-1") == message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"schema": 1}).encode(), "schema: event_id"),
        (make_event().to_bytes().replace(b'"schema":1', b'"schema":2'), "schema: schema"),
        (make_event().to_bytes()[:-1] + b',"surprise":1}', "schema: surprise"),
        (make_event().to_bytes().replace(b'"score":0.93', b'"score":1.5'), "schema: score"),
        (make_event().to_bytes().replace(b'"seq":42', b'"seq":-1'), "schema: seq"),
        (make_event().to_bytes().replace(b'"0f3c9a2b7d1e4c5a"', b'"../../etc"'), "schema: event_id"),
        (b" " * (MAX_JSON_PAYLOAD_BYTES + 1), "oversize"),
    ],
)
def test_rejections_carry_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode(EventPayload, raw, topic_device_id="cam-1")
    assert reason in info.value.reason


def test_spoofed_device_id_is_rejected() -> None:
    raw = make_event(device_id="cam-2").to_bytes()
    with pytest.raises(PayloadError, match="device id mismatch"):
        decode(EventPayload, raw, topic_device_id="cam-1")


def test_offer_signed_bytes_cover_what_runs() -> None:
    offer = ModelOffer(
        campaign_id="c1",
        name="fomo-street",
        version="1.2.0",
        sha256="a" * 64,
        size_bytes=1000,
        chunk_size=512,
        manifest={"name": "fomo-street"},
    )
    tampered = offer.model_copy(update={"version": "9.9.9"})
    assert offer.signed_bytes() != tampered.signed_bytes()
    assert offer.model_copy(update={"signature": "x"}).signed_bytes() == offer.signed_bytes()


def test_offer_scope_is_signed_only_when_present() -> None:
    """An unscoped offer signs the bytes it signed before scopes existed; a scope is covered, and a device
    id it is not is refused by the contract."""
    offer = ModelOffer(campaign_id="c1", name="fomo-street", version="2.1.2-site.7", sha256="a" * 64,
                       size_bytes=1000, chunk_size=512, manifest={"name": "fomo-street"})
    assert b"device_scope" not in offer.signed_bytes() and b"device_scope" not in offer.to_bytes()
    scoped = offer.model_copy(update={"device_scope": "cam-1"})
    assert json.loads(scoped.signed_bytes())["device_scope"] == "cam-1"
    assert scoped.signed_bytes() != offer.model_copy(update={"device_scope": "cam-2"}).signed_bytes()
    assert decode(ModelOffer, scoped.to_bytes()) == scoped
    with pytest.raises(PayloadError, match="schema: device_scope"):
        decode(ModelOffer, scoped.to_bytes().replace(b'"cam-1"', b'"../cam"'))
