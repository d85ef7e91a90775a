"""Ingest's part for capture messages: chunks become frames in the snapshot store, states move captures.

``classify`` checks what needs no database (the contract, base64, the chunk bound, topic and payload
naming the same capture); ``apply`` runs inside the batch's transaction and checks the rest (the
capture exists, belongs to the topic's device, the frame count matches), assembles a frame once its last
chunk is in, verifies size, sha256 and JPEG structure, and writes it to the snapshot store. A refused
chunk or frame is returned as a dead letter with the reason; the batch and ingest go on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cloud_hub.capture.jpeg import BadJpeg, jpeg_size
from cloud_hub.capture.models import (
    CAPTURING,
    COMPLETE,
    FAILED,
    FINAL,
    REQUESTED,
    TIMED_OUT,
    Capture,
    CaptureChunkRow,
    CaptureFrame,
)
from cloud_hub.models import Device
from shared.capture import (
    CAPTURE_CHUNK_BYTES,
    CaptureAck,
    CaptureChunk,
    CaptureStateName,
    CaptureStatePayload,
)
from shared.payloads import PayloadError, decode, seq_ranges
from shared.topics import TopicKind

if TYPE_CHECKING:
    from cloud_hub.ingest.records import Incoming, Record
    from cloud_hub.snapshots import SnapshotStore

CAPTURES: Table = Capture.__table__  # type: ignore[assignment]
FRAMES: Table = CaptureFrame.__table__  # type: ignore[assignment]
CHUNKS: Table = CaptureChunkRow.__table__  # type: ignore[assignment]
DEVICES: Table = Device.__table__  # type: ignore[assignment]
KINDS = (TopicKind.CAPTURE_CHUNK, TopicKind.CAPTURE_STATE)


def classify(kind: TopicKind, incoming: Incoming, device_id: str, arg: str | None) -> Record:
    """Raises PayloadError with a storable reason (the caller makes it a dead letter)."""
    from cloud_hub.ingest.records import Record

    if kind is TopicKind.CAPTURE_STATE:
        state = decode(CaptureStatePayload, incoming.payload, topic_device_id=device_id)
        return Record("capture_state", incoming, device_id, {
            "capture_id": state.capture_id, "ts": state.ts, "state": state.state.value,
            "captured": state.captured, "reason": state.reason})
    chunk = decode(CaptureChunk, incoming.payload, topic_device_id=device_id)
    if chunk.capture_id != arg:
        raise PayloadError(f"capture id mismatch: payload {chunk.capture_id!r} on the topic of {arg!r}")
    try:
        data = base64.b64decode(chunk.data_b64, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(
            f"capture {chunk.capture_id} frame {chunk.frame}: data_b64 is not base64") from None
    if len(data) > CAPTURE_CHUNK_BYTES or len(data) > chunk.size:
        raise PayloadError(f"capture {chunk.capture_id} frame {chunk.frame} chunk {chunk.chunk}: {len(data)} "
                           f"bytes, more than a chunk may hold ({min(CAPTURE_CHUNK_BYTES, chunk.size)})")
    return Record("capture_chunk", incoming, device_id, {
        "capture_id": chunk.capture_id, "frame": chunk.frame, "frames": chunk.frames, "chunk": chunk.chunk,
        "chunks": chunk.chunks, "size": chunk.size, "sha256": chunk.sha256, "ts": chunk.ts, "data": data})


def _capture(conn: Connection, record: Record) -> tuple[dict[str, Any] | None, str | None]:
    """The capture a record names, or the reason it is refused (no such capture, another device's)."""
    capture_id = record.row["capture_id"]
    row = conn.execute(select(CAPTURES).where(CAPTURES.c.id == capture_id)).mappings().first()
    if row is None:
        return None, f"capture {capture_id} does not exist"
    if row["device_id"] != record.device_id:
        return None, f"capture {capture_id} is not a capture of device {record.device_id}"
    return dict(row), None


def apply(conn: Connection, records: Sequence[Record], now: float,
          snapshots: SnapshotStore | None) -> list[tuple[Record, str]]:
    """Store chunks, finish frames, move states; returns the records refused, each with its reason."""
    refused: list[tuple[Record, str]] = []
    for record in records:
        if record.kind not in ("capture_chunk", "capture_state"):
            continue
        capture, reason = _capture(conn, record)
        if capture is None:
            refused.append((record, reason or "refused"))
            continue
        if capture["state"] in FINAL:
            continue  # a late or repeated message: absorbed, the ack tells the device it is over
        if record.kind == "capture_state":
            _apply_state(conn, capture, record.row, now)
            continue
        if snapshots is None:
            refused.append((record, "snapshot storage is not configured on this hub"))
            continue
        why = _apply_chunk(conn, capture, record.row, now, snapshots)
        if why:
            refused.append((record, why))
    return refused


def _apply_state(conn: Connection, capture: dict[str, Any], row: dict[str, Any], now: float) -> None:
    values: dict[str, Any] = {"device_captured": max(capture["device_captured"], row["captured"]),
                              "last_progress_at": now}
    if row["state"] == CaptureStateName.FAILED:
        values |= {"state": FAILED, "reason": f"device: {row['reason'] or 'no reason given'}",
                   "finished_at": now}
    elif capture["state"] == REQUESTED:
        values["state"] = CAPTURING
    conn.execute(update(CAPTURES).where(CAPTURES.c.id == capture["id"]).values(**values))


def _apply_chunk(conn: Connection, capture: dict[str, Any], row: dict[str, Any], now: float,
                 snapshots: SnapshotStore) -> str | None:
    capture_id, frame = capture["id"], row["frame"]
    if row["frames"] != capture["count"]:
        return (f"capture {capture_id}: chunk says {row['frames']} frames, the capture asked for "
                f"{capture['count']}")
    stored = conn.execute(select(FRAMES.c.id).where(FRAMES.c.capture_id == capture_id,
                                                    FRAMES.c.frame == frame)).first()
    if stored is not None or frame in (capture["rejected_frames"] or []):
        return None  # a re-send of a frame already decided
    chunk_row = {k: row[k] for k in ("frame", "chunk", "chunks", "size", "sha256", "ts", "data")}
    # Insert-or-ignore one row with bytes in it (ingest's batched JSON path carries no binary).
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(CHUNKS).values(capture_id=capture_id, received_at=now, **chunk_row)
                 .on_conflict_do_nothing(index_elements=["capture_id", "frame", "chunk"]))
    values: dict[str, Any] = {"last_progress_at": now}
    if capture["state"] == REQUESTED:
        values["state"] = CAPTURING
    where = (CHUNKS.c.capture_id == capture_id, CHUNKS.c.frame == frame, CHUNKS.c.sha256 == row["sha256"],
             CHUNKS.c.chunks == row["chunks"])
    have = conn.execute(select(func.count()).select_from(CHUNKS).where(*where)).scalar_one()
    reason = None
    if have >= row["chunks"]:
        parts = conn.execute(select(CHUNKS.c.data).where(*where).order_by(CHUNKS.c.chunk)).scalars().all()
        data = b"".join(parts)
        conn.execute(delete(CHUNKS).where(CHUNKS.c.capture_id == capture_id, CHUNKS.c.frame == frame))
        try:
            if len(data) != row["size"] or hashlib.sha256(data).hexdigest() != row["sha256"]:
                raise BadJpeg(f"{len(data)} bytes assembled do not match the announced size {row['size']} "
                              "and sha256")
            width, height = jpeg_size(data)
        except BadJpeg as exc:
            reason = f"capture {capture_id} frame {frame}: {exc}"
            values["rejected_frames"] = sorted({*(capture["rejected_frames"] or []), frame})
        else:
            sha, rel = snapshots.put(data)  # OSError: the batch is retried (see BatchWriter)
            conn.execute(FRAMES.insert().values(capture_id=capture_id, frame=frame, ts=row["ts"], width=width,
                                                height=height, sha256=sha, path=rel, size_bytes=len(data),
                                                received_at=now))
        received = conn.execute(select(func.count()).select_from(FRAMES)
                                .where(FRAMES.c.capture_id == capture_id)).scalar_one()
        rejected = len(values.get("rejected_frames", capture["rejected_frames"] or []))
        values["frames_received"] = received
        if received + rejected >= capture["count"]:
            values |= {"state": COMPLETE, "finished_at": now}
            if rejected:
                values["reason"] = f"{rejected} of {capture['count']} frames refused (see dead letters)"
    conn.execute(update(CAPTURES).where(CAPTURES.c.id == capture_id).values(**values))
    capture.update(values)
    return reason


