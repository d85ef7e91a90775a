"""Rule events → wire EventPayloads (+ snapshots) → outbox. Nothing is published from here directly."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import cv2
import numpy as np

from edge_agent.config import SnapshotConfig
from edge_agent.outbox import Outbox
from edge_agent.rules import RuleEvent
from edge_agent.sources import Frame
from shared.payloads import MAX_SNAPSHOT_BYTES, EventPayload, EventPhase
from shared.topics import Topics

log = logging.getLogger(__name__)

CROP_SUFFIX = "_crop"  # snapshots/{event_id}_crop carries the object crop beside the full frame


def _clip_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (min(1.0, max(0.0, float(v))) for v in box)
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def encode_snapshots(
    image: np.ndarray, box: tuple[float, float, float, float], config: SnapshotConfig
) -> tuple[bytes, bytes | None]:
    """JPEG of the frame (box drawn, at most ``max_width`` wide) and of the object crop (20 % margin)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    frame = image.copy()
    cv2.rectangle(frame, (int(x1 * w), int(y1 * h)), (int(x2 * w), int(y2 * h)), (0, 255, 0), 2)
    if w > config.max_width:
        frame = cv2.resize(
            frame, (config.max_width, round(h * config.max_width / w)), interpolation=cv2.INTER_AREA
        )
    params = [cv2.IMWRITE_JPEG_QUALITY, config.quality]
    full = cv2.imencode(".jpg", frame, params)[1].tobytes()
    crop_bytes = None
    if config.crop:
        mx, my = (x2 - x1) * 0.2, (y2 - y1) * 0.2
        cx1, cy1 = int(max(0.0, x1 - mx) * w), int(max(0.0, y1 - my) * h)
        cx2, cy2 = int(min(1.0, x2 + mx) * w), int(min(1.0, y2 + my) * h)
        if cx2 - cx1 >= 2 and cy2 - cy1 >= 2:
            crop_bytes = cv2.imencode(".jpg", image[cy1:cy2, cx1:cx2], params)[1].tobytes()
    return full, crop_bytes


class EventEmitter:
    """Writes each rule event (with its snapshots) to the outbox in one transaction, then wakes the link."""

    def __init__(self, device_id: str, topics: Topics, outbox: Outbox, wake: Callable[[], None]):
        self.device_id = device_id
        self.topics = topics
        self.outbox = outbox
        self.wake = wake
        self.emitted = 0

    def emit(
        self,
        camera: str,
        model: str | None,
        snapshots: SnapshotConfig,
        frame: Frame | None,
        events: list[RuleEvent],
    ) -> list[EventPayload]:
        written = []
        for event in events:
            event_id = uuid.uuid4().hex
            box = _clip_box(event.track.box)
            attachments: list[tuple[str, bytes]] = []
            wants_snapshot = (
                snapshots.enabled
                and frame is not None
                and event.phase in (EventPhase.START, EventPhase.INSTANT)
                and event.kind.value in snapshots.kinds
            )
            if wants_snapshot:
                assert frame is not None
                full, crop = encode_snapshots(frame.image, box, snapshots)
                for suffix, data in (("", full), (CROP_SUFFIX, crop)):
                    if data is not None and len(data) <= MAX_SNAPSHOT_BYTES:
                        attachments.append((self.topics.snapshot(self.device_id, event_id + suffix), data))
            built: list[EventPayload] = []

            def build(
                seq: int,
                event: RuleEvent = event,
                event_id: str = event_id,
                box=box,
                has_snapshot: bool = bool(attachments),
                built: list[EventPayload] = built,
            ) -> tuple[str, bytes]:
                payload = EventPayload(
                    event_id=event_id,
                    device_id=self.device_id,
                    seq=seq,
                    ts=event.ts,
                    camera=camera,
                    kind=event.kind,
                    phase=event.phase,
                    label=event.track.label,
                    score=min(1.0, max(0.0, event.track.best_score)),
                    bbox=box,
                    track_id=event.track.id,
                    zone=event.zone,
                    line=event.line,
                    direction=event.direction,
                    count=event.count,
                    value=event.value,
                    model=model,
                    has_snapshot=has_snapshot,
                    attributes={
                        k: v for k, v in event.attributes.items() if isinstance(v, (str, int, float, bool))
                    },
                )
                built.append(payload)
                return self.topics.events(self.device_id), payload.to_bytes()

            self.outbox.add_event(build, attachments)
            written.extend(built)
            self.emitted += 1
            log.info(
                "event %s %s/%s %s track %s%s",
                camera,
                event.kind.value,
                event.phase.value,
                event.track.label,
                event.track.id,
                f" {event.zone or event.line} {event.direction or ''}".rstrip()
                if event.zone or event.line
                else "",
            )
        if events:
            self.wake()
        return written
