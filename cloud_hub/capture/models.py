"""Capture tables: one row per capture (who asked, what, its state), its frames, chunks in flight."""

from __future__ import annotations

from sqlalchemy import JSON, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud_hub.models import Base

# The state machine. requested -> capturing -> complete | failed(reason) | timed_out(reason).
REQUESTED = "requested"
CAPTURING = "capturing"
COMPLETE = "complete"
FAILED = "failed"
TIMED_OUT = "timed_out"
FINAL = (COMPLETE, FAILED, TIMED_OUT)


class Capture(Base):
    """A capture an admin started: the request as sent, who sent it and when, and how far it got."""

    __tablename__ = "captures"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id", ondelete="CASCADE"),
                                           index=True)
    requested_by: Mapped[str] = mapped_column(String(64), doc="user name, or cli:<os user>")
    requested_at: Mapped[float] = mapped_column(Float, index=True)
    count: Mapped[int] = mapped_column(Integer)
    interval_s: Mapped[float] = mapped_column(Float)
    max_bytes: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    camera: Mapped[str | None] = mapped_column(String(64))
    timeout_s: Mapped[float] = mapped_column(Float, doc="offline (no progress) this long: timed out")
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    frames_received: Mapped[int] = mapped_column(Integer, default=0)
    rejected_frames: Mapped[list[int]] = mapped_column(
        JSON, default=list, doc="frame indexes refused for good (not a JPEG, bytes not matching sha256)")
    device_captured: Mapped[int] = mapped_column(Integer, default=0, doc="frames the device says it took")
    last_progress_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)


class CaptureFrame(Base):
    """One stored frame; the JPEG is a file of the snapshot store (retention and the disk cap apply)."""

    __tablename__ = "capture_frames"
    __table_args__ = (UniqueConstraint("capture_id", "frame", name="uq_capture_frames_capture_frame"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    capture_id: Mapped[str] = mapped_column(String(40), ForeignKey("captures.id", ondelete="CASCADE"),
                                            index=True)
    frame: Mapped[int] = mapped_column(Integer)
    ts: Mapped[float] = mapped_column(Float, doc="when the device took it")
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(128), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[float] = mapped_column(Float, index=True)


class CaptureChunkRow(Base):
    """A chunk of a frame not yet whole: kept in the database so any ingest worker (and a restarted one)
    can finish the frame; deleted when the frame is assembled."""

    __tablename__ = "capture_chunks"

    capture_id: Mapped[str] = mapped_column(String(40), ForeignKey("captures.id", ondelete="CASCADE"),
                                            primary_key=True)
    frame: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunks: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    ts: Mapped[float] = mapped_column(Float)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[float] = mapped_column(Float)