def expire(conn: Connection, now: float | None = None) -> int:
    """Captures without progress past their timeout end as timed_out, with the reason (device offline,
    or online but silent: an agent without capture support). Run whenever captures are looked at."""
    now = time.time() if now is None else now
    rows = conn.execute(
        select(CAPTURES.c.id, CAPTURES.c.timeout_s, CAPTURES.c.last_progress_at, DEVICES.c.state)
        .join(DEVICES, DEVICES.c.id == CAPTURES.c.device_id)
        .where(CAPTURES.c.state.in_([REQUESTED, CAPTURING]))
    ).all()
    done = 0
    for capture_id, timeout_s, last, device_state in rows:
        if now - last <= timeout_s:
            continue
        reason = (f"device offline for more than {timeout_s:g} s" if device_state != "online" else
                  f"no progress from the device for {timeout_s:g} s "
                  "(online: does its agent support capture?)")
        conn.execute(update(CAPTURES).where(CAPTURES.c.id == capture_id, CAPTURES.c.state.in_(
            [REQUESTED, CAPTURING])).values(state=TIMED_OUT, reason=reason, finished_at=now))
        conn.execute(delete(CHUNKS).where(CHUNKS.c.capture_id == capture_id))
        done += 1
    return done


def acks(engine: Engine, touched: set[tuple[str, str]]) -> list[CaptureAck]:
    """After a commit: per capture touched, what the hub holds (the device re-sends the rest)."""
    out = []
    now = time.time()
    with engine.connect() as conn:
        for device_id, capture_id in sorted(touched):
            capture = conn.execute(select(CAPTURES.c.device_id, CAPTURES.c.state, CAPTURES.c.rejected_frames)
                                   .where(CAPTURES.c.id == capture_id)).first()
            if capture is None or capture.device_id != device_id:
                continue  # nothing to tell a device about a capture that is not its own
            frames = conn.execute(select(FRAMES.c.frame).where(FRAMES.c.capture_id == capture_id)).scalars()
            out.append(CaptureAck(device_id=device_id, capture_id=capture_id, ts=now,
                                  stored=seq_ranges(list(frames)),
                                  rejected=seq_ranges(list(capture.rejected_frames or [])),
                                  finished=capture.state in FINAL, state=capture.state))
    return out
