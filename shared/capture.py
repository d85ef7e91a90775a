"""Site capture (issue 24): the hub asks one device for N frames over a time window and gets them back.

Four messages, all on the device's own topics (shared.topics):

* ``capture/req`` (hub → device, retained): ``CaptureRequest`` — how many frames, how far apart, how big,
  uniform or motion-weighted. Retained, so a device that is offline when it is asked starts when it
  connects; an empty retained payload withdraws it.
* ``capture/chunks/<capture_id>`` (device → hub): ``CaptureChunk`` — one bounded piece of one JPEG
  (at most ``CAPTURE_CHUNK_BYTES`` raw bytes, base64, so a chunk stays under the 64 KiB JSON limit).
* ``capture/state`` (device → hub): ``CaptureStatePayload`` — capturing / sent / failed with the reason.
* ``capture/ack`` (hub's ingest → device): ``CaptureAck`` — which frames the hub has stored (and which
  it refused for good) after each commit. The device re-sends the frames it holds that are in neither
  list (after a reconnect, a restart, or when no progress comes), and forgets the capture once the hub
  says it is finished.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from shared.payloads import DeviceId, SeqRange, WireModel

CAPTURE_ID_PATTERN = r"^[A-Za-z0-9_-]{8,40}$"
CaptureId = Annotated[str, Field(pattern=CAPTURE_ID_PATTERN)]
MAX_CAPTURE_FRAMES = 2000
MAX_CAPTURE_JPEG_BYTES = 1024 * 1024
CAPTURE_CHUNK_BYTES = 32 * 1024  # raw bytes per chunk: base64 + envelope stays under 64 KiB
MAX_CHUNK_B64 = 4 * math.ceil(CAPTURE_CHUNK_BYTES / 3)


class CaptureMode(StrEnum):
    UNIFORM = "uniform"  # one frame every interval_s
    MOTION = "motion"  # per interval, the frame that changed most since the last one kept


class CaptureRequest(WireModel):
    capture_id: CaptureId
    ts: float
    count: Annotated[int, Field(ge=1, le=MAX_CAPTURE_FRAMES, description="frames to capture")]
    interval_s: Annotated[float, Field(ge=0.05, le=3600.0, description="seconds between two frames")]
    max_bytes: Annotated[int, Field(ge=4096, le=MAX_CAPTURE_JPEG_BYTES, description="per JPEG")] = 256 * 1024
    max_width: Annotated[int, Field(ge=64, le=4096, description="frames wider are scaled down")] = 1280
    mode: CaptureMode = CaptureMode.UNIFORM
    camera: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="camera name; the agent's first camera when absent")
    chunk_bytes: Annotated[int, Field(ge=1024, le=CAPTURE_CHUNK_BYTES)] = CAPTURE_CHUNK_BYTES


class CaptureChunk(WireModel):
    device_id: DeviceId
    capture_id: CaptureId
    frame: Annotated[int, Field(ge=0, lt=MAX_CAPTURE_FRAMES)]
    frames: Annotated[int, Field(ge=1, le=MAX_CAPTURE_FRAMES, description="the capture's frame count")]
    chunk: Annotated[int, Field(ge=0)]
    chunks: Annotated[int, Field(ge=1, le=MAX_CAPTURE_JPEG_BYTES // 1024)]
    ts: float = Field(description="when the frame was taken")
    size: Annotated[int, Field(ge=1, le=MAX_CAPTURE_JPEG_BYTES, description="the whole JPEG's bytes")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="of the whole JPEG")]
    data_b64: Annotated[str, Field(min_length=1, max_length=MAX_CHUNK_B64)]

    @model_validator(mode="after")
    def _indexes(self) -> CaptureChunk:
        if self.chunk >= self.chunks:
            raise ValueError(f"chunk {self.chunk} of {self.chunks}: index out of range")
        if self.frame >= self.frames:
            raise ValueError(f"frame {self.frame} of {self.frames}: index out of range")
        return self


class CaptureStateName(StrEnum):
    CAPTURING = "capturing"
    SENT = "sent"  # every frame taken and published once; re-sends follow the hub's acks
    FAILED = "failed"


class CaptureStatePayload(WireModel):
    device_id: DeviceId
    capture_id: CaptureId
    ts: float
    state: CaptureStateName
    captured: Annotated[int, Field(ge=0, le=MAX_CAPTURE_FRAMES)] = 0
    count: Annotated[int, Field(ge=0, le=MAX_CAPTURE_FRAMES)] = 0
    reason: Annotated[str, Field(max_length=500)] | None = None


class CaptureAck(WireModel):
    device_id: DeviceId
    capture_id: CaptureId
    ts: float
    stored: Annotated[list[SeqRange], Field(max_length=MAX_CAPTURE_FRAMES)] = Field(default_factory=list)
    rejected: Annotated[list[SeqRange], Field(max_length=MAX_CAPTURE_FRAMES)] = Field(default_factory=list)
    finished: bool = Field(default=False, description="complete, failed or timed out: the device may "
                           "delete its copy and stop")
    state: Annotated[str, Field(max_length=16)] | None = None
