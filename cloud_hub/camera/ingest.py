"""Ingest's part for camera messages: previews (latest frame per camera) and config/state answers.

Kept out of cloud_hub.ingest so that module only routes: ``classify`` hands these two topic kinds here,
``BatchWriter`` calls ``apply`` inside its transaction.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, delete, insert, update

from cloud_hub.camera.models import CameraPreview, DeviceConfig
from shared.camera import MAX_PREVIEW_JPEG_BYTES, ConfigStatePayload, PreviewPayload
from shared.payloads import PayloadError, decode
from shared.topics import TopicKind

if TYPE_CHECKING:
    from cloud_hub.ingest.records import Incoming, Record

PREVIEWS: Table = CameraPreview.__table__  # type: ignore[assignment]
CONFIGS: Table = DeviceConfig.__table__  # type: ignore[assignment]
JPEG_MAGIC = b"\xff\xd8\xff"
KINDS = (TopicKind.PREVIEW, TopicKind.CONFIG_STATE)


def classify(kind: TopicKind, incoming: Incoming, device_id: str) -> Record:
    """Raises PayloadError with a storable reason (the caller makes it a dead letter)."""
    from cloud_hub.ingest.records import Record

    if kind is TopicKind.PREVIEW:
        msg = decode(PreviewPayload, incoming.payload, topic_device_id=device_id)
        try:
            jpeg = base64.b64decode(msg.jpeg_b64, validate=True)
        except (binascii.Error, ValueError):
            raise PayloadError("preview: jpeg_b64 is not base64") from None
        if len(jpeg) > MAX_PREVIEW_JPEG_BYTES or not jpeg.startswith(JPEG_MAGIC):
            raise PayloadError(f"preview: not a JPEG of at most {MAX_PREVIEW_JPEG_BYTES} bytes")
        row: dict[str, Any] = {
            "camera": msg.camera, "ts": msg.ts, "width": msg.width, "height": msg.height, "jpeg": jpeg,
            "boxes": [b.model_dump() for b in msg.boxes], "zones": [z.model_dump() for z in msg.zones],
            "lines": [line.model_dump() for line in msg.lines],
        }
        return Record("preview", incoming, device_id, row)
    state = decode(ConfigStatePayload, incoming.payload, topic_device_id=device_id)
    row = {"reported_id": state.config_id, "reported_state": state.state.value,
           "reported_reason": state.reason,
           "reported_cameras": {k: v.model_dump() for k, v in state.cameras.items()},
           "reported_at": state.ts}
    return Record("config_state", incoming, device_id, row)


def apply(conn: Connection, records: Sequence[Record], now: float) -> int:
    """Upsert the newest preview per camera and the latest config answer per device (arrival order)."""
    latest: dict[tuple[str, str], dict] = {}
    for r in records:
        if r.kind == "preview" and r.device_id:
            key = (r.device_id, r.row["camera"])
            if key not in latest or r.row["ts"] >= latest[key]["ts"]:
                latest[key] = r.row | {"device_id": r.device_id, "received_at": now}
    for (device_id, camera), row in sorted(latest.items()):
        conn.execute(delete(PREVIEWS).where(PREVIEWS.c.device_id == device_id, PREVIEWS.c.camera == camera))
        conn.execute(insert(PREVIEWS).values(**row))
    states = [r for r in records if r.kind == "config_state" and r.device_id]
    for r in states:
        done = conn.execute(update(CONFIGS).where(CONFIGS.c.device_id == r.device_id).values(**r.row))
        if done.rowcount == 0:
            conn.execute(insert(CONFIGS).values(device_id=r.device_id, **r.row))
    return len(latest) + len(states)
